"""The feature registry: every feature the product sells, declared in one place.

Each module in this package defines one `Feature` subclass and decorates it with
`@register`; adding a fourth feature means adding one module here (it is
discovered at import). Everything a feature is — slug, name, description,
model, prompt, input validation, output limit, how the answer is parsed — lives
on its class (see `base.Feature`).

Which features a workspace may use is one lookup that billing answers per tier:
`usage.limits.get_workspace_limits(ws).allows_feature(slug)` (see `ensure_allowed`)."""

from __future__ import annotations

import importlib
import pkgutil

from ai_features.features.base import Feature, FeatureNotAllowed, MalformedAnswer

_REGISTRY: dict[str, Feature] = {}
_LOADED = False


def register[F: type[Feature]](cls: F) -> F:
    if cls.slug in _REGISTRY and type(_REGISTRY[cls.slug]) is not cls:
        raise RuntimeError(f"feature slug {cls.slug!r} registered twice")
    _REGISTRY[cls.slug] = cls()
    return cls


def _load_all() -> None:
    global _LOADED
    if _LOADED:
        return
    for module in pkgutil.iter_modules(__path__):
        if module.name != "base":
            importlib.import_module(f"{__name__}.{module.name}")
    _LOADED = True


def all_features() -> list[Feature]:
    _load_all()
    return sorted(_REGISTRY.values(), key=lambda f: f.order)


def get_feature(slug: str) -> Feature:
    _load_all()
    return _REGISTRY[slug]


def ensure_allowed(feature: Feature | str, workspace) -> Feature:
    """The one check that a workspace's tier includes a feature (403 otherwise)."""
    from usage.limits import get_workspace_limits

    feature = get_feature(feature) if isinstance(feature, str) else feature
    limits = get_workspace_limits(workspace)
    if not limits.allows_feature(feature.slug):
        raise FeatureNotAllowed(
            f"{feature.name} is not included in the {limits.plan_name} plan. "
            "Ask an owner or admin to upgrade the workspace to use it.",
            details={
                "feature": feature.slug,
                "plan": limits.plan,
                "upgrade_url": limits.upgrade_url,
                "next_plan": limits.next_plan,
            },
        )
    return feature


def allowed_features(workspace) -> list[Feature]:
    from usage.limits import get_workspace_limits

    limits = get_workspace_limits(workspace)
    return [f for f in all_features() if limits.allows_feature(f.slug)]


__all__ = [
    "Feature",
    "FeatureNotAllowed",
    "MalformedAnswer",
    "all_features",
    "allowed_features",
    "ensure_allowed",
    "get_feature",
    "register",
]
