"""Operator economics at scale: reconcile a month and compute its margin for
10,000 workspaces and 5,000,000 usage events. Run by hand (never a test):

    .venv/bin/python bench/economics_bench.py                  # generate + measure
    .venv/bin/python bench/economics_bench.py --reuse          # measure again
    .venv/bin/python bench/economics_bench.py --events 500000  # smaller

Generates into a scratch database (default `tg_economics_bench` on the
DATABASE_URL server; dropped and re-created unless --reuse) with
INSERT … SELECT generate_series: workspaces, subscriptions, one paid invoice
with a plan-fee line per workspace, the ledger (usage events over November
2026) and the rollups the meter would have upserted beside them. The upstream
is the fake OpenAI server in-process, loaded with the same day x model totals,
so every day reconciles (the Usage/Costs API round trips are real HTTP via the
openai SDK).

Measures, in this process: wall time of reconciling the 30 days (ledger side:
one grouped range query per day on the BRIN index) and of the month's margin
report (grouped queries over rollups and invoice lines) + the 12-month chart;
peak RSS (VmHWM). Prints EXPLAIN (ANALYZE) of the two big queries."""

from __future__ import annotations

import argparse
import os
import socket
import sys
import threading
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

MONTH = date(2026, 11, 1)
DAYS = 30
MODELS = ("gpt-4o-mini", "gpt-4.1-mini")
FEATURES = ("summarize", "extract", "chat")
UPSTREAM_KEY = "sk-bench-upstream-key"


def scratch_url(base: str, name: str) -> str:
    parts = urlsplit(base)
    return urlunsplit(parts._replace(path=f"/{name}"))


def recreate(base: str, name: str) -> None:
    import psycopg

    with psycopg.connect(scratch_url(base, "postgres"), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


def peak_rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


GENERATE = [
    # 10,000 workspaces, each on pro (29.00) or team (99.00).
    """INSERT INTO accounts_workspace (id, name, created_at, is_suspended, suspended_reason)
       SELECT g, 'Workspace ' || g, '2026-01-01', false, '' FROM generate_series(1, %(ws)s) g""",
    """INSERT INTO billing_tier (id, name, slug, description, monthly_price, currency,
         included_tokens, features, overage_policy, overage_price_per_million, is_public,
         is_archived, sort_order, stripe_product_id, stripe_price_id, stripe_overage_price_id)
       VALUES (1, 'Pro', 'pro', '', 29.00, 'usd', 1000000, '[]', 'stop', 0, true, false, 1,
               '', '', ''),
              (2, 'Team', 'team', '', 99.00, 'usd', 5000000, '[]', 'stop', 0, true, false, 2,
               '', '', '')""",
    """INSERT INTO billing_subscription (workspace_id, tier_id, status, stripe_customer_id,
         stripe_subscription_id, stripe_item_id, cancel_at_period_end, checkout_session_id,
         checkout_url, updated_at)
       SELECT g, 1 + (g %% 2), 'active', 'cus_' || g, 'sub_' || g, '', false, '', '', now()
       FROM generate_series(1, %(ws)s) g""",
    """INSERT INTO billing_invoice (id, workspace_id, stripe_invoice_id, number, status,
         currency, subtotal, discount, net, tax, total, amount_due, amount_paid,
         amount_remaining, credited_total, hosted_invoice_url, invoice_pdf, billing_reason,
         collection_method, customer_address, customer_country, customer_email,
         customer_legal_name, customer_tax_id, customer_tax_id_type, payment_method_summary,
         pdf_file, pdf_sha256, stripe_charge_id, stripe_customer_id, stripe_payment_intent_id,
         stripe_subscription_id, attempt_count, created_at, synced_at, updated_at)
       SELECT g, g, 'in_' || g, 'TG-' || g, 'paid', 'usd', p, 0, p, 0, p, p, p, 0, 0, '', '',
              'subscription_cycle', 'charge_automatically', '{}', '', '', '', '', '', '', '',
              '', '', 'cus_' || g, '', 'sub_' || g, 1, '2026-11-01', now(), now()
       FROM generate_series(1, %(ws)s) g,
            LATERAL (SELECT CASE WHEN g %% 2 = 0 THEN 29.00 ELSE 99.00 END AS p) price""",
    """INSERT INTO billing_invoiceline (invoice_id, stripe_line_id, position, kind, description,
         period_start, period_end, quantity, currency, unit_amount, amount, discount, tax,
         proration, tier_id, stripe_price_id, stripe_product_id, stripe_subscription_item_id)
       SELECT i.id, 'il_' || i.id, 0, 'plan_fee', 'Plan', '2026-11-01', '2026-12-01', 1, 'usd',
              i.net, i.net, 0, 0, false, 1 + (i.id %% 2), '', '', ''
       FROM billing_invoice i""",
    # The ledger: N events spread evenly over the month, workspaces, features, models.
    """INSERT INTO usage_usageevent (workspace_id, feature, model, input_tokens,
         cached_input_tokens, output_tokens, total_tokens, reserved_tokens, input_price,
         cached_input_price, output_price, cost, latency_ms, request_id, upstream_request_id,
         status, error_code, flagged, flag_reason, streamed, created_at)
       SELECT 1 + (g %% %(ws)s), f.feature, m.model, inp, cached, outp, inp + outp,
              inp + outp, 0.15, 0.075, 0.60,
              round(((inp - cached) * 0.15 + cached * 0.075 + outp * 0.60) / 1000000.0, 8),
              400, 'req_' || g, '', CASE WHEN g %% 5000 = 0 THEN 'incomplete' ELSE 'ok' END,
              '', g %% 5000 = 0, '', false,
              timestamptz '2026-11-01 00:00:00+00' + (g::float8 / %(events)s) * interval '30 days'
       FROM generate_series(1, %(events)s) g,
            LATERAL (SELECT 200 + (g %% 700) AS inp, (g %% 3) * 128 AS cached,
                            50 + (g %% 300) AS outp) t,
            LATERAL (SELECT (ARRAY['summarize','extract','chat'])[1 + g %% 3] AS feature) f,
            LATERAL (SELECT (ARRAY['gpt-4o-mini','gpt-4.1-mini'])[1 + (g / 7) %% 2] AS model) m""",
    # The rollups the meter upserts beside each event.
    """INSERT INTO usage_usagerollup (workspace_id, day, feature, model, user_id, api_key_id,
         requests, input_tokens, cached_input_tokens, output_tokens, total_tokens, cost)
       SELECT workspace_id, (created_at AT TIME ZONE 'UTC')::date, feature, model, 0, 0,
              count(*), sum(input_tokens), sum(cached_input_tokens), sum(output_tokens),
              sum(total_tokens), sum(cost)
       FROM usage_usageevent GROUP BY 1, 2, 3, 4""",
    # What autovacuum does in steady state (the BRIN indexes autosummarize):
    # summarize the block ranges, refresh the statistics.
    "VACUUM ANALYZE usage_usageevent",
    "VACUUM ANALYZE usage_usagerollup",
]


def generate(workspaces: int, events: int) -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        # Bulk load: no per-row foreign-key triggers (the data is consistent by
        # construction), no fsync wait per statement.
        cursor.execute("SET session_replication_role = replica")
        cursor.execute("SET synchronous_commit = off")
    for sql in GENERATE:
        started = time.perf_counter()
        with connection.cursor() as cursor:
            cursor.execute(sql, {"ws": workspaces, "events": events})
        print(f"  {time.perf_counter() - started:6.1f} s  {sql.split()[2] if ' ' in sql else sql}")


def start_fake_upstream():
    import uvicorn

    from standins.fake_openai import create_app

    app = create_app()
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error"))
    server.install_signal_handlers = lambda: None
    threading.Thread(target=server.run, daemon=True).start()
    while not server.started:
        time.sleep(0.05)
    return app.state.fake, f"http://127.0.0.1:{port}/v1", server


def load_upstream(fake) -> None:
    """The upstream 'served' exactly what the ledger says: one aggregate per day x model."""
    from billing.services.reconciliation import ledger_day
    from standins.fake_openai.org_billing import Served, key_id

    for offset in range(DAYS):
        day = MONTH + timedelta(days=offset)
        at = datetime.combine(day, datetime.min.time(), tzinfo=UTC).timestamp() + 3600
        for model, row in ledger_day(day).items():
            if not row["requests"]:
                continue
            fake.org.served.append(
                Served(
                    at,
                    model,
                    key_id(UPSTREAM_KEY),
                    row["input_tokens"],
                    row["cached_input_tokens"],
                    row["output_tokens"],
                    requests=row["requests"],
                )
            )


def explain() -> None:
    from django.db import connection

    day = MONTH + timedelta(days=14)
    from billing.selectors_margin import usage_query
    from billing.services.reconciliation import ledger_day_query

    ledger = ledger_day_query(day)
    rollups = usage_query(MONTH, date(2026, 12, 1))
    for title, qs in (("ledger day (reconciliation)", ledger), ("month rollups (margin)", rollups)):
        sql, params = qs.query.sql_with_params()
        with connection.cursor() as cursor:
            cursor.execute("EXPLAIN (ANALYZE, BUFFERS, TIMING OFF) " + sql, params)
            print(f"\n-- EXPLAIN {title}")
            for (line,) in cursor.fetchall():
                print("   " + line)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--workspaces", type=int, default=10_000)
    parser.add_argument("--events", type=int, default=5_000_000)
    parser.add_argument("--database", default="tg_economics_bench")
    parser.add_argument("--reuse", action="store_true", help="keep the generated data")
    args = parser.parse_args()

    base = os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/tollgate")
    if not args.reuse:
        recreate(base, args.database)
    os.environ["DATABASE_URL"] = scratch_url(base, args.database)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.test")
    os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/6")
    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command

    if not args.reuse:
        call_command("migrate", verbosity=0)
        print(f"generating {args.workspaces:,} workspaces, {args.events:,} events …")
        started = time.perf_counter()
        generate(args.workspaces, args.events)
        print(f"generated in {time.perf_counter() - started:.1f} s")

    fake, base_url, server = start_fake_upstream()
    load_upstream(fake)
    from standins.fake_openai.org_billing import key_id

    settings.OPENAI_ADMIN_KEY = "sk-admin-bench"
    settings.OPENAI_ADMIN_BASE_URL = base_url
    settings.OPENAI_UPSTREAM_KEY_ID = key_id(UPSTREAM_KEY)
    from billing.models import ReconciliationRun
    from billing.selectors_margin import margin_report, monthly_totals
    from billing.services.reconciliation import reconcile_day

    ReconciliationRun.objects.all().delete()
    rss_before = peak_rss_mb()
    started = time.perf_counter()
    runs = [reconcile_day(day=MONTH + timedelta(days=i)) for i in range(DAYS)]
    reconciled = time.perf_counter() - started
    started = time.perf_counter()
    report = margin_report(month=MONTH)
    chart = monthly_totals(until=MONTH)
    margin_seconds = time.perf_counter() - started
    server.should_exit = True

    statuses = {run.status for run in runs}
    print(f"\nreconciled {DAYS} days in {reconciled:.2f} s  (statuses: {statuses})")
    print(
        f"margin for {len(report.workspaces):,} workspaces + 12-month chart in "
        f"{margin_seconds:.2f} s  (revenue {report.total.revenue}, cost "
        f"{report.total.cost:.2f}, margin {report.total.margin:.2f}, "
        f"{len(chart)} chart months)"
    )
    print(
        f"total {reconciled + margin_seconds:.2f} s; peak RSS {peak_rss_mb():.0f} MB "
        f"(before measuring {rss_before:.0f} MB)"
    )
    explain()


if __name__ == "__main__":
    main()
