"""POST/GET /api/v1/exports and the download: the job runs (eager Celery), the
file opens in an XLSX reader with typed cells and sums that add up, tenants
and roles hold, links expire."""

from __future__ import annotations

import csv
import datetime as dt
import io
from decimal import Decimal
from urllib.parse import urlparse

import pytest

from billing.models_exports import ExportJob
from billing.services.exports import exports_delete_expired
from config import clock
from tests.exports.conftest import DEC, NOV, make_credit_note, make_invoice
from tests.exports.xlsx import read_xlsx

pytestmark = pytest.mark.django_db


@pytest.fixture
def finance(make_member, workspace):
    return make_member(workspace=workspace, role="finance")


def _export(client, membership, django_capture_on_commit_callbacks, **body):
    client.force_login(membership.user)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post("/api/v1/exports", body, content_type="application/json")
    return response


def _download(client, job_id: str):
    detail = client.get(f"/api/v1/exports/{job_id}").json()
    assert detail["status"] == "done" and detail["progress"] == 100, detail
    url = urlparse(detail["download_url"])
    response = client.get(f"{url.path}?{url.query}")
    assert response.status_code == 200
    return detail, b"".join(response.streaming_content), response


def test_finance_member_exports_invoices_and_lines_as_xlsx(
    client, finance, workspace, make_member, django_capture_on_commit_callbacks
):
    mine = [
        make_invoice(
            workspace, lines=(("plan_fee", "29.00", "5.51"), ("metered_overage", "3.10", "0.59"))
        ),
        make_invoice(
            workspace,
            currency="eur",
            discount="2.00",
            lines=(("plan_fee", "19.00", "3.23"), ("proration", "-4.50", "-0.86")),
        ),
        make_invoice(workspace, status="open", legal_name='=HYPERLINK("http://x")'),
    ]
    other = make_member(role="owner").workspace
    make_invoice(other, legal_name="Someone Else Ltd")
    make_invoice(workspace, issued=DEC + dt.timedelta(days=2))  # outside the period

    response = _export(
        client,
        finance,
        django_capture_on_commit_callbacks,
        kind="invoices",
        format="xlsx",
        start="2026-11-01",
        end="2026-11-30",
    )
    assert response.status_code == 202
    body = response.json()
    assert set(body) == {"id", "status", "progress"}
    detail, content, http = _download(client, body["id"])
    assert detail["kind"] == "invoices" and detail["expires_at"]
    assert http["Content-Type"].startswith("application/vnd.openxmlformats")

    rows = read_xlsx(io.BytesIO(content))["Invoices"]
    header, data = rows[0], rows[1:]
    col = {name: i for i, name in enumerate(header)}
    assert [r[col["number"]] for r in data] == [i.number for i in mine]
    assert "Someone Else Ltd" not in {r[col["customer_legal_name"]] for r in data}
    for r in data:
        assert isinstance(r[col["issue_date"]], dt.date)
        assert isinstance(r[col["gross"]], Decimal)
        assert r[col["net"]] + r[col["tax"]] == r[col["gross"]]
        assert r[col["subtotal"]] - r[col["discount"]] == r[col["net"]]
    assert data[2][col["customer_legal_name"]] == '=HYPERLINK("http://x")'  # a string cell
    assert data[0][col["gross"]] == Decimal("38.20")
    assert data[0][col["pdf_link"]].endswith(f"/api/v1/invoices/{mine[0].stripe_invoice_id}/pdf")

    # Lines: Σ line gross = the invoice's total, invoice by invoice.
    response = _export(
        client,
        finance,
        django_capture_on_commit_callbacks,
        kind="invoice_lines",
        format="xlsx",
        start="2026-11-01",
        end="2026-11-30",
    )
    _, content, _ = _download(client, response.json()["id"])
    rows = read_xlsx(io.BytesIO(content))["Invoice lines"]
    col = {name: i for i, name in enumerate(rows[0])}
    sums: dict[str, Decimal] = {}
    for r in rows[1:]:
        assert r[col["net"]] + r[col["tax"]] == r[col["gross"]]
        sums[r[col["invoice_number"]]] = sums.get(r[col["invoice_number"]], 0) + r[col["gross"]]
    for invoice in mine:
        assert sums[invoice.number] - invoice.discount == invoice.total


def test_csv_export_escapes_formulas_and_lists_credit_notes(
    client, finance, workspace, django_capture_on_commit_callbacks
):
    invoice = make_invoice(workspace, legal_name="@SUM(A1:A9)")
    make_credit_note(invoice, amount="10.00")
    response = _export(
        client, finance, django_capture_on_commit_callbacks, kind="invoices", format="csv"
    )
    _, content, http = _download(client, response.json()["id"])
    assert http["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(content.decode())))
    assert rows[0]["customer_legal_name"] == "'@SUM(A1:A9)"
    assert rows[0]["gross"] == "34.51" and rows[0]["currency"] == "USD"

    response = _export(
        client, finance, django_capture_on_commit_callbacks, kind="credit_notes", format="csv"
    )
    _, content, _ = _download(client, response.json()["id"])
    notes = list(csv.DictReader(io.StringIO(content.decode())))
    assert [(n["invoice_number"], n["total"], n["refunded"]) for n in notes] == [
        (invoice.number, "10.00", "10.00")
    ]


@pytest.mark.parametrize(
    ("role", "status"), [("owner", 202), ("admin", 202), ("finance", 202), ("member", 403)]
)
def test_roles_follow_accounts_roles(
    client, make_member, workspace, role, status, django_capture_on_commit_callbacks
):
    """accounts/roles.py: export_invoices is owner, admin and finance; a plain
    member may not export (and sees the API's 403)."""
    membership = make_member(workspace=workspace, role=role)
    response = _export(
        client, membership, django_capture_on_commit_callbacks, kind="invoices", format="csv"
    )
    assert response.status_code == status
    if status == 403:
        assert response.json()["error"]["code"] == "forbidden"


def test_another_workspace_gets_404_for_the_job_and_the_link(
    client, finance, workspace, make_member, django_capture_on_commit_callbacks
):
    make_invoice(workspace)
    response = _export(
        client, finance, django_capture_on_commit_callbacks, kind="invoices", format="csv"
    )
    job_id = response.json()["id"]
    link = client.get(f"/api/v1/exports/{job_id}").json()["download_url"]
    url = urlparse(link)

    stranger = make_member(role="finance")
    client.force_login(stranger.user)
    assert client.get(f"/api/v1/exports/{job_id}").status_code == 404
    assert client.get(f"{url.path}?{url.query}").status_code == 404  # a leaked link

    client.force_login(finance.user)
    assert client.get(f"{url.path}?token=forged").status_code == 404
    assert client.get("/api/v1/exports/not-a-uuid").status_code == 404


def test_bad_input_is_a_400(client, finance, django_capture_on_commit_callbacks):
    for body in (
        {"kind": "nope", "format": "csv"},
        {"kind": "invoices", "format": "zip"},
        {"kind": "invoices", "format": "pdf"},
        {"kind": "invoices", "format": "csv", "start": "2026-13-01"},
        {"kind": "invoices", "format": "csv", "start": "2026-11-30", "end": "2026-11-01"},
        {"kind": "close_pack", "format": "zip"},
    ):
        response = _export(client, finance, django_capture_on_commit_callbacks, **body)
        assert response.status_code in (400, 403), body
        assert "error" in response.json()


def test_links_and_files_expire(client, finance, workspace, django_capture_on_commit_callbacks):
    make_invoice(workspace)
    response = _export(
        client, finance, django_capture_on_commit_callbacks, kind="invoices", format="csv"
    )
    job = ExportJob.objects.get(pk=response.json()["id"])
    link = urlparse(client.get(f"/api/v1/exports/{job.pk}").json()["download_url"])
    with clock.travel(job.expires_at + dt.timedelta(seconds=1)):
        assert client.get(f"{link.path}?{link.query}").status_code == 404
        assert "download_url" not in client.get(f"/api/v1/exports/{job.pk}").json()
        assert exports_delete_expired() == 1
    job.refresh_from_db()
    assert not job.file


def test_usage_export_prices_each_event_at_the_tier(
    client, finance, workspace, django_capture_on_commit_callbacks
):
    from billing.models import OverageReport, Subscription, Tier
    from usage.models import UsageEvent

    tier = Tier.objects.create(
        name="Metered",
        slug="metered-x",
        monthly_price=Decimal("30.00"),
        included_tokens=1_000_000,
        overage_policy="metered",
        overage_price_per_million=Decimal("5.00"),
    )
    Subscription.objects.create(
        workspace=workspace,
        tier=tier,
        status="active",
        stripe_subscription_id="sub_x",
        current_period_start=NOV,
        current_period_end=DEC,
    )
    with clock.travel(NOV + dt.timedelta(days=10)):
        inside = UsageEvent.objects.create(
            workspace=workspace,
            feature="summarize",
            model="m",
            input_tokens=900,
            output_tokens=100,
            total_tokens=1000,
            request_id="r-in",
        )
        over = UsageEvent.objects.create(
            workspace=workspace,
            feature="chat",
            model="m",
            input_tokens=1500,
            output_tokens=500,
            total_tokens=2000,
            request_id="=r-over",
        )
        OverageReport.objects.create(
            workspace=workspace,
            usage_event_id=over.pk,
            tokens=1200,
            stripe_customer_id="cus",
            period_start=NOV,
        )
        response = _export(
            client,
            finance,
            django_capture_on_commit_callbacks,
            kind="usage",
            format="csv",
            start="2026-11-01",
            end="2026-11-30",
        )
        _, content, _ = _download(client, response.json()["id"])
    rows = {r["request_id"]: r for r in csv.DictReader(io.StringIO(content.decode()))}
    assert rows[inside.request_id]["value"] == "0.030000"  # 1,000 x $30 / 1M
    assert rows[inside.request_id]["overage_tokens"] == "0"
    r = rows["'=r-over"]  # escaped
    assert r["included_tokens_used"] == "800" and r["overage_tokens"] == "1200"
    assert r["included_value"] == "0.024000" and r["overage_charge"] == "0.006000"
    assert r["value"] == "0.030000" and r["tier"] == "metered-x"
