"""Export benchmark (issue 10): 100,000 invoices x 5 lines to XLSX and CSV.
Reports each export worker's peak memory (target <= 200 MB) and rows/second.

Run by hand (never a test), with PostgreSQL running:

    .venv/bin/python bench/export_bench.py --database tg_export_bench
    .venv/bin/python bench/export_bench.py --database tg_export_bench --invoices 10000

It creates (or reuses) the database, migrates it, fills it once with N
invoices across 50 workspaces (5 lines each: plan fee, overage, proration,
two others), then runs each export (register and lines, XLSX and CSV) in a
FRESH worker process through the real service (`export_run`), the way the
Celery task does. Each worker reports its own peak RSS (VmHWM) with Django
loaded (baseline) and after the export.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def _setup_django(database: str) -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")
    os.environ["DATABASE_URL"] = f"postgres://postgres@127.0.0.1:5432/{database}"
    os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/5")
    os.environ.setdefault("MEDIA_ROOT", str(ROOT / "var" / "bench-media"))
    import django

    django.setup()


def _ensure_database(database: str) -> None:
    import psycopg

    with psycopg.connect("postgresql://postgres@127.0.0.1:5432/postgres", autocommit=True) as c:
        exists = c.execute("SELECT 1 FROM pg_database WHERE datname = %s", [database]).fetchone()
        if not exists:
            c.execute(f'CREATE DATABASE "{database}"')


def fill(invoices: int) -> None:
    import datetime as dt
    from decimal import Decimal

    from django.core.management import call_command
    from django.db import transaction

    from accounts.models import Workspace
    from billing.models_invoices import Invoice, InvoiceLine

    call_command("migrate", verbosity=0)
    have = Invoice.objects.filter(stripe_invoice_id__startswith="in_bench").count()
    if have >= invoices:
        print(f"data: {have:,} invoices already there")
        return
    Invoice.objects.filter(stripe_invoice_id__startswith="in_bench").delete()
    workspaces = [Workspace.objects.create(name=f"Bench {i}") for i in range(50)]
    start = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    t0 = time.perf_counter()
    batch = 5_000
    kinds = ["plan_fee", "metered_overage", "proration", "other", "other"]
    for first in range(0, invoices, batch):
        with transaction.atomic():
            rows = []
            for n in range(first, min(first + batch, invoices)):
                issued = start + dt.timedelta(minutes=n * 3)
                rows.append(
                    Invoice(
                        workspace=workspaces[n % 50],
                        stripe_invoice_id=f"in_bench{n}",
                        stripe_customer_id=f"cus_bench{n % 50}",
                        number=f"BENCH-{n:07d}",
                        status="paid",
                        customer_legal_name=f"Customer {n % 50} GmbH",
                        customer_country="DE",
                        customer_tax_id="DE136695976",
                        currency="usd" if n % 3 else "eur",
                        subtotal=Decimal("50.00"),
                        net=Decimal("50.00"),
                        tax=Decimal("9.50"),
                        total=Decimal("59.50"),
                        amount_paid=Decimal("59.50"),
                        amount_due=Decimal("59.50"),
                        created_at=issued,
                        finalized_at=issued,
                        paid_at=issued,
                        service_period_start=issued,
                        service_period_end=issued + dt.timedelta(days=30),
                        payment_method_summary="visa 4242",
                    )
                )
            made = Invoice.objects.bulk_create(rows)
            InvoiceLine.objects.bulk_create(
                InvoiceLine(
                    invoice=inv,
                    stripe_line_id=f"il_{inv.stripe_invoice_id}_{i}",
                    position=i,
                    kind=kinds[i],
                    description=f"{kinds[i]} line",
                    period_start=inv.created_at,
                    period_end=inv.service_period_end,
                    quantity=Decimal(1),
                    currency=inv.currency,
                    unit_amount=Decimal("10.00"),
                    amount=Decimal("10.00"),
                    tax=Decimal("1.90"),
                )
                for inv in made
                for i in range(5)
            )
        print(f"  filled {min(first + batch, invoices):,} invoices", end="\r", flush=True)
    print(
        f"data: {invoices:,} invoices + {invoices * 5:,} lines in {time.perf_counter() - t0:.0f} s"
    )


def _peak_rss_mb() -> int:
    """This process's own peak RSS (VmHWM). Not ru_maxrss: Linux carries the
    parent's high-water mark across fork+exec, so a child would report the
    (big) parent's peak."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return round(int(line.split()[1]) / 1024)
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)


def worker(kind: str, fmt: str) -> None:
    """One export in this (fresh) process; prints a JSON line of figures."""
    from billing.models_exports import ExportJob
    from billing.services.exports import export_run

    baseline = _peak_rss_mb()
    job = ExportJob.objects.create(kind=kind, format=fmt)
    t0 = time.perf_counter()
    job = export_run(job_id=str(job.pk))
    seconds = time.perf_counter() - t0
    assert job.status == "done", job.error
    peak = _peak_rss_mb()
    print(
        json.dumps(
            {
                "kind": kind,
                "format": fmt,
                "rows": job.rows,
                "seconds": round(seconds, 1),
                "rows_per_s": round(job.rows / seconds),
                "size_mb": round(job.size / 1e6, 1),
                "baseline_mb": baseline,
                "peak_mb": peak,
            }
        )
    )
    job.file.delete(save=False)
    job.delete()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database", default="tg_export_bench")
    parser.add_argument("--invoices", type=int, default=100_000)
    parser.add_argument("--worker", nargs=2, metavar=("KIND", "FORMAT"))
    parser.add_argument("--kinds", nargs="+", default=["invoices", "invoice_lines"])
    args = parser.parse_args()
    if args.worker:
        _setup_django(args.database)
        worker(*args.worker)
        return
    _ensure_database(args.database)
    _setup_django(args.database)
    fill(args.invoices)
    print(
        f"{'export':<16}{'fmt':<6}{'rows':>9}{'s':>8}{'rows/s':>9}{'MB file':>9}"
        f"{'base MB':>9}{'peak MB':>9}"
    )
    for kind in args.kinds:
        for fmt in ("xlsx", "csv"):
            out = subprocess.run(
                [sys.executable, __file__, "--database", args.database, "--worker", kind, fmt],
                check=True,
                capture_output=True,
                text=True,
            )
            r = json.loads(out.stdout.strip().splitlines()[-1])
            print(
                f"{kind:<16}{fmt:<6}{r['rows']:>9,}{r['seconds']:>8}{r['rows_per_s']:>9,}"
                f"{r['size_mb']:>9}{r['baseline_mb']:>9}{r['peak_mb']:>9}"
            )


if __name__ == "__main__":
    main()
