"""Upstream failures: the API's error codes, and a call that consumed no tokens
costs nothing; a call whose usage never arrived is charged its reservation
and flagged."""

from __future__ import annotations

import httpx
import pytest

from tests.usage.helpers import TEXT, auth, summaries_url
from usage.models import Reservation, UsageCounter, UsageEvent


def _nothing_charged(workspace_id: int) -> None:
    counter = UsageCounter.objects.get(scope="workspace", scope_id=workspace_id)
    assert (counter.used, counter.reserved) == (0, 0)
    assert not Reservation.objects.exists()
    event = UsageEvent.objects.get()
    assert (event.status, event.total_tokens, event.cost) == ("error", 0, 0)


@pytest.mark.parametrize(
    ("fault", "times", "status", "code"),
    [("429", 3, 503, "upstream_unavailable"), ("500", 3, 502, "upstream_error")],
)
def test_provider_errors_after_retries_cost_nothing(
    metered, fake_upstream, make_member, make_key, fault, times, status, code
):
    member = make_member()
    _key, secret = make_key(member)
    fake_upstream.fail_next(fault, times=times)

    response = httpx.post(summaries_url(metered), json={"text": TEXT}, headers=auth(secret))

    assert response.status_code == status, response.text
    assert response.json()["error"]["code"] == code
    assert fake_upstream.api_key not in response.text
    _nothing_charged(member.workspace_id)
    assert UsageEvent.objects.get().error_code == code


def test_a_retried_429_that_then_succeeds_is_charged_once(
    metered, fake_upstream, make_member, make_key
):
    member = make_member()
    _key, secret = make_key(member)
    fake_upstream.fail_next("429", times=1)
    response = httpx.post(summaries_url(metered), json={"text": TEXT}, headers=auth(secret))
    assert response.status_code == 201
    assert UsageEvent.objects.filter(status="ok").count() == 1


def test_timeout_is_504_and_costs_nothing(metered, fake_upstream, settings, make_member, make_key):
    settings.OPENAI_TIMEOUT_SECONDS = 0.3
    settings.OPENAI_MAX_RETRIES = 0
    member = make_member()
    _key, secret = make_key(member)
    fake_upstream.fail_next("delay", ms=1500)

    response = httpx.post(summaries_url(metered), json={"text": TEXT}, headers=auth(secret))

    assert response.status_code == 504
    assert response.json()["error"]["code"] == "upstream_timeout"
    _nothing_charged(member.workspace_id)


def test_missing_usage_charges_the_reservation_and_flags_the_event(
    metered, fake_upstream, make_member, make_key
):
    member = make_member()
    _key, secret = make_key(member)
    fake_upstream.fail_next("no_usage")

    response = httpx.post(
        summaries_url(metered), json={"text": TEXT, "length": "short"}, headers=auth(secret)
    )

    assert response.status_code == 201
    event = UsageEvent.objects.get()
    assert event.status == "incomplete" and event.flagged
    assert event.total_tokens == event.reserved_tokens > 200  # input estimate + max output
    assert event.cost > 0
    assert response.json()["usage"]["total_tokens"] == event.total_tokens
    counter = UsageCounter.objects.get(scope="workspace", scope_id=member.workspace_id)
    assert (counter.used, counter.reserved) == (event.total_tokens, 0)


def test_a_model_without_a_price_is_refused_and_nothing_is_charged(
    fake_upstream, live_url, make_member, make_key
):
    member = make_member()  # no rate card at all
    _key, secret = make_key(member)

    response = httpx.post(summaries_url(live_url), json={"text": TEXT}, headers=auth(secret))

    assert response.status_code == 503
    error = response.json()["error"]
    assert error["details"]["reason"] == "model_not_priced"
    assert fake_upstream.calls.get("chat", 0) == 0
    assert not UsageEvent.objects.exists() and not Reservation.objects.exists()
