"""The features customers pay for, declared in one place. Each feature module
registers a `Feature`; pages and the plan's allow-list refer to it by slug
("summarize", "extract", "chat")."""

from __future__ import annotations

from dataclasses import dataclass

from usage.limits import get_workspace_limits


@dataclass(frozen=True)
class Feature:
    slug: str
    name: str
    description: str
    page_url_name: str  # the feature's page, e.g. "ai_features:summarize"
    api_path: str  # e.g. "/api/v1/summaries"


FEATURES: dict[str, Feature] = {}


def register(feature: Feature) -> Feature:
    FEATURES[feature.slug] = feature
    return feature


def get_feature(slug: str) -> Feature:
    return FEATURES[slug]


def features_for(workspace) -> list[Feature]:
    """Features the workspace's plan includes, in declaration order."""
    limits = get_workspace_limits(workspace)
    return [f for f in FEATURES.values() if limits.allows_feature(f.slug)]


SUMMARIZE = register(
    Feature(
        slug="summarize",
        name="Summarize",
        description="Condense text or a document into a short, medium or long summary.",
        page_url_name="ai_features:summarize",
        api_path="/api/v1/summaries",
    )
)
