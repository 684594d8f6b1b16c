"""Who sees which invoice and who may change billing details; signed bodies that
are not events; operators' credit notes and voids from admin (through Stripe)."""

from __future__ import annotations

import hashlib
from decimal import Decimal

import pytest
from django.contrib.auth.models import Group, Permission
from django.core.files.base import ContentFile
from django.utils import timezone

from billing.models import StripeEvent
from billing.models_invoices import BillingDetails, CreditNote, Invoice
from tests.billing.test_flow import subscribe
from tests.billing.test_invoice_ledger import Webhooks

PDF = b"%PDF-1.7\n% a tiny stand-in archived file\n"


def archived_invoice(workspace, stripe_id: str) -> Invoice:
    invoice = Invoice.objects.create(
        workspace=workspace,
        stripe_invoice_id=stripe_id,
        number=f"N-{stripe_id}",
        status="paid",
        currency="usd",
        subtotal=Decimal("29.00"),
        net=Decimal("29.00"),
        total=Decimal("29.00"),
        amount_paid=Decimal("29.00"),
        created_at=timezone.now(),
        finalized_at=timezone.now(),
        invoice_pdf="https://files.example/never-fetched.pdf",
    )
    invoice.pdf_file.save("x.pdf", ContentFile(PDF), save=False)
    Invoice.objects.filter(pk=invoice.pk).update(
        pdf_file=invoice.pdf_file.name, pdf_sha256=hashlib.sha256(PDF).hexdigest()
    )
    return invoice


@pytest.mark.parametrize(
    ("role", "can_read"),
    [("owner", True), ("admin", True), ("finance", True), ("member", False)],
)
def test_invoice_reads_follow_roles_and_tenancy(client, make_member, workspace, role, can_read):
    person = make_member(workspace=workspace, role=role)
    other = make_member(role="owner")  # another workspace
    archived_invoice(workspace, "in_mine")
    archived_invoice(other.workspace, "in_theirs")
    client.force_login(person.user)
    api = {
        "/api/v1/invoices": 200,
        "/api/v1/invoices/in_mine": 200,
        "/api/v1/invoices/in_mine/pdf": 200,
    }
    for path, ok in api.items():
        response = client.get(path)
        assert response.status_code == (ok if can_read else 403), path
    for page in ("/billing/invoices/in_mine/", "/billing/invoices/in_mine/pdf"):
        assert client.get(page).status_code == (200 if can_read else 404), page
    if can_read:
        listed = client.get("/api/v1/invoices").json()["results"]
        assert [i["id"] for i in listed] == ["in_mine"]
        pdf = client.get("/api/v1/invoices/in_mine/pdf")
        assert pdf["Content-Type"] == "application/pdf"
        assert b"".join(pdf.streaming_content) == PDF
    # Another workspace's invoice does not exist for this person.
    for path in ("/api/v1/invoices/in_theirs", "/api/v1/invoices/in_theirs/pdf"):
        response = client.get(path)
        assert response.status_code == (404 if can_read else 403)
    for page in ("/billing/invoices/in_theirs/", "/billing/invoices/in_theirs/pdf"):
        assert client.get(page).status_code == 404


def test_billing_details_roles_validation_and_tenancy(client, make_member, workspace, tiers):
    finance = make_member(workspace=workspace, role="finance")
    member = make_member(workspace=workspace, role="member")
    other = make_member(role="owner")
    client.force_login(member.user)
    assert client.get("/api/v1/billing/details").status_code == 403
    assert (
        client.put("/api/v1/billing/details", {}, content_type="application/json").status_code
        == 403
    )
    assert client.get("/billing/details/").status_code == 404

    client.force_login(finance.user)
    bad = client.put(
        "/api/v1/billing/details",
        {"country": "DE", "tax_id": "DE123456789"},  # a wrong check digit
        content_type="application/json",
    )
    assert bad.status_code == 400 and "tax_id" in bad.json()["error"]["details"]
    for body, field in [
        ({"country": "Germany"}, "country"),
        ({"invoice_email": "not-an-email"}, "invoice_email"),
        ({"address_line1": "1 Road"}, "country"),
        ({"country": "BR", "tax_id": "123"}, "tax_id"),
        ({"legal_name": "x" * 300}, "legal_name"),
        ({"legal_name": "nul\u0000byte"}, "legal_name"),
    ]:
        response = client.put("/api/v1/billing/details", body, content_type="application/json")
        assert response.status_code == 400, body
        assert field in response.json()["error"]["details"], body
    good = client.put(
        "/api/v1/billing/details",
        {"legal_name": "Acme SARL", "country": "fr", "tax_id": "FR 40 303 265 045"},
        content_type="application/json",
    )
    assert good.status_code == 200  # Stripe not configured: kept locally
    assert good.json()["tax_id"] == "FR40303265045" and good.json()["country"] == "FR"
    assert client.get("/api/v1/billing/details").json()["legal_name"] == "Acme SARL"
    # The page shows (and edits) the same row; another workspace's is untouched.
    page = client.get("/billing/details/")
    assert page.status_code == 200 and "Acme SARL" in page.content.decode()
    response = client.post("/billing/details/", {"legal_name": "Acme SAS", "country": "FR"})
    assert response.status_code == 302
    assert BillingDetails.objects.get(workspace=workspace).legal_name == "Acme SAS"
    assert not BillingDetails.objects.filter(workspace=other.workspace).exists()


@pytest.mark.parametrize("body", [b"[]", b"null", b'"evt"', b"{}", b'{"id": 5}', b'{"type": "x"}'])
def test_a_signed_body_that_is_not_an_event_is_a_400(db, client, settings, body):
    from standins.fake_stripe.events import sign

    settings.STRIPE_WEBHOOK_SECRET = "whsec_test_secret"
    response = client.post(
        "/stripe/webhook/",
        data=body,
        content_type="application/json",
        headers={"Stripe-Signature": sign(body.decode(), "whsec_test_secret")},
    )
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_request"
    assert not StripeEvent.objects.exists()


@pytest.fixture
def operator(django_user_model):
    return django_user_model.objects.create_superuser(email="ops@example.com", password="pw-123456")


def test_operators_credit_and_void_from_admin_and_finance_staff_cannot(
    client, workspace, owner, stripe_tiers, stripe_env, operator, django_user_model,
    django_capture_on_commit_callbacks,
):  # fmt: skip
    hooks = Webhooks(client, stripe_env, django_capture_on_commit_callbacks)
    sub = subscribe(workspace, stripe_tiers["pro"], stripe_env)
    stripe_env.set_card_failing(sub.stripe_customer_id)
    stripe_env.advance(sub.stripe_subscription_id)  # an open (failed) renewal
    hooks.deliver_new()
    paid, open_ = Invoice.objects.order_by("created_at", "pk")
    assert (paid.status, open_.status) == ("paid", "open")

    # Back-office finance staff: read-only, the correction pages refuse them.
    viewer = django_user_model.objects.create_user(
        email="finance@operator.example", password="pw-123456", is_staff=True
    )
    group, _ = Group.objects.get_or_create(name="Finance")
    group.permissions.set(Permission.objects.filter(codename__startswith="view_"))
    viewer.groups.add(group)
    client.force_login(viewer)
    assert client.get(f"/admin/billing/invoice/{paid.pk}/change/").status_code == 200
    assert client.get(f"/admin/billing/invoice/{paid.pk}/credit-note/").status_code == 403
    assert client.post(f"/admin/billing/invoice/{open_.pk}/void/").status_code == 403

    client.force_login(operator)
    form = client.get(f"/admin/billing/invoice/{paid.pk}/credit-note/")
    assert form.status_code == 200 and "29.00" in form.content.decode()
    too_much = client.post(
        f"/admin/billing/invoice/{paid.pk}/credit-note/",
        {"amount": "30.00", "reason": "duplicate", "refund": "on"},
    )
    assert too_much.status_code == 200 and not CreditNote.objects.exists()
    done = client.post(
        f"/admin/billing/invoice/{paid.pk}/credit-note/",
        {"amount": "10.00", "reason": "order_change", "memo": "goodwill", "refund": "on"},
    )
    assert done.status_code == 302
    note = CreditNote.objects.get()
    assert (note.total, note.refund_amount, note.reason) == (
        Decimal("10.00"),
        Decimal("10.00"),
        "order_change",
    )
    charge = stripe_env.client().v1.charges.retrieve(
        Invoice.objects.get(pk=paid.pk).stripe_charge_id
    )
    assert charge.amount_refunded == 1000

    assert client.post(f"/admin/billing/invoice/{paid.pk}/void/").status_code == 200  # refused
    assert client.post(f"/admin/billing/invoice/{open_.pk}/void/").status_code == 302
    hooks.deliver_new()
    open_.refresh_from_db()
    assert open_.status == "void" and open_.voided_at is not None
    assert stripe_env.client().v1.invoices.retrieve(open_.stripe_invoice_id).status == "void"
    assert list(open_.status_history.values_list("status", flat=True)) == ["draft", "open", "void"]
    # The customer sees both on the billing page.
    client.force_login(owner)
    page = client.get("/billing/").content.decode()
    assert note.number in page and "void" in page
    body = client.get(f"/api/v1/invoices/{paid.stripe_invoice_id}").json()
    assert body["credit_notes"][0]["refund_amount"] == "10.00"


def test_a_deleted_draft_leaves_the_mirror_and_issued_invoices_stay(
    client, workspace, stripe_env, django_capture_on_commit_callbacks
):
    from tests.billing.helpers import deliver

    def draft(stripe_id: str, **extra) -> Invoice:
        return Invoice.objects.create(
            workspace=workspace,
            stripe_invoice_id=stripe_id,
            status=extra.pop("status", "draft"),
            currency="usd",
            total=Decimal("5.00"),
            created_at=timezone.now(),
            **extra,
        )

    draft("in_gone")
    draft("in_issued", status="open", number="N-1")
    for n, stripe_id in enumerate(["in_gone", "in_issued"]):
        event = {
            "id": f"evt_deleted_{n}",
            "object": "event",
            "type": "invoice.deleted",
            "created": 1,
            "livemode": False,
            "data": {"object": {"id": stripe_id, "object": "invoice"}},
        }
        with django_capture_on_commit_callbacks(execute=True):
            assert deliver(client, stripe_env, event).status_code == 200
    assert list(Invoice.objects.values_list("stripe_invoice_id", flat=True)) == ["in_issued"]
    assert StripeEvent.objects.filter(processed_at__isnull=False).count() == 2
