"""Settles run together (usage.reservations.settle_together): one transaction
for several calls — each charged exactly as alone, the workspace's running
total stored on each event, and a batch that fails keeps nothing."""

from __future__ import annotations

import pytest
from django.db import IntegrityError

from config import clock
from tests.usage.helpers import a_sent_call
from usage.models import Reservation, UsageCounter, UsageEvent, UsageRollup
from usage.reservations import settle, settle_together


def _counter(workspace) -> UsageCounter:
    return UsageCounter.objects.create(
        workspace=workspace,
        scope="workspace",
        scope_id=workspace.pk,
        period_start=clock.now(),
        reserved=3 * 500,
    )


def _item(workspace, owner, counter, n: int, used: int) -> dict:
    call = a_sent_call(
        workspace=workspace, owner=owner, counter=counter, request_id=f"req_together_{n}", used=used
    )
    return {**call, "on_recorded": lambda e, n=n: f"stored {n}"}


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
