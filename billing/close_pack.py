"""The monthly close pack: one ZIP per closed month with the invoice register,
lines, credit notes and payments (CSV and XLSX), a summary per currency, any
sections other apps registered (`config.exports.register_close_pack_section`)
and a MANIFEST of sha256 sums.

Reproducible byte for byte: members in a fixed order, every zip timestamp and
the XLSX metadata pinned to the month's end, rows in a deterministic order,
no "generated at" anywhere. Constant memory: each member is written to a temp
file and copied into the ZIP in chunks."""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import tempfile
import zipfile
from collections.abc import Callable, Sequence
from typing import IO

from billing import finance_sheets as kinds
from billing import selectors_finance as fin
from config.exports import ExportContext, close_pack_sections
from config.tabular import Column, Kind, Sheet, write_csv, write_xlsx

SUMMARY_METRICS = [
    ("invoices", "count"),
    ("subtotal", "amount"),
    ("discount", "amount"),
    ("net", "amount"),
    ("tax", "amount"),
    ("gross", "amount"),
    ("credited", "amount"),
    ("paid", "amount"),
    ("outstanding", "amount"),
    ("credit_notes", "count"),
    ("credit_notes_total", "amount"),
    ("refunded", "amount"),
]
SUMMARY_COLUMNS = [Column("metric"), Column("amount", Kind.MONEY), Column("count", Kind.INTEGER)]
TOTALS_COLUMNS = [Column("currency", Kind.TEXT, lambda r: r["currency"].upper())] + [
    Column(name, Kind.INTEGER if what == "count" else Kind.MONEY) for name, what in SUMMARY_METRICS
]


def summary_sheets(ctx: ExportContext) -> list[Sheet]:
    rows = fin.totals_by_currency(None, fin.FinanceFilters.of(ctx.start, ctx.end))
    sheets = [Sheet("Totals", TOTALS_COLUMNS, rows)]
    for row in rows:
        metrics = [{"metric": name, what: row[name]} for name, what in SUMMARY_METRICS]
        sheets.append(Sheet(f"Summary {row['currency'].upper()}", SUMMARY_COLUMNS, metrics))
    return sheets


def pack_name(start: dt.datetime) -> str:
    return f"close-pack-{start:%Y-%m}"


class _Pack:
    def __init__(self, out: IO[bytes], stamp: dt.datetime) -> None:
        self.zip = zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED)
        self.date_time = (stamp.year, stamp.month, stamp.day, 0, 0, 0)
        self.sums: list[tuple[str, str]] = []

    def add(self, name: str, build: Callable[[IO[bytes]], object]) -> None:
        with tempfile.TemporaryFile() as tmp:
            build(tmp)
            size = tmp.tell()
            tmp.seek(0)
            digest = hashlib.sha256()
            info = zipfile.ZipInfo(name, date_time=self.date_time)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            info.file_size = size
            with self.zip.open(info, "w") as dst:
                for chunk in iter(lambda: tmp.read(1 << 20), b""):
                    digest.update(chunk)
                    dst.write(chunk)
            self.sums.append((digest.hexdigest(), name))

    def close(self) -> None:
        manifest = "".join(f"{h}  {n}\n" for h, n in self.sums).encode()
        self.add("MANIFEST.sha256", lambda fh: fh.write(manifest))
        self.zip.close()


def _csv(columns: Sequence[Column], rows) -> Callable[[IO[bytes]], object]:
    def build(fh: IO[bytes]) -> None:
        text = io.TextIOWrapper(fh, encoding="utf-8", newline="")
        write_csv(text, columns, rows)
        text.flush()
        text.detach()

    return build


def _xlsx(sheets: Sequence[Sheet], stamp: dt.datetime, title: str):
    def build(fh: IO[bytes]) -> None:
        write_xlsx(fh, sheets, created=stamp, title=title)

    return build


def write_close_pack(ctx: ExportContext, out: IO[bytes]) -> None:
    if ctx.start is None or ctx.end is None:
        raise ValueError("A close pack needs its month (start and end).")
    stamp = ctx.end.astimezone(dt.UTC)
    name = pack_name(ctx.start.astimezone(dt.UTC))
    tables = [
        ("register", kinds.register_sheets),
        ("invoice_lines", kinds.line_sheets),
        ("credit_notes", kinds.credit_note_sheets),
        ("payments", kinds.payment_sheets),
    ]
    extra = close_pack_sections()
    steps = len(tables) * 2 + 1 + len(extra)
    done = 0
    pack = _Pack(out, stamp)

    def step() -> None:
        nonlocal done
        done += 1
        ctx.progress(done * 100 // (steps + 1))

    # The whole pack is all workspaces (back office): ctx.workspace is None.
    for table, sheets_of in tables:
        # Each file gets its own fresh row iterator (a query), so nothing is held.
        sheet = sheets_of(ctx)[0]
        pack.add(f"{name}/{table}.csv", _csv(sheet.columns, sheet.rows))
        step()
        pack.add(f"{name}/{table}.xlsx", _xlsx(sheets_of(ctx), stamp, table))
        step()
    pack.add(f"{name}/summary.xlsx", _xlsx(summary_sheets(ctx), stamp, "Summary"))
    step()
    for section, sheets_of in extra:
        pack.add(f"{name}/{section}.xlsx", _xlsx(sheets_of(ctx), stamp, section))
        step()
    pack.close()
