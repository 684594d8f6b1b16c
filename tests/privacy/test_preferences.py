"""Email preferences stop exactly the emails they name; security and
transactional mails always go."""

from __future__ import annotations

import pytest
from django.core import mail

from accounts import services, services_privacy
from accounts.notifications import wanted_recipients, wants_email
from tests.factories import MembershipFactory, UserFactory, WorkspaceFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def billing_team(tiers):
    workspace = WorkspaceFactory(name="Prefs Inc")
    quiet = MembershipFactory(
        workspace=workspace, role="owner", user=UserFactory(email="quiet@x.io")
    )
    loud = MembershipFactory(workspace=workspace, role="admin", user=UserFactory(email="loud@x.io"))
    services_privacy.notification_preferences_update(
        user=quiet.user, usage_alerts=False, invoices=False, product=False
    )
    return workspace, quiet, loud


def test_usage_alerts_follow_the_preference(billing_team):
    from billing.selectors import period_usage
    from billing.services.notifications import notify_usage_alert

    workspace, _, _ = billing_team
    assert notify_usage_alert(workspace=workspace, threshold=80, usage=period_usage(workspace))
    (alert,) = mail.outbox
    assert alert.to == ["loud@x.io"]


def test_transactional_and_security_mails_ignore_preferences(
    billing_team, django_capture_on_commit_callbacks
):
    from billing.models import Invoice
    from billing.services.notifications import notify_payment_failed
    from config import clock

    workspace, quiet, _ = billing_team
    invoice = Invoice.objects.create(
        workspace=workspace,
        stripe_invoice_id="in_pref",
        status="open",
        currency="usd",
        total=10,
        created_at=clock.now(),
    )
    notify_payment_failed(invoice=invoice)
    assert mail.outbox[-1].to == ["loud@x.io", "quiet@x.io"]
    with django_capture_on_commit_callbacks(execute=True):
        services.invitation_create(actor=quiet, email="new@x.io", role="member")
    assert any(m.to == ["new@x.io"] for m in mail.outbox)
    assert wants_email(quiet.user, "security") and not wants_email(quiet.user, "product")


def test_the_helper_and_the_page(billing_team, client):
    _workspace, quiet, loud = billing_team
    assert wanted_recipients([quiet.user, loud.user], "invoices") == ["loud@x.io"]
    client.force_login(loud.user)
    page = client.get("/account/privacy/")
    assert page.status_code == 200 and "Security emails" in page.content.decode()
    client.post("/account/privacy/", {"usage_alerts": "on"})
    assert wanted_recipients([loud.user], "usage_alerts") == ["loud@x.io"]
    assert wanted_recipients([loud.user], "invoices") == []
    assert wanted_recipients([loud.user], "product") == []


def test_invoice_emails_follow_the_invoices_preference(billing_team):
    from billing.models import Invoice
    from billing.services.invoice_documents import invoice_recipients
    from config import clock

    workspace, _, _ = billing_team
    MembershipFactory(workspace=workspace, role="finance", user=UserFactory(email="fin@x.io"))
    invoice = Invoice.objects.create(
        workspace=workspace,
        stripe_invoice_id="in_rcpt",
        status="paid",
        currency="usd",
        total=10,
        created_at=clock.now(),
    )
    # Owners and finance get invoices; the owner who turned them off doesn't.
    assert invoice_recipients(invoice) == ["fin@x.io"]
