"""Operators: tiers in admin (with the Stripe sync action), consent records read-only."""

from __future__ import annotations

from django.core import mail

from billing.models import ConsentRecord, Invoice, Tier
from tests.billing.helpers import deliver
from tests.billing.test_flow import api_upgrade, subscribe


def test_operator_syncs_tiers_from_admin(admin_client, tiers, stripe_env):
    assert admin_client.get("/admin/billing/tier/").status_code == 200
    assert admin_client.get(f"/admin/billing/tier/{tiers['team'].pk}/change/").status_code == 200
    ids = [t.pk for t in tiers.values()]
    for _ in range(2):  # twice: nothing is duplicated
        response = admin_client.post(
            "/admin/billing/tier/",
            {"action": "sync_to_stripe", "_selected_action": ids},
            follow=True,
        )
        assert response.status_code == 200
    assert Tier.objects.get(slug="pro").stripe_price_id
    assert len(stripe_env.client().v1.products.list().data) == 3


def test_consent_records_are_read_only_in_admin(
    admin_client, client, owner, workspace, stripe_tiers, stripe_env
):
    subscribe(workspace, stripe_tiers["pro"], stripe_env)
    client.force_login(owner)
    api_upgrade(client, "team")
    consent = ConsentRecord.objects.get()
    assert admin_client.get("/admin/billing/consentrecord/").status_code == 200
    page = admin_client.get(f"/admin/billing/consentrecord/{consent.pk}/change/")
    assert page.status_code == 200 and b'type="submit"' not in page.content.split(b"<form")[-1]
    assert admin_client.get(f"/admin/billing/consentrecord/{consent.pk}/delete/").status_code == 403


def test_a_failed_renewal_emails_the_owners(
    client, owner, workspace, stripe_tiers, stripe_env, django_capture_on_commit_callbacks
):
    sub = subscribe(workspace, stripe_tiers["pro"], stripe_env)
    stripe_env.set_card_failing(sub.stripe_customer_id)
    stripe_env.advance(sub.stripe_subscription_id)
    failed = stripe_env.events("invoice.payment_failed")
    assert failed
    with django_capture_on_commit_callbacks(execute=True):
        assert deliver(client, stripe_env, failed[-1]).status_code == 200
    assert Invoice.objects.filter(workspace=workspace, status="open").exists()
    # (the finalized invoice's "Invoice N is ready" email goes out too)
    dunning = [m for m in mail.outbox if "payment failed" in m.subject.lower()]
    assert [m.to for m in dunning] == [[owner.email]]
