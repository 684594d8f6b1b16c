"""Member caps, key caps per period, suspension and last-used bookkeeping."""

from __future__ import annotations

import httpx

from accounts.models import Workspace
from tests.usage.helpers import TEXT, auth, summaries_url
from usage.models import ApiKey, UsageCounter
from usage.services import key_update, member_cap_set


def _post(base, secret):
    return httpx.post(summaries_url(base), json={"text": TEXT}, headers=auth(secret))


def test_a_member_cap_refuses_with_spend_cap_reached(metered, make_member, make_key):
    member = make_member()
    member_cap_set(membership=member, token_cap=300)
    _key, secret = make_key(member)

    response = _post(metered, secret)  # reserves input + 500 (medium) > 300

    assert response.status_code == 402
    error = response.json()["error"]
    assert error["code"] == "spend_cap_reached"
    assert error["details"]["cap"] == "member" and error["details"]["limit"] == 300


def test_key_usage_and_last_used_are_recorded(metered, make_member, make_key):
    key, secret = make_key(make_member(), token_cap=100_000)
    assert _post(metered, secret).status_code == 201
    key.refresh_from_db()
    assert key.last_used_at is not None
    counter = UsageCounter.objects.get(scope="key", scope_id=key.pk)
    assert counter.used > 0


def test_changing_the_cap_period_counts_what_was_already_used(metered, make_member, make_key):
    key, secret = make_key(make_member())
    assert _post(metered, secret).status_code == 201
    used = UsageCounter.objects.get(scope="key", scope_id=key.pk).used

    key_update(key=ApiKey.objects.get(pk=key.pk), changes={"cap_period": "lifetime"})

    lifetime = UsageCounter.objects.filter(scope="key", scope_id=key.pk).order_by("period_start")[0]
    assert lifetime.used == used


def test_a_suspended_workspace_is_403(metered, make_member, make_key):
    member = make_member()
    _key, secret = make_key(member)
    assert _post(metered, secret).status_code == 201
    workspace = Workspace.objects.get(pk=member.workspace_id)
    workspace.is_suspended = True
    workspace.save()
    response = _post(metered, secret)
    assert (response.status_code, response.json()["error"]["code"]) == (403, "workspace_suspended")
