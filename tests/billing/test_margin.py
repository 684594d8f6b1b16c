"""Margin from mirrored invoices and ledger rollups, scaled to the reconciled
upstream cost; the operator page, its CSV, and the upstream budget backstop."""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group

from accounts.models import Workspace
from billing.limits import workspace_limits
from billing.models import (
    EconomicsSettings,
    Invoice,
    InvoiceLine,
    ReconciliationRun,
    Subscription,
)
from billing.selectors_margin import margin_report
from billing.services.backstop import budget_check
from config import clock
from usage.models import UsageRollup

NOV = date(2026, 11, 1)


def _invoice(ws, net: str, day: date, status: str = "paid", *, tier=None, tax: str = "0"):
    """An invoice mirror with one plan-fee line whose service period starts on `day`."""
    at = datetime.combine(day, datetime.min.time(), tzinfo=UTC)
    invoice = Invoice.objects.create(
        workspace=ws,
        stripe_invoice_id=f"in_{ws.pk}_{day:%m%d}_{status}",
        status=status,
        currency="usd",
        subtotal=Decimal(net),
        net=Decimal(net),
        tax=Decimal(tax),
        total=Decimal(net) + Decimal(tax),
        created_at=at,
    )
    InvoiceLine.objects.create(
        invoice=invoice,
        stripe_line_id=f"il_{invoice.pk}",
        kind="plan_fee",
        currency="usd",
        amount=Decimal(net),
        tax=Decimal(tax),
        period_start=at,
        tier=tier,
    )
    return invoice


def _usage(ws, day: date, feature: str, tokens: int, cost: str) -> None:
    UsageRollup.objects.create(
        workspace=ws,
        day=day,
        feature=feature,
        model="gpt-4o-mini",
        requests=1,
        input_tokens=tokens,
        total_tokens=tokens,
        cost=Decimal(cost),
    )


@pytest.fixture
def november(tiers):
    acme = Workspace.objects.create(name="Acme")
    burner = Workspace.objects.create(name='=HYPERLINK("x")')
    Subscription.objects.create(workspace=acme, tier=tiers["free"], status="active")
    # 29.00 net + 5.51 tax: revenue is net of tax; the tier comes from the line.
    _invoice(acme, "29.00", date(2026, 11, 3), tier=tiers["pro"], tax="5.51")
    _invoice(acme, "50.00", date(2026, 11, 9), status="void")  # counts nothing
    _invoice(acme, "10.00", date(2026, 10, 28))  # October's
    _usage(acme, date(2026, 11, 5), "summarize", 600_000, "0.30")
    _usage(acme, date(2026, 11, 20), "chat", 400_000, "0.50")
    _usage(acme, date(2026, 12, 1), "chat", 999, "9.00")  # December's
    _usage(burner, date(2026, 11, 7), "summarize", 100_000, "2.00")
    # The upstream billed 10 % more than the ledger on the reconciled day.
    ReconciliationRun.objects.create(
        day=date(2026, 11, 5),
        status="drift",
        ledger_cost=Decimal("0.80"),
        upstream_cost=Decimal("0.88"),
    )
    return acme, burner


def test_margin_for_known_invoices_and_events_equals_the_hand_computed_figure(november):
    acme, burner = november
    report = margin_report(month=NOV)

    assert report.cost_scale == Decimal("1.1") and report.reconciled_days == 1
    worst, best = report.workspaces
    assert worst.workspace_id == burner.pk  # cost without revenue: lowest first
    assert (worst.revenue, worst.cost, worst.margin_percent) == (0, Decimal("2.200"), None)
    assert best.workspace_id == acme.pk and best.tier == "pro"
    assert best.revenue == Decimal("29.00")
    assert best.cost == (Decimal("0.30") + Decimal("0.50")) * Decimal("1.1")  # 0.88
    assert best.margin == Decimal("28.12")
    assert best.margin_percent == Decimal("97.0")  # 28.12 / 29 = 96.97 %
    features = {row.key: row for row in report.features}
    # Acme's 29.00 over its tokens: 60 % summarize, 40 % chat.
    assert features["chat"].revenue == Decimal("11.60")
    assert features["chat"].cost == Decimal("0.550")
    assert features["summarize"].revenue == Decimal("17.40")
    assert features["summarize"].cost == Decimal("0.330") + Decimal("2.200")
    assert report.total.margin == Decimal("29.00") - Decimal("0.88") - Decimal("2.20")
    assert {row.key for row in report.tiers} == {"pro", "free"}


def test_operator_page_csv_and_who_may_see_it(november, client, owner):
    client.force_login(owner)  # a customer, even an owner: no such page
    assert client.get("/operator/margin/").status_code == 404

    finance = get_user_model().objects.create_user(email="fin@example.com", password="x")
    finance.groups.add(Group.objects.get_or_create(name="Finance")[0])
    client.force_login(finance)
    page = client.get("/operator/margin/?month=2026-11")
    assert page.status_code == 200
    body = page.content.decode()
    assert "28.12" in body and "Acme" in body and "margin-chart" in body
    assert "in proportion to the tokens" in body

    exported = client.get("/operator/margin/?month=2026-11&format=csv")
    rows = list(csv.reader(io.StringIO(exported.content.decode())))
    assert rows[0][:3] == ["workspace", "tier", "tokens"]
    assert rows[1][0] == '\'=HYPERLINK("x")'  # a formula-looking name stays text
    assert rows[2][:7] == ["Acme", "pro", "1000000", "29.00", "0.88", "28.12", "97.0"]
    assert client.get("/operator/margin/?format=xlsx").status_code == 200


def test_admin_workspace_list_shows_this_months_economics(admin_client, tiers):
    ws = Workspace.objects.create(name="Listed")
    today = clock.now().date()
    _usage(ws, today, "chat", 1234, "0.75")
    _invoice(ws, "29.00", today)
    body = admin_client.get("/admin/accounts/workspace/").content.decode()
    assert "Tokens this month" in body and "1,234" in body
    assert "0.75" in body and "29.00" in body


def test_upstream_budget_alerts_once_at_80_and_100_then_refuses(
    db, mailoutbox, django_capture_on_commit_callbacks, workspace
):
    get_user_model().objects.create_user(email="ops@example.com", password="x", is_staff=True)
    EconomicsSettings.objects.create(
        pk=1, upstream_monthly_budget=Decimal("10.00"), backstop_policy="refuse"
    )
    today = clock.now().date()
    _usage(workspace, today, "chat", 1, "8.50")
    with django_capture_on_commit_callbacks(execute=True):
        assert budget_check() == "80"
        assert budget_check() == "80"
    assert len(mailoutbox) == 1 and "80%" in mailoutbox[0].subject
    assert workspace_limits(workspace).refusal is None

    _usage(workspace, today, "summarize", 1, "2.00")
    with django_capture_on_commit_callbacks(execute=True):
        assert budget_check() == "100"
        assert budget_check() == "100"
    assert len(mailoutbox) == 2 and "100%" in mailoutbox[1].subject
    refusal = workspace_limits(workspace).refusal
    assert (refusal.status, refusal.code) == (503, "upstream_unavailable")
    assert "spending limit" in refusal.message

    rules = EconomicsSettings.current()
    rules.upstream_monthly_budget = Decimal("100.00")
    rules.save()
    assert budget_check() == "ok"
    assert workspace_limits(workspace).refusal is None


def test_margin_is_an_export_kind_and_a_close_pack_section(november):
    from config.exports import ExportContext, close_pack_sections, get_kind
    from config.tabular import write_csv

    kind = get_kind("margin")
    assert kind is not None and set(kind.formats) == {"csv", "xlsx"}
    start = datetime(2026, 11, 1, tzinfo=UTC)
    ctx = ExportContext(workspace=None, start=start, end=None, format="csv")
    by_workspace = kind.sheets(ctx)[0]
    out = io.StringIO()
    write_csv(out, by_workspace.columns, by_workspace.rows)
    rows = list(csv.reader(io.StringIO(out.getvalue().lstrip("\ufeff"))))
    assert rows[0][:3] == ["name", "tier", "tokens"]
    assert ["Acme", "pro", "1000000", "29.00", "0.88", "28.12", "97.0"] in rows
    assert {"margin", "reconciliation"} <= {name for name, _ in close_pack_sections()}


def test_admin_pages_for_economics_render(admin_client, november):
    for url in (
        "/admin/billing/economicssettings/add/",
        "/admin/billing/reconciliationrun/",
        f"/admin/billing/reconciliationrun/{ReconciliationRun.objects.get().pk}/change/",
        "/admin/billing/dunningstate/",
        "/admin/billing/operatornotice/",
        "/operator/reconciliation/",
        "/operator/reconciliation/2026-11-05/",
    ):
        assert admin_client.get(url).status_code == 200, url
    assert admin_client.get("/operator/reconciliation/2026-13-01/").status_code == 404
