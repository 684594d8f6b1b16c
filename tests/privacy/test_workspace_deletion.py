"""Deleting a workspace: owners only, typed name; the Stripe subscription is
cancelled through the SDK (period end or now); undo within the grace period;
then the beat task erases content and memberships and keeps the records of
account, pseudonymized."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db.models import Sum

from accounts import services_privacy
from accounts.models import AuditEvent, Membership, User, Workspace
from accounts.models_privacy import WorkspacePolicy
from accounts.tasks import delete_due_workspaces
from config import clock
from config.errors import Forbidden, InvalidRequest
from tests.factories import MembershipFactory, UserFactory, WorkspaceFactory
from tests.privacy.conftest import MARKER, fill_person, models_pointing_at, rows_containing


@pytest.fixture
def stripe_tiers(tiers, fake_stripe):
    from billing.services.catalog import tier_sync_to_stripe

    return {slug: tier_sync_to_stripe(tier=tier) for slug, tier in tiers.items()}


def subscribe(workspace, tier, fake):
    from billing.services.subscriptions import ensure_customer, subscription_sync

    customer = ensure_customer(workspace=workspace, email="billing@example.com")
    stripe_sub = fake.client().v1.subscriptions.create(
        {
            "customer": customer,
            "items": [{"price": tier.stripe_price_id}],
            "metadata": {"workspace_id": str(workspace.pk)},
        }
    )
    return subscription_sync(stripe_subscription_id=stripe_sub.id)


@pytest.fixture
def team(db, tiers):
    workspace = WorkspaceFactory(name="Acme Research")
    owner = MembershipFactory(
        workspace=workspace, role="owner", user=UserFactory(email="olga.owner@example.com")
    )
    admin = MembershipFactory(
        workspace=workspace, role="admin", user=UserFactory(email="adam.admin@example.com")
    )
    fill_person(owner.user, workspace, tiers)
    fill_person(admin.user, workspace, marker=MARKER + "-admin")
    return workspace, owner, admin


def test_refusals(team):
    workspace, owner, admin = team
    with pytest.raises(Forbidden):
        services_privacy.workspace_deletion_schedule(
            actor=admin, confirmation=workspace.name, cancel_now=False
        )
    with pytest.raises(InvalidRequest, match="name exactly"):
        services_privacy.workspace_deletion_schedule(
            actor=owner, confirmation="Acme", cancel_now=False
        )
    assert not services_privacy.policy_for(workspace).deletion_pending
    services_privacy.workspace_deletion_schedule(
        actor=owner, confirmation=" acme  research ", cancel_now=False
    )
    with pytest.raises(InvalidRequest, match="already scheduled"):
        services_privacy.workspace_deletion_schedule(
            actor=owner, confirmation=workspace.name, cancel_now=False
        )
    with pytest.raises(Forbidden):
        services_privacy.workspace_deletion_undo(actor=admin)


def test_at_period_end_then_undo_keeps_the_subscription(team, stripe_tiers, fake_stripe):
    workspace, owner, _ = team
    sub = subscribe(workspace, stripe_tiers["pro"], fake_stripe)
    lines = services_privacy.closure_summary(workspace=workspace)
    assert "Pro plan ($29.00/month, already paid)" in lines[0]
    assert "not refunded" in lines[1]

    services_privacy.workspace_deletion_schedule(
        actor=owner, confirmation=workspace.name, cancel_now=False
    )
    remote = fake_stripe.client().v1.subscriptions.retrieve(sub.stripe_subscription_id)
    assert remote.cancel_at_period_end is True and remote.status == "active"

    services_privacy.workspace_deletion_undo(actor=owner)
    remote = fake_stripe.client().v1.subscriptions.retrieve(sub.stripe_subscription_id)
    assert remote.cancel_at_period_end is False
    assert not services_privacy.policy_for(workspace).deletion_pending
    # The grace period passes: nothing happens to an undone deletion.
    with clock.travel(clock.now() + timedelta(days=30)):
        assert delete_due_workspaces.delay().get() == 0
    assert Membership.objects.filter(workspace=workspace).count() == 2
    actions = set(AuditEvent.objects.filter(workspace=workspace).values_list("action", flat=True))
    assert {"workspace.deletion_scheduled", "workspace.deletion_cancelled"} <= actions


def test_now_then_erased_after_the_grace_period(team, stripe_tiers, fake_stripe, settings):
    from billing.models import ConsentRecord, Invoice
    from usage.models import ApiKey, UsageEvent

    settings.TOLLGATE_WORKSPACE_DELETION_GRACE_DAYS = 14
    workspace, owner, admin = team
    sub = subscribe(workspace, stripe_tiers["pro"], fake_stripe)
    ledger = UsageEvent.objects.filter(workspace=workspace).aggregate(
        tokens=Sum("total_tokens"), cost=Sum("cost")
    )
    invoices = list(Invoice.objects.filter(workspace=workspace).values("number", "total"))

    policy = services_privacy.workspace_deletion_schedule(
        actor=owner, confirmation=workspace.name, cancel_now=True
    )
    remote = fake_stripe.client().v1.subscriptions.retrieve(sub.stripe_subscription_id)
    assert remote.status == "canceled"
    sub.refresh_from_db()
    assert sub.status == "canceled"

    # Within the grace period nothing is erased.
    with clock.travel(policy.deletion_due_at - timedelta(minutes=1)):
        assert delete_due_workspaces.delay().get() == 0
    assert rows_containing(MARKER)
    with clock.travel(policy.deletion_due_at + timedelta(minutes=1)):
        assert delete_due_workspaces.delay().get() == 1

    workspace.refresh_from_db()
    assert workspace.name == f"Deleted workspace #{workspace.pk}"
    assert not Membership.objects.filter(workspace=workspace).exists()
    # Content gone (both people's), the workspace's name gone from every table.
    assert rows_containing(MARKER) == {}
    assert rows_containing("Acme Research") == {}
    assert all(k.revoked_at for k in ApiKey.objects.filter(workspace=workspace))
    # Records of account kept, unchanged in money, pseudonymized in people.
    assert (
        UsageEvent.objects.filter(workspace=workspace).aggregate(
            tokens=Sum("total_tokens"), cost=Sum("cost")
        )
        == ledger
    )
    assert list(Invoice.objects.filter(workspace=workspace).values("number", "total")) == invoices
    consent = ConsentRecord.objects.get(workspace=workspace)
    assert consent.user_email.endswith("@pseudonymized.invalid") and consent.ip_address is None
    assert consent.price_shown == 29 and consent.terms_sha256 == "0" * 64
    policy = WorkspacePolicy.objects.get(workspace=workspace)
    assert policy.retained_until.year - policy.deleted_at.year == 10
    # Member emails don't appear in anything that hangs off the workspace.
    for model, field in models_pointing_at(Workspace):
        for row in model._default_manager.filter(**{field: workspace.pk}).values():
            text = str(row)
            assert "olga.owner" not in text and "adam.admin" not in text, model._meta.label
    customer = fake_stripe.client().v1.customers.retrieve(sub.stripe_customer_id)
    assert customer.name == workspace.name and not customer.email
    # The people themselves still exist (they only lost this workspace).
    assert User.objects.filter(pk__in=[owner.user_id, admin.user_id], is_active=True).count() == 2


def test_records_go_after_the_legal_retention_period(team, settings):
    from billing.models import Invoice
    from usage.models import UsageEvent

    workspace, owner, _ = team
    policy = services_privacy.workspace_deletion_schedule(
        actor=owner, confirmation=workspace.name, cancel_now=False
    )
    with clock.travel(policy.deletion_due_at + timedelta(minutes=1)):
        delete_due_workspaces.delay().get()
    assert UsageEvent.objects.filter(workspace=workspace).exists()
    with clock.travel(policy.deletion_due_at + timedelta(days=365 * 10 + 3)):
        delete_due_workspaces.delay().get()
    assert not Workspace.objects.filter(pk=workspace.pk).exists()
    assert not UsageEvent.objects.filter(workspace_id=workspace.pk).exists()
    assert not Invoice.objects.filter(workspace_id=workspace.pk).exists()
