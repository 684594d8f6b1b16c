"""The moderation pre-screen: flagged input → 422 content_flagged, not charged,
logged; repeated flags suspend the person; operators can turn it off."""

from __future__ import annotations

from datetime import timedelta

import httpx
from django.utils import timezone

from accounts.models import User
from tests.usage.helpers import TEXT, auth, summaries_url
from usage.models import ModerationLog, ModerationSettings, Reservation, UsageCounter, UsageEvent
from usage.tasks import purge_moderation_logs

FLAGGED = "Please summarize: FLAGME:harassment. " + TEXT


def _post(base, secret, text):
    return httpx.post(summaries_url(base), json={"text": text}, headers=auth(secret))


def test_flagged_input_is_refused_not_charged_and_logged(
    metered, fake_upstream, make_member, make_key
):
    member = make_member()
    _key, secret = make_key(member)

    response = _post(metered, secret, FLAGGED)

    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "content_flagged" and error["details"]["categories"] == ["harassment"]
    assert fake_upstream.calls.get("chat", 0) == 0
    # Screened before anything is held: no reservation, nothing used.
    counters = UsageCounter.objects.filter(scope="workspace", scope_id=member.workspace_id)
    assert all((c.used, c.reserved) == (0, 0) for c in counters)
    assert not Reservation.objects.exists()
    log = ModerationLog.objects.get()
    assert log.flagged and log.categories == ["harassment"]
    assert log.user_id == member.user_id and log.workspace_id == member.workspace_id
    assert log.request_id == error["details"]["request_id"]
    assert log.excerpt.startswith("Please summarize: FLAGME")
    assert UsageEvent.objects.get().status == "refused"


def test_clean_input_is_logged_too(metered, make_member, make_key):
    _key, secret = make_key(make_member())
    assert _post(metered, secret, TEXT).status_code == 201
    log = ModerationLog.objects.get()
    assert not log.flagged and log.request_id == UsageEvent.objects.get().request_id


def test_repeated_flags_suspend_the_person(metered, make_member, make_key):
    ModerationSettings.objects.update_or_create(pk=1, defaults={"suspend_after_flags": 2})
    member = make_member()
    _key, secret = make_key(member)
    assert [_post(metered, secret, FLAGGED).status_code for _ in range(2)] == [422, 422]
    assert User.objects.get(pk=member.user_id).is_suspended

    blocked = _post(metered, secret, TEXT)
    assert (blocked.status_code, blocked.json()["error"]["code"]) == (403, "workspace_suspended")


def test_operators_can_turn_the_screen_off(metered, fake_upstream, make_member, make_key):
    ModerationSettings.objects.update_or_create(pk=1, defaults={"enabled": False})
    _key, secret = make_key(make_member())
    assert _post(metered, secret, FLAGGED).status_code == 201
    assert fake_upstream.calls.get("moderations", 0) == 0
    assert not ModerationLog.objects.exists()


def test_the_environment_can_turn_the_screen_off(
    metered, fake_upstream, settings, make_member, make_key
):
    settings.TOLLGATE_MODERATION = "off"
    _key, secret = make_key(make_member())
    assert _post(metered, secret, FLAGGED).status_code == 201
    assert fake_upstream.calls.get("moderations", 0) == 0


def test_a_provider_without_moderation_gets_an_error_naming_it(
    metered, fake_upstream, make_member, make_key
):
    fake_upstream.fail_next("404", endpoint="moderations")
    _key, secret = make_key(make_member())
    response = _post(metered, secret, TEXT)
    assert response.status_code == 502  # fail-closed: no call without the screen
    error = response.json()["error"]
    assert "moderation" in error["message"] and "TOLLGATE_MODERATION=off" in error["message"]
    assert error["details"]["stage"] == "moderation"
    assert fake_upstream.calls.get("chat", 0) == 0
    assert not Reservation.objects.exists()


def test_old_excerpts_are_blanked_after_the_retention_flag_and_category_stay(db, workspace):
    ModerationSettings.objects.update_or_create(pk=1, defaults={"log_retention_days": 7})
    old = ModerationLog.objects.create(
        workspace=workspace, request_id="old", excerpt="said", flagged=True, categories=["hate"]
    )
    ModerationLog.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(days=8))
    ModerationLog.objects.create(workspace=workspace, request_id="new", excerpt="fresh")
    assert purge_moderation_logs.delay().get() == 1
    rows = ModerationLog.objects.order_by("request_id").values_list(
        "request_id", "excerpt", "flagged", "categories"
    )
    assert list(rows) == [("new", "fresh", False, []), ("old", "", True, ["hate"])]
