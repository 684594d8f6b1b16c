"""The ledger is append-only in code; each event keeps the prices it was
charged at; stale reservations are released; money is Decimal."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from usage.models import AppendOnlyError, Reservation, UsageCounter, UsageEvent
from usage.money import Prices, cost_of
from usage.tasks import release_stale_reservations


@pytest.fixture
def event(db, workspace):
    return UsageEvent.objects.create(
        workspace=workspace, feature="summarize", model="m", request_id="req_1", total_tokens=5
    )


def test_events_cannot_be_changed_or_deleted(event):
    event.total_tokens = 0
    with pytest.raises(AppendOnlyError):
        event.save()
    with pytest.raises(AppendOnlyError):
        event.delete()
    with pytest.raises(AppendOnlyError):
        UsageEvent.objects.filter(pk=event.pk).update(total_tokens=0)
    with pytest.raises(AppendOnlyError):
        UsageEvent.objects.all().delete()


def test_cost_is_decimal_with_cached_tokens_at_their_own_price():
    prices = Prices("m", Decimal("2.50"), Decimal("1.25"), Decimal("10"))
    cost = cost_of(prices=prices, input_tokens=1_000, cached_input_tokens=400, output_tokens=300)
    # 600 * 2.5 + 400 * 1.25 + 300 * 10 = 1500 + 500 + 3000 = 5000 per 1M
    assert cost == Decimal("0.00500000") and isinstance(cost, Decimal)


def test_stale_reservations_are_released(db, workspace):
    counter = UsageCounter.objects.create(
        workspace=workspace,
        scope="workspace",
        scope_id=workspace.pk,
        period_start=timezone.now(),
        reserved=500,
    )
    Reservation.objects.create(
        request_id="req_dead",
        workspace=workspace,
        tokens=500,
        counter_ids=[counter.pk],
        created_at=timezone.now() - timedelta(hours=2),
    )
    outcome = release_stale_reservations.delay().get()
    assert (outcome["freed"], outcome["charged"]) == (1, 0)  # never sent: freed
    counter.refresh_from_db()
    assert (counter.reserved, counter.used) == (0, 0)


def test_a_stale_reservation_whose_call_was_sent_is_charged_once_and_flagged(
    db, workspace, owner, rate_card
):
    counter = UsageCounter.objects.create(
        workspace=workspace,
        scope="workspace",
        scope_id=workspace.pk,
        period_start=timezone.now(),
        reserved=500,
    )
    Reservation.objects.create(
        request_id="req_sent_then_killed",
        workspace=workspace,
        tokens=500,
        counter_ids=[counter.pk],
        created_at=timezone.now() - timedelta(hours=2),
        sent=True,
        user_id=owner.pk,
        feature="summarize",
        model=rate_card.model,
        input_tokens=200,
    )
    assert release_stale_reservations.delay().get()["charged"] == 1
    assert release_stale_reservations.delay().get()["charged"] == 0  # exactly once
    event = UsageEvent.objects.get(request_id="req_sent_then_killed")
    assert (event.status, event.flagged, event.total_tokens) == ("unsettled", True, 500)
    assert (event.input_tokens, event.output_tokens) == (200, 300)
    assert event.cost == Decimal("0.00021000")  # 200 * 0.15 + 300 * 0.60 per 1M
    counter.refresh_from_db()
    assert (counter.reserved, counter.used) == (0, 500)
    assert not Reservation.objects.exists()
