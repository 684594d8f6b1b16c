"""Billing API without Stripe round trips: roles, validation, tenancy."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.utils import timezone

from billing.models import ConsentRecord, Invoice, StripeEvent
from billing.terms import TERMS_VERSION


@pytest.fixture
def api(client):
    def login(membership):
        client.force_login(membership.user)
        return client

    return login


def _invoice(workspace, stripe_id):
    return Invoice.objects.create(
        workspace=workspace,
        stripe_invoice_id=stripe_id,
        number=f"N-{stripe_id}",
        status="paid",
        currency="usd",
        total=Decimal("29.00"),
        amount_due=Decimal("29.00"),
        amount_paid=Decimal("29.00"),
        invoice_pdf="https://files.example/in.pdf",
        created_at=timezone.now(),
    )


def test_plans_are_public(client, tiers):
    body = client.get("/api/v1/billing/plans").json()
    assert [p["plan"] for p in body["plans"]] == ["free", "pro", "team"]
    pro = body["plans"][1]
    assert pro["monthly_price"] == "29.00" and pro["next_plan"] == "team"
    assert body["terms_version"] == TERMS_VERSION


def test_member_cannot_consent(api, make_member, workspace, tiers):
    member = make_member(workspace=workspace, role="member")
    response = api(member).post(
        "/api/v1/billing/upgrades",
        {"plan": "pro", "accept_terms": True, "terms_version": TERMS_VERSION},
        content_type="application/json",
    )
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "forbidden"
    assert not ConsentRecord.objects.exists()


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"plan": "pro", "terms_version": TERMS_VERSION}, "accept_terms"),
        ({"plan": "pro", "accept_terms": True, "terms_version": "1999-01-01"}, "terms_version"),
        ({"plan": "nope", "accept_terms": True, "terms_version": TERMS_VERSION}, "plan"),
    ],
)
def test_upgrade_needs_accepted_current_terms(api, make_member, workspace, tiers, body, field):
    admin = make_member(workspace=workspace, role="admin")
    response = api(admin).post("/api/v1/billing/upgrades", body, content_type="application/json")
    assert response.status_code == 400
    assert field in response.json()["error"]["details"]
    assert not ConsentRecord.objects.exists()


def test_invoices_are_walled_off(api, make_member, workspace, tiers):
    mine = make_member(workspace=workspace, role="owner")
    other = make_member(role="owner")  # another workspace
    _invoice(workspace, "in_mine")
    _invoice(other.workspace, "in_theirs")
    client = api(mine)
    listed = client.get("/api/v1/invoices").json()
    assert [i["id"] for i in listed["results"]] == ["in_mine"]
    assert client.get("/api/v1/invoices/in_mine").status_code == 200
    for path in ["/api/v1/invoices/in_theirs", "/api/v1/invoices/in_theirs/pdf"]:
        response = client.get(path)
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "not_found"
    assert client.get("/api/v1/invoices/in_mine/pdf").status_code == 404  # never finalized


def test_subscription_shows_own_workspace(api, make_member, workspace, tiers):
    body = api(make_member(workspace=workspace, role="member")).get("/api/v1/billing/subscription")
    assert body.status_code == 200
    assert body.json()["plan"] == "free" and body.json()["next_plan"] == "pro"


def test_bad_signature_is_refused_and_stores_nothing(db, client, settings):
    settings.STRIPE_WEBHOOK_SECRET = "whsec_test_secret"
    response = client.post(
        "/stripe/webhook/",
        data=b'{"id": "evt_1", "object": "event", "type": "invoice.paid", "data": {"object": {}}}',
        content_type="application/json",
        headers={"Stripe-Signature": "t=1,v1=deadbeef"},
    )
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_signature"
    assert not StripeEvent.objects.exists()
