"""The finance pages: a customer's finance member (own workspace only, roles
per accounts/roles.py) and the operator's back-office console (all
workspaces, read-only)."""

from __future__ import annotations

import io
import zipfile

import pytest
from django.contrib.auth.models import Group

from billing.backoffice import FINANCE_GROUP, ensure_finance_group
from billing.models_exports import ExportJob
from billing.models_invoices import Invoice
from tests.exports.conftest import make_credit_note, make_invoice
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff_finance(db):
    user = UserFactory(is_staff=True)
    user.groups.add(ensure_finance_group())
    return user


def test_finance_member_sees_own_invoices_with_filters_and_credit_notes(
    client, make_member, workspace
):
    finance = make_member(workspace=workspace, role="finance")
    paid = make_invoice(workspace, legal_name="Acme GmbH")
    make_invoice(workspace, status="open")
    make_credit_note(paid, amount="5.00")
    make_invoice(make_member(role="owner").workspace, legal_name="Other")
    client.force_login(finance.user)

    page = client.get("/billing/invoices/").content.decode()
    assert page.count('data-testid="invoice-row"') == 2
    assert 'data-testid="credit-note-row"' in page and "Other" not in page
    only_open = client.get("/billing/invoices/?status=open").content.decode()
    assert only_open.count('data-testid="invoice-row"') == 1
    empty = client.get("/billing/invoices/?start=2020-01-01&end=2020-01-31").content.decode()
    assert 'data-testid="invoices-empty"' in empty


@pytest.mark.parametrize(
    ("role", "invoices", "exports"),
    [("owner", 200, 200), ("admin", 200, 200), ("finance", 200, 200), ("member", 403, 403)],
)
def test_pages_follow_accounts_roles(client, make_member, workspace, role, invoices, exports):
    client.force_login(make_member(workspace=workspace, role=role).user)
    assert client.get("/billing/invoices/").status_code == invoices
    assert client.get("/billing/exports/").status_code == exports


def test_export_page_starts_a_job_and_polls_its_row(
    client, make_member, workspace, django_capture_on_commit_callbacks
):
    finance = make_member(workspace=workspace, role="finance")
    make_invoice(workspace)
    client.force_login(finance.user)
    assert 'data-testid="exports-empty"' in client.get("/billing/exports/").content.decode()
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post("/billing/exports/", {"kind": "invoices", "format": "xlsx"})
    assert response.status_code == 302
    job = ExportJob.objects.get(workspace=workspace)
    row = client.get(f"/billing/exports/{job.pk}/row/").content.decode()
    assert 'data-status="done"' in row and 'data-testid="export-download"' in row
    assert "hx-trigger" not in row  # finished rows stop polling

    stranger = make_member(role="finance")
    client.force_login(stranger.user)
    assert client.get(f"/billing/exports/{job.pk}/row/").status_code == 404


def test_backoffice_console_sees_every_workspace_and_totals(client, make_member, staff_finance):
    a = make_invoice(make_member(role="owner").workspace, legal_name="Alpha AG", country="DE")
    b = make_invoice(
        make_member(role="owner").workspace, legal_name="Beta SA", currency="eur", country="FR"
    )
    make_credit_note(b, amount="3.00")
    client.force_login(staff_finance)
    page = client.get("/backoffice/finance/").content.decode()
    assert "Alpha AG" in page and "Beta SA" in page
    assert 'data-testid="console-totals"' in page
    french = client.get("/backoffice/finance/?country=FR").content.decode()
    assert "Beta SA" in french and "Alpha AG" not in french
    for tab in ("lines", "credit_notes", "payments"):
        assert client.get(f"/backoffice/finance/{tab}/").status_code == 200
    assert a.number in client.get("/backoffice/finance/payments/").content.decode()


def test_backoffice_finance_can_change_nothing(client, make_member, staff_finance):
    workspace = make_member(role="owner").workspace
    invoice = make_invoice(workspace)
    client.force_login(staff_finance)
    # Admin: may look (view permissions), never change, add or delete.
    assert client.get("/admin/billing/invoice/").status_code == 200
    change = f"/admin/billing/invoice/{invoice.pk}/change/"
    assert client.post(change, {"status": "void"}).status_code == 403
    assert (
        client.post(f"/admin/billing/invoice/{invoice.pk}/delete/", {"post": "yes"}).status_code
        == 403
    )
    assert client.get("/admin/billing/tier/add/").status_code == 403
    assert client.get("/admin/accounts/workspace/add/").status_code == 403
    invoice.refresh_from_db()
    assert invoice.status == "paid" and Invoice.objects.count() == 1
    # The customer API needs a workspace membership: none.
    assert client.put(
        "/api/v1/billing/details", {}, content_type="application/json"
    ).status_code in (403, 404, 405)
    # The console has no write endpoints besides queueing exports.
    group_perms = Group.objects.get(name=FINANCE_GROUP).permissions.values_list(
        "codename", flat=True
    )
    assert group_perms and all(p.startswith("view_") for p in group_perms)


def test_others_cannot_open_the_console(client, make_member):
    owner = make_member(role="owner")
    client.force_login(owner.user)
    assert client.get("/backoffice/finance/").status_code == 403
    staff_without_group = UserFactory(is_staff=True)
    client.force_login(staff_without_group)
    assert client.get("/backoffice/finance/").status_code == 403


def test_close_pack_is_reproducible_and_complete(
    client, make_member, staff_finance, django_capture_on_commit_callbacks
):
    from billing.services.exports import export_run

    make_invoice(make_member(role="owner").workspace, lines=(("plan_fee", "29.00", "5.51"),))
    eur = make_invoice(
        make_member(role="owner").workspace,
        currency="eur",
        lines=(("plan_fee", "19.00", "3.61"), ("metered_overage", "1.25", "0.24")),
    )
    make_credit_note(eur, amount="2.00")
    client.force_login(staff_finance)
    contents = []
    for _ in range(2):
        with django_capture_on_commit_callbacks(execute=True):
            response = client.post("/backoffice/finance/exports/", {"month": "2026-11"})
        assert response.status_code == 302
        job = ExportJob.objects.filter(kind="close_pack").order_by("-created_at").first()
        assert job.status == "done", job.error
        with job.file.open("rb") as fh:
            contents.append(fh.read())
    assert contents[0] == contents[1]
    names = zipfile.ZipFile(io.BytesIO(contents[0])).namelist()
    for part in ("register", "invoice_lines", "credit_notes", "payments"):
        assert f"close-pack-2026-11/{part}.csv" in names
        assert f"close-pack-2026-11/{part}.xlsx" in names
    assert "close-pack-2026-11/summary.xlsx" in names and names[-1] == "MANIFEST.sha256"

    from tests.exports.xlsx import read_xlsx

    pack = zipfile.ZipFile(io.BytesIO(contents[0]))
    summary = read_xlsx(io.BytesIO(pack.read("close-pack-2026-11/summary.xlsx")))
    assert set(summary) == {"Totals", "Summary EUR", "Summary USD"}
    eur_rows = {r[0]: r for r in summary["Summary EUR"][1:]}
    assert eur_rows["gross"][1] == eur.total and eur_rows["credit_notes_total"][1] == 2
    assert export_run(job_id=str(job.pk)).status == "done"  # a re-run is a no-op


def test_close_pack_refuses_an_open_month(client, staff_finance):
    client.force_login(staff_finance)
    response = client.post("/backoffice/finance/exports/", {"month": "2999-01"})
    assert response.status_code == 400


def test_a_running_export_row_polls_with_htmx(client, make_member, workspace):
    finance = make_member(workspace=workspace, role="finance")
    job = ExportJob.objects.create(
        workspace=workspace,
        requested_by=finance.user,
        kind="invoices",
        format="csv",
        status="running",
        progress=40,
    )
    client.force_login(finance.user)
    row = client.get(f"/billing/exports/{job.pk}/row/").content.decode()
    assert 'hx-trigger="every 1s"' in row and "40%" in row
    assert 'data-testid="export-download"' not in row


def test_beat_builds_the_close_pack_of_the_month_that_ended(
    make_member, django_capture_on_commit_callbacks
):
    import datetime as dt

    from billing.tasks import build_monthly_close_pack
    from config import clock

    make_invoice(make_member(role="owner").workspace)
    beat_time = dt.datetime(2026, 12, 1, 2, 30, tzinfo=dt.UTC)
    with clock.travel(beat_time), django_capture_on_commit_callbacks(execute=True):
        job_id = build_monthly_close_pack()
    job = ExportJob.objects.get(pk=job_id)
    assert job.status == "done" and job.workspace is None
    assert job.start == dt.datetime(2026, 11, 1, tzinfo=dt.UTC)
    assert job.end == dt.datetime(2026, 12, 1, tzinfo=dt.UTC)
    assert job.filename == "close_pack-20261101-20261130.zip"
