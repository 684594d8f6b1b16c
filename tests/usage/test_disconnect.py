"""A client that hangs up mid-call: the call still completes, is recorded and
settles (nothing lost), and the stored result is there for a retry."""

from __future__ import annotations

import time

import httpx
import pytest

from ai_features.models import Summary
from tests.usage.helpers import TEXT, auth, summaries_url
from usage.models import Reservation, UsageCounter, UsageEvent


def test_client_disconnect_during_a_call_still_records_it(
    metered, fake_upstream, make_member, make_key
):
    member = make_member()
    _key, secret = make_key(member)
    warm = {"text": "warm up the key cache"}
    fake_upstream.set_latency(0)
    assert httpx.post(summaries_url(metered), json=warm, headers=auth(secret)).status_code == 201
    fake_upstream.set_latency(1500)  # per upstream call: moderation + chat

    with pytest.raises(httpx.ReadTimeout):
        httpx.post(summaries_url(metered), json={"text": TEXT}, headers=auth(secret), timeout=1.0)

    deadline = time.monotonic() + 15
    while UsageEvent.objects.count() < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    _warm, event = UsageEvent.objects.order_by("created_at")
    assert event.status == "ok" and event.total_tokens > 0
    assert Summary.objects.filter(request_id=event.request_id).exists()
    counter = UsageCounter.objects.get(scope="workspace", scope_id=member.workspace_id)
    assert (counter.used, counter.reserved) == (_warm.total_tokens + event.total_tokens, 0)
    assert not Reservation.objects.exists()
