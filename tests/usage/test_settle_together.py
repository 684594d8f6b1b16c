"""Settles run together (usage.reservations.settle_together): one transaction
for several calls — each charged exactly as alone, the workspace's running
total stored on each event, and a batch that fails keeps nothing."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.db import IntegrityError

from config import clock
from usage.models import Reservation, UsageCounter, UsageEvent, UsageRollup
from usage.money import Prices
from usage.reservations import Hold, settle, settle_together

PRICES = Prices("gpt-4o-mini", Decimal("0.15"), Decimal("0.075"), Decimal("0.60"))


def _counter(workspace) -> UsageCounter:
    return UsageCounter.objects.create(
        workspace=workspace,
        scope="workspace",
        scope_id=workspace.pk,
        period_start=clock.now(),
        reserved=3 * 500,
    )


def _item(workspace, owner, counter, n: int, used: int) -> dict:
    request_id = f"req_together_{n}"
    Reservation.objects.create(
        request_id=request_id,
        workspace=workspace,
        tokens=500,
        counter_ids=[counter.pk],
        sent=True,
        user_id=owner.pk,
        feature="summarize",
        model="gpt-4o-mini",
        input_tokens=200,
    )
    event = UsageEvent(
        workspace_id=workspace.pk,
        user_id=owner.pk,
        feature="summarize",
        model="gpt-4o-mini",
        input_tokens=used - 40,
        output_tokens=40,
        total_tokens=used,
        reserved_tokens=500,
        input_price=PRICES.input_per_million,
        cached_input_price=PRICES.cached_input_per_million,
        output_price=PRICES.output_per_million,
        cost=Decimal("0.000051"),
        request_id=request_id,
        created_at=clock.now(),
    )
    hold = Hold(request_id, 500, (counter.pk,), PRICES, None)
    return {"hold": hold, "event": event, "on_recorded": lambda e, n=n: f"stored {n}"}


def test_each_call_is_charged_as_alone(db, workspace, owner):
    counter = _counter(workspace)
    items = [_item(workspace, owner, counter, n, used) for n, used in enumerate((220, 300, 150))]

    assert settle_together(items) == ["stored 0", "stored 1", "stored 2"]

    counter.refresh_from_db()
    assert (counter.reserved, counter.used) == (0, 670)
    assert not Reservation.objects.exists()
    events = UsageEvent.objects.order_by("workspace_used_after")
    assert [e.total_tokens for e in events] == [220, 300, 150]  # in the order given
    assert [e.workspace_used_after for e in events] == [220, 520, 670]  # running totals
    (rollup,) = UsageRollup.objects.filter(workspace=workspace)
    assert (rollup.requests, rollup.total_tokens) == (3, 670)


def test_a_batch_that_fails_keeps_nothing(db, workspace, owner):
    counter = _counter(workspace)
    items = [_item(workspace, owner, counter, n, 200) for n in range(3)]
    settle(**items[1])  # recorded already (e.g. by the recovery task)
    counter.refresh_from_db()
    before = (counter.reserved, counter.used)

    with pytest.raises(IntegrityError):
        settle_together(items)

    counter.refresh_from_db()
    assert (counter.reserved, counter.used) == before
    assert set(Reservation.objects.values_list("request_id", flat=True)) == {
        "req_together_0",
        "req_together_2",
    }
    assert UsageEvent.objects.count() == 1
    # Each alone (what the pool does next): the others settle, the duplicate refuses.
    settle(**items[0])
    settle(**items[2])
    with pytest.raises(IntegrityError):
        settle(**items[1])
    counter.refresh_from_db()
    assert (counter.reserved, counter.used) == (0, 600)
