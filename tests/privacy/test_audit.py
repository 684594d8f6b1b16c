"""The owners' audit log: an entry for every action listed in the issue, a page
with filters and pagination, and a CSV export that never carries a formula."""

from __future__ import annotations

import csv
import io
from datetime import timedelta

import pytest

from accounts import services, services_privacy
from accounts.models import AuditEvent
from billing.terms import TERMS_VERSION
from config import clock
from tests.factories import MembershipFactory, UserFactory, WorkspaceFactory
from tests.privacy.test_workspace_deletion import stripe_tiers  # noqa: F401 (fixture)

pytestmark = pytest.mark.django_db


def test_every_listed_action_is_audited(tiers, stripe_tiers, fake_stripe):  # noqa: F811
    from billing.services.subscriptions import spend_cap_set  # noqa: F401
    from billing.services.upgrades import upgrade_consent
    from usage.services import key_create, key_revoke

    workspace = WorkspaceFactory(name="Audited")
    owner = MembershipFactory(workspace=workspace, role="owner")
    member = MembershipFactory(workspace=workspace, role="member")
    services.invitation_create(actor=owner, email="invitee@example.com", role="member")
    services.membership_change_role(actor=owner, membership=member, role="admin")
    created = key_create(membership=owner, name="ci")
    key_revoke(key=created.key, acting_user=owner.user)
    upgrade_consent(
        workspace=workspace,
        membership=owner,
        to_tier=stripe_tiers["pro"],
        accept_terms=True,
        terms_version=TERMS_VERSION,
        proration_date=None,
        channel="web",
        ip="127.0.0.1",
        user_agent="pytest",
        success_url="http://x/ok",
        cancel_url="http://x/no",
    )
    services.workspace_suspend(workspace=workspace, reason="test", operator=None)
    services.workspace_unsuspend(workspace=workspace, operator=None)
    services_privacy.policy_update(actor=owner, require_mfa=True, content_retention_days=30)
    services.membership_remove(actor=owner, membership=member)
    services_privacy.workspace_deletion_schedule(
        actor=owner, confirmation="Audited", cancel_now=False
    )
    actions = set(AuditEvent.objects.filter(workspace=workspace).values_list("action", flat=True))
    assert {
        "invitation.created",
        "member.role_changed",
        "member.removed",
        "key.created",
        "key.revoked",
        "consent.recorded",
        "workspace.suspended",
        "workspace.unsuspended",
        "security.mfa_required",
        "privacy.retention_changed",
        "workspace.deletion_scheduled",
    } <= actions


@pytest.fixture
def log(db):
    workspace = WorkspaceFactory()
    owner = MembershipFactory(workspace=workspace, role="owner", user=UserFactory(email="o@x.io"))
    admin = MembershipFactory(workspace=workspace, role="admin", user=UserFactory(email="a@x.io"))
    start = clock.now()
    for i in range(60):
        with clock.travel(start - timedelta(days=i)):
            AuditEvent.objects.create(
                workspace=workspace,
                actor=admin.user if i % 2 else owner.user,
                action="key.created" if i % 3 else "invitation.created",
                target=f'=HYPERLINK("http://evil","{i}")' if i == 0 else f"target {i}",
            )
    other = WorkspaceFactory()
    AuditEvent.objects.create(workspace=other, action="key.created", target="OTHER-TENANT")
    return workspace, owner, admin


def test_the_page_filters_and_paginates(client, log):
    _workspace, owner, admin = log
    client.force_login(owner.user)
    first = client.get("/workspace/audit/").content.decode()
    assert "Page 1 of 2" in first and "OTHER-TENANT" not in first
    by_admin = client.get(f"/workspace/audit/?actor={admin.user_id}&group=API keys").content
    rows = by_admin.decode().count("<code>key.created</code>")
    expected = len([i for i in range(60) if i % 2 and i % 3])
    assert rows == expected
    today = clock.now().date()
    recent = client.get(
        f"/workspace/audit/?since={today - timedelta(days=2)}&until={today}"
    ).content.decode()
    assert recent.count("<tr><td>") == 3


def test_csv_export_is_formula_escaped_and_audited(client, log):
    workspace, owner, _ = log
    client.force_login(owner.user)
    response = client.get("/workspace/audit.csv")
    assert response["Content-Type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert rows[0] == ["time_utc", "actor", "action", "target", "details"]
    assert len(rows) == 1 + 60 + 1  # header, the log, and this export itself
    targets = [r[3] for r in rows[1:]]
    assert '\'=HYPERLINK("http://evil","0")' in targets
    assert not any(cell.startswith(("=", "+", "-", "@")) for row in rows for cell in row)
    assert "OTHER-TENANT" not in str(rows)
    assert AuditEvent.objects.filter(workspace=workspace, action="export.audit_log").exists()


def test_only_owners_see_the_log(client, log):
    _, _, admin = log
    client.force_login(admin.user)
    assert client.get("/workspace/audit/").status_code == 403
    assert client.get("/workspace/audit.csv").status_code == 403
