"""The meter's durable journal (usage.journal) and the claim takeover rule."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from config import clock
from tests.usage.helpers import a_sent_call
from usage import journal
from usage.idempotency import _claim, takeover_after
from usage.models import IdempotencyRecord, Reservation, UsageCounter, UsageEvent
from usage.tasks import release_stale_reservations


def _journaled_settle(workspace, owner, settings, tmp_path) -> UsageCounter:
    settings.TOLLGATE_METER_JOURNAL_DIR = str(tmp_path)
    counter = UsageCounter.objects.create(
        workspace=workspace,
        scope="workspace",
        scope_id=workspace.pk,
        period_start=clock.now(),
        reserved=500,
    )
    call = a_sent_call(
        workspace=workspace, owner=owner, counter=counter, request_id="req_journaled", used=220
    )
    journal.write(journal.entry_for(**call, moderation=None, touch_key_id=None))
    return counter


def test_a_journaled_settle_is_replayed_exactly_once(db, workspace, owner, settings, tmp_path):
    counter = _journaled_settle(workspace, owner, settings, tmp_path)
    assert len(journal.pending()) == 1

    assert journal.replay() == {"replayed": 1, "duplicate": 0, "failed": 0}
    assert journal.replay() == {"replayed": 0, "duplicate": 0, "failed": 0}

    event = UsageEvent.objects.get(request_id="req_journaled")
    assert (event.total_tokens, event.cost) == (220, Decimal("0.000051"))
    counter.refresh_from_db()
    assert (counter.reserved, counter.used) == (0, 220)
    assert not Reservation.objects.exists() and not journal.pending()


def test_the_recovery_task_replays_the_journal_before_charging_stale_reservations(
    db, workspace, owner, settings, tmp_path
):
    counter = _journaled_settle(workspace, owner, settings, tmp_path)
    Reservation.objects.update(created_at=clock.now() - timedelta(hours=1))

    outcome = release_stale_reservations.delay().get()

    # The exact usage from the journal wins; the reservation is not charged too.
    assert outcome["replayed"] == 1 and outcome["charged"] == 0
    assert UsageEvent.objects.get().status == "ok"
    counter.refresh_from_db()
    assert (counter.reserved, counter.used) == (0, 220)


def test_a_claim_is_taken_over_only_once_its_call_cannot_run(db, workspace):
    IdempotencyRecord.objects.create(
        workspace=workspace,
        key="k",
        fingerprint="f",
        created_at=clock.now() - timedelta(seconds=181),  # past the old 2 x 90 s rule
    )
    assert _claim(workspace.pk, "k", "f")[0] is False  # its call may still be running

    IdempotencyRecord.objects.update(created_at=clock.now() - takeover_after() - timedelta(1))
    assert _claim(workspace.pk, "k", "f")[0] is True
