"""The feature registry: every feature the product sells, declared in one place.

A feature is a `Feature` subclass in a module of the `ai_features.features`
package, decorated with `@register`. It declares its slug, name, description,
model, prompt (`build_messages`), input validation (`validate`), output limit
(`max_output_tokens`) and how the answer is parsed (`response_format`, `parse`).
Adding a fourth feature means adding one module there: modules are discovered
at first use, and menus and the allow-list pick it up.

Which features a workspace may use is one lookup billing answers per tier:
`usage.limits.get_workspace_limits(ws).allows_feature(slug)` (`ensure_allowed`
raises 403 forbidden with a sentence and the upgrade URL).

Features never call the upstream themselves: `ai_features.runs` and the
feature's use case pass what they declare to `usage.metering`."""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Mapping
from typing import Any, ClassVar

from django.conf import settings

from config.errors import Forbidden, InvalidRequest, PayloadTooLarge


class FeatureNotAllowed(Forbidden):
    default_message = "This feature is not included in your workspace's plan."


class MalformedAnswer(Exception):
    """The model's answer does not have the declared shape (the runner retries)."""


class Feature:
    slug: ClassVar[str]
    name: ClassVar[str]
    description: ClassVar[str]
    order: ClassVar[int] = 100  # position in menus
    page_url_name: ClassVar[str | None] = None  # "ai_features:<name>"
    system_prompt: ClassVar[str] = ""
    max_output_tokens: ClassVar[int] = 1024
    # Longest text input; None: the documented limit (TOLLGATE_MAX_INPUT_CHARS).
    max_input_chars: ClassVar[int | None] = None
    # How many times a malformed answer is asked again before giving up.
    answer_retries: ClassVar[int] = 0

    @property
    def model(self) -> str:
        return settings.TOLLGATE_FEATURE_MODELS.get(self.slug) or settings.TOLLGATE_FEATURE_MODEL

    @property
    def input_char_limit(self) -> int:
        return self.max_input_chars or settings.TOLLGATE_MAX_INPUT_CHARS

    def validate(self, data: Mapping[str, Any]) -> Any:
        raise NotImplementedError

    def build_messages(self, value: Any) -> list[dict[str, str]]:
        raise NotImplementedError

    def output_limit(self, value: Any) -> int:
        """max_output_tokens for this input (some features scale it)."""
        return self.max_output_tokens

    def response_format(self, value: Any) -> dict[str, Any] | None:
        return None

    def parse(self, text: str, value: Any) -> Any:
        return text.strip()

    # --- shared validation helpers -------------------------------------------------

    def clean_text(self, data: Mapping[str, Any], field: str = "text") -> str:
        raw = data.get(field)
        if raw is None or (isinstance(raw, str) and not raw.strip()):
            raise InvalidRequest(
                "Give some text to work on (or upload a document).",
                details={field: ["This field is required and may not be blank."]},
            )
        if not isinstance(raw, str):
            raise InvalidRequest(
                f"“{field}” must be a string.", details={field: ["Must be a string."]}
            )
        limit = self.input_char_limit
        if len(raw) > limit:
            raise PayloadTooLarge(
                f"The text is {len(raw):,} characters; {self.name} accepts at most "
                f"{limit:,}. Shorten it or split it into parts.",
                details={field: [f"At most {limit} characters."]},
            )
        return raw.strip()


# --- the registry ---------------------------------------------------------------------

FEATURES: dict[str, Feature] = {}
_LOADED = False

_LOADED = False


def register[F: type[Feature]](cls: F) -> F:
    if cls.slug in FEATURES and type(FEATURES[cls.slug]) is not cls:
        raise RuntimeError(f"feature slug {cls.slug!r} registered twice")
    FEATURES[cls.slug] = cls()
    return cls


def _load_all() -> None:
    global _LOADED
    if _LOADED:
        return
    from ai_features import features

    for module in pkgutil.iter_modules(features.__path__):
        importlib.import_module(f"{features.__name__}.{module.name}")
    _LOADED = True


def all_features() -> list[Feature]:
    _load_all()
    return sorted(FEATURES.values(), key=lambda f: f.order)


def get_feature(slug: str) -> Feature:
    _load_all()
    return FEATURES[slug]


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


def features_for(workspace) -> list[Feature]:
    """Features the workspace's plan includes (alias kept for the meter's callers)."""
    return allowed_features(workspace)
