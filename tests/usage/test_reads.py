"""/api/v1/quota, /api/v1/usage and /api/v1/usage/events: shapes per API.md,
members see their own, bad params are 400, other workspaces invisible."""

from __future__ import annotations

import httpx
import pytest

from tests.usage.helpers import TEXT, auth, summaries_url

EVENT_FIELDS = (
    "request_id", "created_at", "feature", "model", "member", "key", "input_tokens",
    "cached_input_tokens", "output_tokens", "latency_ms", "status",
)  # fmt: skip


def _get(base, secret, path, **params):
    return httpx.get(f"{base}{path}", params=params, headers=auth(secret))


@pytest.fixture
def team(metered, make_member, make_key):
    """An owner and a member of one workspace, each with a key and one call."""
    owner = make_member(role="owner")
    member = make_member(workspace=owner.workspace)
    _ok, owner_secret = make_key(owner, name="owner key")
    _mk, member_secret = make_key(member, name="member key")
    for secret in (owner_secret, member_secret):
        r = httpx.post(summaries_url(metered), json={"text": TEXT}, headers=auth(secret))
        assert r.status_code == 201
    return {"owner": owner_secret, "member": member_secret, "base": metered}


def test_quota(team):
    body = _get(team["base"], team["owner"], "/api/v1/quota").json()
    assert set(body) >= {
        "plan", "period_start", "period_end", "included_tokens", "used_tokens",
        "reserved_tokens", "remaining_tokens", "percent_used", "overage_policy",
    }  # fmt: skip
    assert body["used_tokens"] > 0 and body["reserved_tokens"] == 0
    assert body["remaining_tokens"] == body["included_tokens"] - body["used_tokens"]


@pytest.mark.parametrize("group_by", ["day", "feature", "member", "key", "model"])
def test_usage_grouped(team, group_by):
    owner_view = _get(team["base"], team["owner"], "/api/v1/usage", group_by=group_by).json()
    member_view = _get(team["base"], team["member"], "/api/v1/usage", group_by=group_by).json()
    assert owner_view["totals"]["requests"] == 2
    assert member_view["totals"]["requests"] == 1  # members see their own usage
    row = owner_view["rows"][0]
    assert {"group", "label", "requests", "input_tokens", "cached_input_tokens",
            "output_tokens", "total_tokens"} <= set(row)  # fmt: skip
    if group_by == "member":
        assert len(owner_view["rows"]) == 2 and "@" in row["label"]


def test_events_trace_and_cursor_pagination(team):
    first = _get(team["base"], team["owner"], "/api/v1/usage/events", limit=1).json()
    assert len(first["results"]) == 1 and first["next"]
    event = first["results"][0]
    assert set(EVENT_FIELDS) <= set(event)
    second = httpx.get(first["next"], headers=auth(team["owner"])).json()
    assert len(second["results"]) == 1
    assert second["results"][0]["request_id"] != event["request_id"]
    mine = _get(team["base"], team["member"], "/api/v1/usage/events").json()["results"]
    assert len(mine) == 1 and mine[0]["key"]["name"] == "member key"


@pytest.mark.parametrize(
    ("path", "params"),
    [
        ("/api/v1/usage", {"group_by": "planet"}),
        ("/api/v1/usage", {"start": "yesterday"}),
        ("/api/v1/usage", {"start": "2026-02-01", "end": "2026-01-01"}),
        ("/api/v1/usage/events", {"cursor": "garbage"}),
        ("/api/v1/usage/events", {"end": "2026-13-45"}),
    ],
)
def test_bad_params_are_400(team, path, params):
    response = _get(team["base"], team["owner"], path, **params)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_request"


def test_another_workspace_sees_none_of_it(team, make_member, make_key):
    _k, stranger = make_key(make_member(role="owner"))
    assert _get(team["base"], stranger, "/api/v1/usage/events").json()["results"] == []
    assert _get(team["base"], stranger, "/api/v1/usage").json()["rows"] == []
    assert _get(team["base"], stranger, "/api/v1/quota").json()["used_tokens"] == 0
