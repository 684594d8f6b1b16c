"""Streaming accounting in `metering.stream`: usage from the final chunk; a
consumer that stops early still gets the call recorded exactly; a stream that
never reports usage is charged its reservation and flagged."""

from __future__ import annotations

import pytest

from accounts.models import Membership
from config.errors import UpstreamError
from tests.usage.helpers import run_async
from usage import metering
from usage.models import Reservation, UsageCounter, UsageEvent

# The fake answers with the first sentences of the input, one chunk per word:
# a long sentence makes a long stream.
LONG_SENTENCE = " ".join(f"word{i}" for i in range(400)) + "."
MESSAGES = [{"role": "user", "content": LONG_SENTENCE}]


@pytest.fixture
def caller(fake_upstream, rate_card, transactional_db, make_member):
    membership = Membership.objects.select_related("workspace", "user").get(pk=make_member().pk)
    return metering.Caller(membership.workspace, membership.user, membership)


async def _consume(caller, *, stop_after: int | None = None, messages=MESSAGES):
    deltas, final, still_running = [], None, None
    gen = metering.stream(caller=caller, feature="chat", messages=messages, max_output_tokens=300)
    try:
        async for item in gen:
            if isinstance(item, metering.Completion):
                final = item
            else:
                deltas.append(item)
                if stop_after is not None and len(deltas) >= stop_after:
                    still_running = any(not t.done() for t in metering._in_flight)
                    break  # the client went away
    finally:
        await gen.aclose()
        await metering.drain_in_flight()
    return deltas, final, still_running


def test_full_stream_reports_usage_from_the_final_chunk(caller):
    deltas, final, _ = run_async(_consume(caller))
    assert len(deltas) > 100 and final is not None
    event = UsageEvent.objects.get(pk=final.event_id)
    assert event.streamed and event.status == "ok" and not event.flagged
    assert event.total_tokens == final.usage.total_tokens > 0
    assert event.output_tokens == final.usage.output_tokens


def test_client_disconnect_mid_stream_charges_what_was_produced(caller):
    """A consumer that leaves mid-stream is a Stop (docs/architecture.md): the
    upstream stream is closed and what was produced is charged — the upstream's
    usage when it arrived, else the prompt estimate plus a tokenizer count of the
    text received, flagged for reconciliation. Recorded once, nothing held."""
    _deltas, full, _ = run_async(_consume(caller))
    _partial, none, still_running = run_async(_consume(caller, stop_after=2))

    assert none is None
    assert still_running  # the consumer left while the upstream was still streaming
    events = list(UsageEvent.objects.order_by("created_at"))
    assert len(events) == 2
    cut = events[1]
    assert cut.status == "stopped"
    assert 0 < cut.output_tokens < full.usage.output_tokens
    assert cut.flagged == cut.flag_reason.startswith("stopped_estimated")
    counter = UsageCounter.objects.get(scope="workspace", scope_id=caller.workspace.pk)
    assert counter.used == full.usage.total_tokens + cut.total_tokens
    assert counter.reserved == 0
    assert not Reservation.objects.exists()


def test_stream_without_usage_charges_the_reservation_and_flags(caller, fake_upstream):
    fake_upstream.fail_next("no_usage")
    _deltas, final, _ = run_async(_consume(caller))
    event = UsageEvent.objects.get()
    assert event.status == "incomplete" and event.flagged
    assert event.total_tokens == event.reserved_tokens == final.usage.total_tokens


def test_stream_cut_after_tokens_charges_the_reservation(caller, fake_upstream):
    fake_upstream.fail_next("cut", after_chunks=3)
    with pytest.raises(UpstreamError):
        run_async(_consume(caller))
    event = UsageEvent.objects.get()
    assert event.status == "incomplete" and event.flagged
    assert event.total_tokens == event.reserved_tokens
    assert not Reservation.objects.exists()
