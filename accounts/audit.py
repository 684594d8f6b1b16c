"""The audit log: one way to write an entry (for every app: keys, consents,
billing details, exports...) and the owners' reads (filters, CSV).

Entries are written by the service that did the thing, in its transaction."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from django.db.models import QuerySet

from accounts.models import AuditEvent, User, Workspace
from config import clock
from config.tabular import Column, Kind, csv_lines

# The actions the owners' page offers as a filter, grouped for people.
ACTION_GROUPS: dict[str, tuple[str, ...]] = {
    "Invitations": ("invitation.",),
    "Members and roles": ("member.", "workspace.ownership_transferred"),
    "API keys": ("key.",),
    "Billing and consent": ("billing.", "consent."),
    "Suspensions": ("workspace.suspended", "workspace.unsuspended", "user.suspended"),
    "Security": ("security.",),
    "Deletions": ("workspace.deletion", "workspace.deleted", "user.deleted", "content."),
    "Exports": ("export.",),
    "Workspace": ("workspace.created", "workspace.renamed", "privacy."),
}


def record(
    *,
    workspace: Workspace | None,
    actor: User | None,
    action: str,
    target: str = "",
    **data,
) -> AuditEvent:
    """Append one audit entry. `action` is "<area>.<verb>" (see ACTION_GROUPS)."""
    return AuditEvent.objects.create(
        workspace=workspace, actor=actor, action=action, target=str(target)[:254], data=data
    )


@dataclass(frozen=True)
class AuditFilters:
    actor_id: int | None = None
    group: str = ""
    since: date | None = None
    until: date | None = None


def audit_log(*, workspace: Workspace, filters: AuditFilters) -> QuerySet[AuditEvent]:
    events = AuditEvent.objects.for_workspace(workspace).select_related("actor")
    if filters.actor_id:
        events = events.filter(actor_id=filters.actor_id)
    if filters.group in ACTION_GROUPS:
        from django.db.models import Q

        query = Q()
        for prefix in ACTION_GROUPS[filters.group]:
            query |= Q(action__startswith=prefix)
        events = events.filter(query)
    tz = clock.now().tzinfo
    if filters.since:
        events = events.filter(created_at__gte=datetime.combine(filters.since, time.min, tz))
    if filters.until:
        end = datetime.combine(filters.until + timedelta(days=1), time.min, tz)
        events = events.filter(created_at__lt=end)
    return events


def audit_actors(*, workspace: Workspace) -> QuerySet[User]:
    """Everyone who appears in the workspace's log (for the "who" filter)."""
    ids = AuditEvent.objects.for_workspace(workspace).values("actor_id")
    return User.objects.filter(pk__in=ids).order_by("email")


def _details(event: AuditEvent) -> str:
    return "; ".join(f"{k}={v}" for k, v in sorted((event.data or {}).items()))


# Through the one table helper (config.tabular): formula-escaped text, UTC times.
CSV_COLUMNS = (
    Column("time_utc", Kind.DATETIME, get=lambda e: e.created_at),
    Column("actor", get=lambda e: e.actor.email if e.actor else "Tollgate operator"),
    Column("action", get=lambda e: e.action),
    Column("target", get=lambda e: e.target),
    Column("details", get=_details),
)


def audit_csv_rows(events: QuerySet[AuditEvent]) -> Iterator[str]:
    """The CSV, a line at a time (streamed: a large log never sits in memory)."""
    return csv_lines(CSV_COLUMNS, events.iterator(chunk_size=500))
