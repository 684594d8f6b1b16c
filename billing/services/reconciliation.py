"""Reconciliation: the ledger against the upstream organization's own usage
and costs, per day x model (x the upstream key/project when
OPENAI_UPSTREAM_KEY_ID names ours), for requests, input, cached input and
output tokens. Each day gets one `ReconciliationRun` (ours, theirs, the
difference, the upstream's cost); drift over the operator's threshold emails
operators once per day and shows in admin beside the day's flagged events."""

from __future__ import annotations

import logging
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from django.db import transaction
from django.db.models import Count, Q, Sum

from billing import upstream_admin
from billing.models import (
    EconomicsSettings,
    ReconciliationLine,
    ReconciliationRun,
    ReconciliationStatus,
)
from billing.services.operator_mail import notify_operators_once
from config import clock
from usage.models import EventStatus, UsageEvent

logger = logging.getLogger(__name__)

METRICS = ("requests", "input_tokens", "cached_input_tokens", "output_tokens")
# Events that reached the upstream (errors and moderation refusals cost nothing there).
BILLED_STATUSES = (EventStatus.OK, EventStatus.INCOMPLETE)


def yesterday() -> date:
    return clock.now().date() - timedelta(days=1)


def day_range(day: date) -> tuple[datetime, datetime]:
    start = datetime.combine(day, time.min, tzinfo=UTC)
    return start, start + timedelta(days=1)


def ledger_day(day: date) -> dict[str, dict]:
    """Our figures per model for one UTC day, and the day's flagged/unsettled
    events: ONE grouped query over the day's range of the ledger (BRIN index on
    created_at), not a scan per workspace."""
    return {row.pop("model"): row for row in ledger_day_query(day)}


def ledger_day_query(day: date):
    start, end = day_range(day)
    billed = Q(status__in=BILLED_STATUSES)
    return (
        UsageEvent.objects.filter(created_at__gte=start, created_at__lt=end)
        .order_by()
        .values("model")
        .annotate(
            requests=Count("id", filter=billed),
            input_tokens=Sum("input_tokens", filter=billed),
            cached_input_tokens=Sum("cached_input_tokens", filter=billed),
            output_tokens=Sum("output_tokens", filter=billed),
            cost=Sum("cost", filter=billed),
            flagged=Count("id", filter=Q(flagged=True) | Q(status=EventStatus.INCOMPLETE)),
        )
    )


def drift_percent(ours: int, theirs: int) -> Decimal:
    if ours == theirs:
        return Decimal(0)
    base = max(abs(ours), 1)
    return (Decimal(abs(theirs - ours)) * 100 / Decimal(base)).quantize(Decimal("0.0001"))


def _lines(ours: dict[str, dict], theirs: upstream_admin.UpstreamFigures) -> list[dict]:
    _group, ident = upstream_admin.scope()
    keys = {(model, ident) for model in ours} | theirs.keys()
    lines = []
    for model, scope in sorted(keys):
        mine = ours.get(model, {}) if scope == ident else {}
        line: dict[str, Any] = {"model": model, "upstream_scope": scope}
        for metric in METRICS:
            line[f"our_{metric}"] = int(mine.get(metric) or 0)
            line[f"their_{metric}"] = int(getattr(theirs, metric).get((model, scope), 0))
        line["ledger_cost"] = mine.get("cost") or Decimal(0)
        line["upstream_cost"] = theirs.cost.get((model, scope)) if theirs.cost_reported else None
        line["drift_percent"] = max(
            drift_percent(line[f"our_{m}"], line[f"their_{m}"]) for m in METRICS
        )
        lines.append(line)
    return lines


def _store(
    day: date, lines: list[dict], theirs, threshold: Decimal, flagged: int
) -> ReconciliationRun:
    now = clock.now()
    total = lambda side, metric: sum(line[f"{side}_{metric}"] for line in lines)  # noqa: E731
    tokens = ("input_tokens", "output_tokens")
    max_drift = max((line["drift_percent"] for line in lines), default=Decimal(0))
    with transaction.atomic():
        run, _ = ReconciliationRun.objects.update_or_create(
            day=day,
            defaults={
                "status": ReconciliationStatus.DRIFT
                if max_drift > threshold
                else ReconciliationStatus.MATCHED,
                "grouped_by": "day x model x key" if upstream_admin.scope()[1] else "day x model",
                "our_requests": total("our", "requests"),
                "their_requests": total("their", "requests"),
                "our_tokens": sum(total("our", m) for m in tokens),
                "their_tokens": sum(total("their", m) for m in tokens),
                "ledger_cost": sum((line["ledger_cost"] for line in lines), Decimal(0)),
                "upstream_cost": sum(theirs.cost.values(), Decimal(0))
                if theirs.cost_reported
                else None,
                "max_drift_percent": max_drift,
                "threshold_percent": threshold,
                "flagged_events": flagged,
                "note": "",
                "updated_at": now,
            },
        )
        run.lines.all().delete()
        ReconciliationLine.objects.bulk_create(ReconciliationLine(run=run, **ln) for ln in lines)
    return run


def _alert(run: ReconciliationRun) -> None:
    worst = run.lines.order_by("-drift_percent").first()
    body = (
        f"The ledger and the upstream disagree for {run.day} by up to "
        f"{run.max_drift_percent}% (threshold {run.threshold_percent}%).\n"
        f"Requests: ours {run.our_requests}, upstream {run.their_requests}.\n"
        f"Tokens (input + output): ours {run.our_tokens}, upstream {run.their_tokens}.\n"
        f"Upstream cost: {run.upstream_cost} USD; ledger cost {run.ledger_cost} USD.\n"
    )
    if worst is not None:
        body += f"Worst line: {worst.model} {worst.upstream_scope} — {worst.differences()}\n"
    body += f"Flagged/unsettled ledger events that day: {run.flagged_events}.\n"
    if notify_operators_once(
        kind="reconciliation_drift",
        key=run.day.isoformat(),
        subject=f"Reconciliation drift {run.max_drift_percent}% on {run.day}",
        body=body,
    ):
        ReconciliationRun.objects.filter(pk=run.pk).update(alerted_at=clock.now())


def reconcile_day(*, day: date) -> ReconciliationRun | None:
    """Fetch the upstream's figures for `day`, compare, store, alert once.
    None (and one warning, one operator email ever) without an admin key."""
    if not upstream_admin.is_configured():
        if notify_operators_once(
            kind="no_admin_key",
            key="-",
            subject="Upstream reconciliation is off: OPENAI_ADMIN_KEY is not set",
            body="The nightly reconciliation needs the organization's admin key "
            "(OPENAI_ADMIN_KEY). It skips until one is set.",
        ):
            logger.warning("reconciliation skipped: OPENAI_ADMIN_KEY is not set")
        return None
    theirs = upstream_admin.fetch_day(day)  # raises after the SDK's retries: the task retries
    threshold = EconomicsSettings.current().drift_threshold_percent
    ours = ledger_day(day)
    flagged = sum(row.pop("flagged") for row in ours.values())
    ours = {model: row for model, row in ours.items() if row["requests"]}
    run = _store(day, _lines(ours, theirs), theirs, threshold, flagged)
    if run.status == ReconciliationStatus.DRIFT:
        _alert(run)
    return run


def cost_scale_for(start: date, end: date) -> dict[date, Decimal]:
    """Upstream cost ÷ ledger cost per reconciled day in [start, end)."""
    runs = ReconciliationRun.objects.filter(
        day__gte=start, day__lt=end, upstream_cost__isnull=False, ledger_cost__gt=0
    )
    return {
        run.day: run.upstream_cost / run.ledger_cost
        for run in runs
        if run.upstream_cost is not None  # the query excludes it; says so to the checker
    }
