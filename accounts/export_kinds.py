"""The "account_data" export kind (config.exports registry, run as an export job):
a ZIP of everything Tollgate holds about the person who asks — or, with
filters {"scope": "workspace"} (owners, from the workspace's privacy page),
about the current workspace. Private: only the requester sees the job and file."""

from __future__ import annotations

from typing import IO

from accounts import audit
from accounts.data_export import KIND, write_data_zip
from accounts.models import Membership
from accounts.privacy import Subject
from accounts.roles import Perm
from config.errors import InvalidRequest
from config.exports import ExportContext, Scope, register


def subject_for(ctx: ExportContext) -> Subject:
    if (ctx.filters or {}).get("scope") != "workspace":
        return Subject(user=ctx.requested_by)
    membership = Membership.objects.filter(workspace=ctx.workspace, user=ctx.requested_by).first()
    if membership is None or not membership.can(Perm.EXPORT_WORKSPACE_DATA):
        raise InvalidRequest("Only an owner can export all of the workspace's data.")
    return Subject(workspace=ctx.workspace)


def write(ctx: ExportContext, out: IO[bytes]) -> None:
    subject = subject_for(ctx)
    result = write_data_zip(
        subject=subject, out=out, progress=lambda done, total: ctx.progress(done * 95 // total)
    )
    audit.record(
        workspace=ctx.workspace,
        actor=ctx.requested_by,
        action="export.account_data",
        target=subject.kind,
        files=len(result.files),
    )
    from accounts.emails import send_export_ready

    send_export_ready(user=ctx.requested_by, subject=subject)


register(
    KIND,
    title="Your data (ZIP)",
    formats=("zip",),
    scope=Scope.WORKSPACE,
    # Everyone may take their own data; the workspace-wide scope is checked above.
    perm=Perm.VIEW_OWN_USAGE,
    writer=write,
    private=True,
    description="Profile, memberships, chats, summaries, extractions, usage events, "
    "invoices and consent records as JSON, plus your documents.",
)
