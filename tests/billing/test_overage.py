"""Metered overage through the real meter: each call past the included tokens
writes an outbox row right after its charge commits; a task sends it to Stripe as
a meter event identified by the usage event's id (a resend is dropped)."""

from __future__ import annotations

import datetime as dt
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

import httpx
import pytest
from django.conf import settings
from django.core import mail

from billing.limits import workspace_limits
from billing.models import BillingNotice, OverageReport, Tier
from billing.services.catalog import tier_sync_to_stripe
from billing.services.overage import overage_report_send
from billing.tasks import finish_usage_hooks
from config import clock
from tests.billing.conftest import make_tiers
from tests.billing.test_flow import subscribe
from usage.models import UsageCounter, UsageEvent

pytestmark = pytest.mark.slow

TEXT = "Metered overage is reported to Stripe from an outbox, once per usage event."


def _post_summary(metered: str, secret: str) -> httpx.Response:
    return httpx.post(
        f"{metered}/api/v1/summaries",
        json={"text": TEXT, "length": "short"},
        headers={"Authorization": f"Bearer {secret}"},
        timeout=30,
    )


def _summarize(metered: str, secret: str) -> None:
    response = _post_summary(metered, secret)
    assert response.status_code == 201, response.text


def test_overage_goes_to_stripe_once_per_usage_event(
    metered, fake_stripe, workspace, owner, make_key
):
    tiers = make_tiers()
    Tier.objects.filter(pk=tiers["team"].pk).update(included_tokens=300)
    team = tier_sync_to_stripe(tier=Tier.objects.get(pk=tiers["team"].pk))
    sub = subscribe(workspace, team, fake_stripe)
    limits = workspace_limits(workspace)
    assert limits.overage_policy == "metered"
    assert limits.overage_token_allowance == 5_000_000  # $40 cap / $8 per 1M

    _key, secret = make_key(owner.memberships.get())
    for _ in range(4):  # ~120 tokens each: the third and fourth run past 300
        _summarize(metered, secret)

    used = UsageCounter.objects.get(scope="workspace", scope_id=workspace.pk).used
    reports = list(OverageReport.objects.order_by("pk"))
    assert sum(r.tokens for r in reports) == used - 300 > 0
    events = set(UsageEvent.objects.values_list("pk", flat=True))
    assert {r.usage_event_id for r in reports} <= events
    assert all(r.sent_at for r in reports)
    event_name = settings.BILLING_OVERAGE_METER_EVENT
    assert fake_stripe.meter_total(sub.stripe_customer_id, event_name) == Decimal(used - 300)

    # A resend (crashed worker, retried task) is dropped by the identifier.
    OverageReport.objects.filter(pk=reports[0].pk).update(sent_at=None)
    overage_report_send(report_pk=reports[0].pk)
    assert fake_stripe.meter_total(sub.stripe_customer_id, event_name) == Decimal(used - 300)

    # 50/80/100 % alerts: once each per period, to owners and admins.
    kinds = set(BillingNotice.objects.values_list("kind", flat=True))
    assert kinds == {"usage_50", "usage_80", "usage_100"}
    assert len(mail.outbox) == 3 and all(m.to == [owner.email] for m in mail.outbox)
    assert all(m.alternatives for m in mail.outbox)  # text + HTML


def test_the_workspace_spend_cap_stops_overage_with_402(
    metered, fake_stripe, workspace, owner, make_key
):
    tiers = make_tiers()
    # 300 included + a $0.01 cap at $100 per 1M = 100 overage tokens at most.
    Tier.objects.filter(pk=tiers["team"].pk).update(
        included_tokens=300,
        overage_price_per_million=Decimal("100"),
        overage_spend_cap=Decimal("0.01"),
    )
    team = tier_sync_to_stripe(tier=Tier.objects.get(pk=tiers["team"].pk))
    subscribe(workspace, team, fake_stripe)
    assert workspace_limits(workspace).hard_token_limit == 400

    _key, secret = make_key(owner.memberships.get())
    statuses = []
    while not statuses or (statuses[-1] == 201 and len(statuses) < 6):
        response = _post_summary(metered, secret)
        statuses.append(response.status_code)
    assert statuses[-1] == 402, statuses
    error = response.json()["error"]
    assert (error["code"], error["details"]["cap"]) == ("spend_cap_reached", "workspace")
    assert UsageCounter.objects.get(scope="workspace", scope_id=workspace.pk).used <= 400


def test_what_a_crash_after_the_charge_left_undone_the_sweeper_finishes(
    metered, fake_stripe, workspace, owner, make_key, settings
):
    """Billing's hook runs after the charge commits. A process that dies in
    between leaves charged events with no overage report and no alert; the
    beat's sweeper finds them from the total each event stored, once."""
    tiers = make_tiers()
    Tier.objects.filter(pk=tiers["team"].pk).update(included_tokens=300)
    team = tier_sync_to_stripe(tier=Tier.objects.get(pk=tiers["team"].pk))
    sub = subscribe(workspace, team, fake_stripe)
    _key, secret = make_key(owner.memberships.get())

    hook = settings.TOLLGATE_USAGE_RECORDED_HOOK
    settings.TOLLGATE_USAGE_RECORDED_HOOK = None  # every hook "lost" to a crash
    for _ in range(4):
        _summarize(metered, secret)
    assert not OverageReport.objects.exists() and not BillingNotice.objects.exists()
    events = list(UsageEvent.objects.order_by("workspace_used_after"))
    running = 0
    for event in events:  # each event carries the exact total after it
        running += event.total_tokens
        assert event.workspace_used_after == running

    settings.TOLLGATE_USAGE_RECORDED_HOOK = hook
    assert finish_usage_hooks() == 0  # too young: their hooks may still be running
    with clock.travel(clock.now() + dt.timedelta(minutes=2), frozen=False):
        finished = finish_usage_hooks()
        assert finish_usage_hooks() == 0  # nothing twice
    assert finished >= 2  # the events past 300, and those crossing 50 % / 80 %

    used = UsageCounter.objects.get(scope="workspace", scope_id=workspace.pk).used
    assert sum(OverageReport.objects.values_list("tokens", flat=True)) == used - 300
    event_name = settings.BILLING_OVERAGE_METER_EVENT
    assert fake_stripe.meter_total(sub.stripe_customer_id, event_name) == Decimal(used - 300)
    kinds = set(BillingNotice.objects.values_list("kind", flat=True))
    assert kinds == {"usage_50", "usage_80", "usage_100"}
    assert len(mail.outbox) == 3


def test_each_event_stores_the_exact_total_after_it_under_concurrency(
    metered, fake_stripe, workspace, owner, make_key
):
    """40 calls at once: the totals the settle statement stored are the running
    sums of the events in commit order (no two alike, none skipped), so the
    overage reports add up to exactly the tokens past the included amount."""
    tiers = make_tiers()
    Tier.objects.filter(pk=tiers["team"].pk).update(included_tokens=1000)
    team = tier_sync_to_stripe(tier=Tier.objects.get(pk=tiers["team"].pk))
    subscribe(workspace, team, fake_stripe)
    _key, secret = make_key(owner.memberships.get())

    with ThreadPoolExecutor(max_workers=40) as pool:
        list(pool.map(lambda _: _summarize(metered, secret), range(40)))

    events = list(UsageEvent.objects.order_by("workspace_used_after"))
    assert len(events) == 40
    running = 0
    for event in events:
        running += event.total_tokens
        assert event.workspace_used_after == running
    used = UsageCounter.objects.get(scope="workspace", scope_id=workspace.pk).used
    assert running == used
    reports = OverageReport.objects.all()
    assert sum(r.tokens for r in reports) == used - 1000
    assert len({r.usage_event_id for r in reports}) == len(reports)
