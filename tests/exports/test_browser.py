"""In real Chromium: a customer's finance member exports invoices as XLSX and
downloads an invoice PDF; a back-office finance user builds a close pack."""

from __future__ import annotations

import hashlib
import io
import zipfile
from pathlib import Path

import pytest
from django.core.files.base import ContentFile

from billing.backoffice import ensure_finance_group
from tests.exports.conftest import make_credit_note, make_invoice
from tests.exports.xlsx import read_xlsx
from tests.factories import UserFactory

pytestmark = pytest.mark.browser

PDF = b"%PDF-1.4\n1 0 obj<</Type/Catalog>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n"


def _archive_pdf(invoice) -> None:
    invoice.pdf_file.save(f"{invoice.stripe_invoice_id}.pdf", ContentFile(PDF), save=False)
    invoice.pdf_sha256 = hashlib.sha256(PDF).hexdigest()
    invoice.save(from_stripe=True)


def test_finance_member_exports_xlsx_and_downloads_a_pdf(
    live_url, page, make_member, workspace, login_browser
):
    finance = make_member(workspace=workspace, role="finance")
    invoice = make_invoice(workspace)
    make_invoice(workspace, currency="eur", lines=(("plan_fee", "19.00", "3.61"),))
    _archive_pdf(invoice)
    login_browser(page, live_url, finance.user)

    page.goto(f"{live_url}/billing/")
    page.get_by_test_id("nav-invoices").first.click()
    assert page.get_by_test_id("invoice-row").count() == 2
    with page.expect_download() as pdf:
        page.locator(f"a[href*='{invoice.stripe_invoice_id}/pdf']").first.click()
    assert Path(pdf.value.path()).read_bytes() == PDF

    page.goto(f"{live_url}/billing/exports/")
    assert page.get_by_test_id("exports-empty").is_visible()
    page.select_option("select[name=kind]", "invoices")
    page.select_option("select[name=format]", "xlsx")
    page.get_by_test_id("export-submit").click()
    row = page.get_by_test_id("export-row").first
    row.locator("[data-testid=export-download]").wait_for(timeout=15_000)
    with page.expect_download() as xlsx:
        row.get_by_test_id("export-download").click()
    sheet = read_xlsx(io.BytesIO(Path(xlsx.value.path()).read_bytes()))["Invoices"]
    header = sheet[0]
    gross, net, tax = (header.index(c) for c in ("gross", "net", "tax"))
    assert len(sheet) == 3
    assert all(r[net] + r[tax] == r[gross] for r in sheet[1:])


def test_backoffice_user_builds_the_close_pack(live_url, page, make_member, login_browser):
    staff = UserFactory(is_staff=True)
    staff.groups.add(ensure_finance_group())
    invoice = make_invoice(make_member(role="owner").workspace)
    make_credit_note(invoice, amount="4.00")
    login_browser(page, live_url, staff)

    page.goto(f"{live_url}/backoffice/finance/")
    assert page.get_by_test_id("register-row").count() == 1
    page.get_by_role("link", name="Exports & close pack").click()
    page.fill("input[name=month]", "2026-11")
    page.get_by_test_id("close-pack-submit").click()
    row = page.get_by_test_id("export-row").first
    row.locator("[data-testid=export-download]").wait_for(timeout=30_000)
    with page.expect_download() as pack:
        row.get_by_test_id("export-download").click()
    names = zipfile.ZipFile(Path(pack.value.path())).namelist()
    assert "close-pack-2026-11/register.xlsx" in names
    assert "close-pack-2026-11/summary.xlsx" in names
