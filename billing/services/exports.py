"""Export jobs: request (checks the kind, the format and who may run it),
run (stream rows into a file, report progress), download links (signed,
time-limited, tenant-checked) and clean-up of expired files."""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import os
import tempfile
from dataclasses import dataclass
from typing import IO, Any

from django.conf import settings
from django.core import signing
from django.core.files import File
from django.db import transaction
from django.urls import reverse

from accounts.models import AuditEvent, Membership, User, Workspace
from billing.backoffice import is_backoffice_finance
from billing.enqueue import enqueue_on_commit
from billing.models_exports import ExportJob, ExportStatus
from config import clock
from config.errors import Forbidden, InvalidRequest, NotFound
from config.exports import ExportContext, ExportKind, get_kind
from config.tabular import Sheet, write_csv, write_xlsx

logger = logging.getLogger(__name__)

LINK_SALT = "billing.exports.download"
PROGRESS_EVERY_ROWS = 2_000  # write progress at most this often (one UPDATE each time)


@dataclass(frozen=True)
class Requester:
    """Who asks: a workspace member (workspace + membership) or back-office
    finance staff (workspace None)."""

    user: User
    workspace: Workspace | None = None
    membership: Membership | None = None


def _check_allowed(kind: ExportKind, who: Requester) -> None:
    if who.workspace is not None:
        if not kind.allows_workspace():
            raise Forbidden("This export is for the operator's finance staff only.")
        if who.membership is None or not who.membership.can(kind.perm):
            raise Forbidden("Your role in this workspace does not allow this export.")
        return
    if not kind.allows_backoffice():
        raise Forbidden("This export is made per workspace.")
    if not is_backoffice_finance(who.user):
        raise Forbidden("Only the operator's finance staff may run back-office exports.")


def export_request(
    *,
    who: Requester,
    kind: str,
    fmt: str,
    start: dt.datetime | None = None,
    end: dt.datetime | None = None,
    filters: dict[str, str] | None = None,
) -> ExportJob:
    """Queue an export job (the worker runs it after commit)."""
    entry = get_kind(kind)
    if entry is None:
        raise InvalidRequest("Unknown export kind.", details={"kind": [f"unknown: {kind}"]})
    if fmt not in entry.formats:
        raise InvalidRequest(
            f"{entry.title} can be exported as {', '.join(entry.formats)}.",
            details={"format": [f"one of {', '.join(entry.formats)}"]},
        )
    if start and end and start >= end:
        raise InvalidRequest("The start must be before the end.", details={"end": ["before start"]})
    _check_allowed(entry, who)
    with transaction.atomic():
        job = ExportJob.objects.create(
            workspace=who.workspace,
            requested_by=who.user,
            kind=kind,
            format=fmt,
            start=start,
            end=end,
            filters=dict(filters or {}),
        )
        AuditEvent.objects.create(
            workspace=who.workspace,
            actor=who.user,
            action="export.requested",
            target=str(job.pk),
            data={"kind": kind, "format": fmt, "filters": job.filters},
        )
        enqueue_on_commit("run_export", str(job.pk))
    return job


# --- running ---------------------------------------------------------------------


class _Progress:
    """Turns rows written into a percent and saves it now and then."""

    def __init__(self, job: ExportJob, expected: int | None) -> None:
        self.job = job
        self.expected = expected or 0
        self.last_saved = -1

    def rows(self, done: int) -> None:
        if done - self.last_saved < PROGRESS_EVERY_ROWS and self.last_saved >= 0:
            return
        self.last_saved = done
        if self.expected:
            self.percent(min(99, done * 100 // self.expected))

    def percent(self, value: int) -> None:
        value = max(0, min(99, int(value)))
        if value > self.job.progress:
            self.job.progress = value
            ExportJob.objects.filter(pk=self.job.pk).update(progress=value)


def _filename(job: ExportJob) -> str:
    def day(value: dt.datetime | None) -> str:
        return value.astimezone(dt.UTC).strftime("%Y%m%d") if value else "all"

    span = f"{day(job.start)}-{day(job.end - dt.timedelta(microseconds=1) if job.end else None)}"
    return f"{job.kind}-{span}.{job.format}"


def build_file(entry: ExportKind, ctx: ExportContext, out: IO[bytes], progress: _Progress) -> int:
    """Write one export to a binary file object; returns data rows written."""
    if entry.writer is not None:
        entry.writer(ctx, out)
        return 0
    assert entry.sheets is not None
    sheets: list[Sheet] = list(entry.sheets(ctx))
    if ctx.format == "csv":
        import io

        text = io.TextIOWrapper(out, encoding="utf-8", newline="")
        try:
            return write_csv(text, sheets[0].columns, sheets[0].rows, on_row=progress.rows)
        finally:
            text.flush()
            text.detach()
    created = ctx.end or clock.now()
    return write_xlsx(out, sheets, created=created, title=entry.title, on_row=progress.rows)


def export_run(*, job_id: str) -> ExportJob | None:
    """Run a queued job (the Celery task calls this). Rows stream from the
    database into a temp file, which is then saved to storage."""
    with transaction.atomic():
        job = ExportJob.objects.select_for_update(skip_locked=True).filter(pk=job_id).first()
        if job is None or job.status != ExportStatus.QUEUED:
            return job  # unknown, taken by another worker, or already finished
        job.status = ExportStatus.RUNNING
        job.started_at = clock.now()
        job.save(update_fields=["status", "started_at"])
    entry = get_kind(job.kind)
    try:
        if entry is None:
            raise InvalidRequest(f"Export kind {job.kind!r} is no longer available.")
        _run(job, entry)
    except Exception as exc:  # the job records why; the worker doesn't retry a bad export
        logger.exception("export %s (%s) failed", job.pk, job.kind)
        message = exc.message if isinstance(exc, InvalidRequest) else "The export failed."
        ExportJob.objects.filter(pk=job.pk).update(
            status=ExportStatus.FAILED, error=message, finished_at=clock.now()
        )
    job.refresh_from_db()
    return job


def _run(job: ExportJob, entry: ExportKind) -> None:
    progress = _Progress(job, None)
    ctx = ExportContext(
        workspace=job.workspace,
        start=job.start,
        end=job.end,
        format=job.format,
        filters=job.filters,
        requested_by=job.requested_by,
        progress=progress.percent,
    )
    if entry.count is not None:
        progress.expected = entry.count(ctx)
    suffix = f".{job.format}"
    with tempfile.NamedTemporaryFile(suffix=suffix, dir=_tmpdir()) as tmp:
        rows = build_file(entry, ctx, tmp, progress)
        tmp.flush()
        size, digest = _size_and_sha256(tmp.name)
        tmp.seek(0)
        name = _filename(job)
        job.file.save(f"{job.pk}-{name}", File(tmp), save=False)
    now = clock.now()
    ExportJob.objects.filter(pk=job.pk).update(
        status=ExportStatus.DONE,
        progress=100,
        rows=rows,
        file=job.file.name,
        filename=name,
        size=size,
        sha256=digest,
        finished_at=now,
        expires_at=now + dt.timedelta(hours=settings.TOLLGATE_EXPORT_RETENTION_HOURS),
    )


def _tmpdir() -> str | None:
    path = getattr(settings, "TOLLGATE_EXPORT_TMPDIR", None)
    if path:
        os.makedirs(path, exist_ok=True)
    return path


def _size_and_sha256(path: str) -> tuple[int, str]:
    digest = hashlib.sha256()
    size = 0
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
            size += len(chunk)
    return size, digest.hexdigest()


# --- download links ----------------------------------------------------------------


def download_token(job: ExportJob) -> str:
    """A signed token naming the job and its tenant; valid for the link TTL."""
    return signing.dumps(
        {"j": str(job.pk), "w": job.workspace_id or 0}, salt=LINK_SALT, compress=False
    )


def download_url(job: ExportJob) -> str | None:
    if not job.is_downloadable:
        return None
    path = reverse("export-download", kwargs={"job_id": job.pk})
    return f"{path}?token={download_token(job)}"


def job_for_download(*, job_id: str, token: str, who: Requester) -> ExportJob:
    """The job behind a download link — only with a valid, unexpired
    signature, for the tenant it was made for, while the file is kept.
    Anything else is a 404 (no hint whether the job exists)."""
    try:
        data = signing.loads(token, salt=LINK_SALT, max_age=settings.TOLLGATE_EXPORT_LINK_SECONDS)
    except signing.BadSignature:
        raise NotFound() from None
    if data.get("j") != str(job_id):
        raise NotFound()
    job = ExportJob.objects.filter(pk=job_id).select_related("workspace").first()
    if job is None or not job.is_downloadable or (job.workspace_id or 0) != data.get("w"):
        raise NotFound()
    if job.workspace_id is None:
        if not is_backoffice_finance(who.user):
            raise NotFound()
    elif who.workspace is None or who.workspace.pk != job.workspace_id:
        raise NotFound()
    else:
        entry = get_kind(job.kind)
        perm = entry.perm if entry else "export_invoices"
        if who.membership is None or not who.membership.can(perm):
            raise NotFound()
        if entry is not None and entry.private and job.requested_by_id != who.user.pk:
            raise NotFound()
    return job


def visible_jobs(jobs, user):
    """Hide other people's private exports (account_data) from a job list."""
    from django.db.models import Q

    from config.exports import all_kinds

    private = [k.kind for k in all_kinds() if k.private]
    return jobs.exclude(Q(kind__in=private) & ~Q(requested_by=user))


# --- retention ---------------------------------------------------------------------


def exports_delete_expired(*, now: dt.datetime | None = None) -> int:
    """Delete the files of exports past `expires_at` (the rows stay, as history)."""
    now = now or clock.now()
    deleted = 0
    expired = ExportJob.objects.filter(expires_at__lte=now).exclude(file="")
    for job in expired.iterator(chunk_size=200):
        job.file.delete(save=False)
        ExportJob.objects.filter(pk=job.pk).update(file="")
        deleted += 1
    return deleted


def close_pack_request(*, month_start: dt.datetime, user: User | None = None) -> ExportJob:
    """The close pack of one month. From the console (`user`: back-office
    finance, checked) or from beat (no user: the operator's own schedule)."""
    from billing.periods import month_bounds

    start, end = month_bounds(month_start.year, month_start.month)
    if end > clock.now():
        raise InvalidRequest("That month is not over yet.", details={"month": ["not closed"]})
    if user is not None:
        return export_request(
            who=Requester(user=user), kind="close_pack", fmt="zip", start=start, end=end
        )
    with transaction.atomic():
        job = ExportJob.objects.create(kind="close_pack", format="zip", start=start, end=end)
        AuditEvent.objects.create(
            action="export.requested", target=str(job.pk), data={"kind": "close_pack"}
        )
        enqueue_on_commit("run_export", str(job.pk))
    return job


def close_pack_last_month() -> ExportJob:
    """Beat, after each month ends: the pack of the month that just closed."""
    first_of_this_month = (
        clock.now().astimezone(dt.UTC).replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    )
    return close_pack_request(month_start=first_of_this_month - dt.timedelta(days=1))


def job_progress_data(job: ExportJob) -> dict[str, Any]:
    """The API's shape for one job (API.md: GET /api/v1/exports/{id})."""
    body: dict[str, Any] = {
        "id": str(job.pk),
        "kind": job.kind,
        "status": job.status,
        "progress": job.progress,
    }
    url = download_url(job)
    if url:
        body["download_url"] = url
        body["expires_at"] = job.expires_at
    return body
