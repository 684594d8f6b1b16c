"""The one way the product writes tables (CSV and XLSX) — issue 9 item 9.

Every export — the usage trace, an extraction, invoices, the close pack, and
whatever other apps register — declares its columns once as `Column`s and hands
rows to `write_csv` / `write_xlsx` / `csv_lines`. That keeps three promises in
one place:

* **No formulas from data.** A CSV text cell starting with `=`, `+`, `-`, `@`,
  TAB or CR gets a leading `'` (OWASP "CSV injection"), so a key named
  `=HYPERLINK(...)` is shown, not run. XLSX text is always written as a string
  cell (`write_string`), which spreadsheet programs never evaluate, so it needs
  no visible prefix.
* **Typed cells.** Dates are dates, datetimes are UTC datetimes, money is a
  number with 2 decimals (`Decimal`, quantized half-up; never float in our
  code), integers are integers.
* **Constant memory.** Rows are consumed one at a time from any iterable (feed
  it `.iterator(chunk_size=…)`); CSV goes straight to the stream and XLSX uses
  XlsxWriter's `constant_memory` mode (one row in memory, flushed to a temp
  file). Files are reproducible: XlsxWriter stamps zip members 1980-01-31 and we
  pin the document's created time (`created=`).
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from enum import StrEnum
from typing import IO, Any

import xlsxwriter

FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")
CENTS = Decimal("0.01")
XLSX_MAX_TEXT = 32_767  # Excel's cell limit
# When a caller gives no created time, XLSX metadata still must not vary per run.
EPOCH = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)


class Kind(StrEnum):
    TEXT = "text"
    INTEGER = "integer"
    MONEY = "money"  # 2 decimals
    DECIMAL = "decimal"  # as stored (e.g. unit prices with 6 decimals)
    DATE = "date"
    DATETIME = "datetime"  # UTC
    BOOLEAN = "boolean"


def _default_getter(name: str) -> Callable[[Any], Any]:
    def get(row: Any) -> Any:
        if isinstance(row, Mapping):
            return row.get(name)
        return getattr(row, name, None)

    return get


@dataclass(frozen=True)
class Column:
    """One column: its header, its kind, and how to read it from a row object
    (a mapping key or attribute of the same name unless `get` is given)."""

    name: str
    kind: Kind = Kind.TEXT
    get: Callable[[Any], Any] | None = None
    width: int | None = None

    def value(self, row: Any) -> Any:
        getter = self.get or _default_getter(self.name)
        return getter(row)


@dataclass
class Sheet:
    """A named table for `write_xlsx` (one workbook may hold several)."""

    name: str
    columns: Sequence[Column]
    rows: Iterable[Any]
    # Filled by the writer: how many data rows were written.
    written: int = field(default=0, init=False)


# --- cells -------------------------------------------------------------------------


def escape_formula(text: str) -> str:
    """Text a spreadsheet will show, never run as a formula."""
    if text[:1] in FORMULA_TRIGGERS:
        return "'" + text
    return text


def money(value: Any) -> Decimal | None:
    if value is None or value == "":
        return None
    return Decimal(value).quantize(CENTS, rounding=ROUND_HALF_UP)


def _as_utc(value: dt.datetime) -> dt.datetime:
    if value.tzinfo is None:
        return value
    return value.astimezone(dt.UTC)


def csv_cell(value: Any, kind: Kind = Kind.TEXT) -> str:
    """One value as CSV text for its column kind."""
    if value is None:
        return ""
    if kind == Kind.MONEY:
        return f"{money(value):f}"
    if kind == Kind.DECIMAL:
        return f"{Decimal(value):f}"
    if kind == Kind.INTEGER:
        return str(int(value))
    if kind == Kind.BOOLEAN:
        return "true" if value else "false"
    if kind == Kind.DATETIME and isinstance(value, dt.datetime):
        return _as_utc(value).isoformat()
    if kind == Kind.DATE and isinstance(value, dt.datetime):
        return _as_utc(value).date().isoformat()
    if kind == Kind.DATE and isinstance(value, dt.date):
        return value.isoformat()
    return escape_formula(str(value))


def row_values(columns: Sequence[Column], row: Any) -> list[Any]:
    return [column.value(row) for column in columns]


# --- CSV ---------------------------------------------------------------------------


class _Echo:
    """A write() that hands the line back, for streaming responses."""

    def write(self, value: str) -> str:
        return value


def csv_lines(columns: Sequence[Column], rows: Iterable[Any]) -> Iterator[str]:
    """Header then one CSV line per row — for `StreamingHttpResponse`."""
    writer = csv.writer(_Echo())
    yield writer.writerow([escape_formula(c.name) for c in columns])
    for row in rows:
        values = row_values(columns, row)
        yield writer.writerow([csv_cell(v, c.kind) for v, c in zip(values, columns, strict=True)])


def write_csv(
    stream: IO[str],
    columns: Sequence[Column],
    rows: Iterable[Any],
    *,
    on_row: Callable[[int], None] | None = None,
) -> int:
    """Write header + rows to a text stream; returns the number of data rows.
    `on_row(n)` is called after each row (progress reporting)."""
    count = 0
    for count, line in enumerate(csv_lines(columns, rows)):
        stream.write(line)
        if count and on_row is not None:
            on_row(count)
    return count


def csv_text(columns: Sequence[Column], rows: Iterable[Any]) -> str:
    """Small tables only (one extraction, a test): the whole CSV as a string."""
    out = io.StringIO()
    write_csv(out, columns, rows)
    return out.getvalue()


# --- XLSX --------------------------------------------------------------------------


class _Formats:
    def __init__(self, book: xlsxwriter.Workbook) -> None:
        self.header = book.add_format({"bold": True})
        self.money = book.add_format({"num_format": "#,##0.00"})
        self.decimal = book.add_format({"num_format": "0.000000##"})
        self.date = book.add_format({"num_format": "yyyy-mm-dd"})
        self.datetime = book.add_format({"num_format": "yyyy-mm-dd hh:mm:ss"})


def _write_xlsx_cell(ws: Any, r: int, c: int, value: Any, kind: Kind, fmt: _Formats) -> None:
    if value is None or value == "":
        return  # an empty cell, not an empty string
    if kind == Kind.MONEY:
        ws.write_number(r, c, money(value), fmt.money)
    elif kind == Kind.DECIMAL:
        ws.write_number(r, c, Decimal(value), fmt.decimal)
    elif kind == Kind.INTEGER:
        ws.write_number(r, c, int(value))
    elif kind == Kind.BOOLEAN:
        ws.write_boolean(r, c, bool(value))
    elif kind == Kind.DATETIME and isinstance(value, dt.datetime):
        ws.write_datetime(r, c, _as_utc(value).replace(tzinfo=None), fmt.datetime)
    elif kind == Kind.DATE and isinstance(value, dt.date):
        day = _as_utc(value).date() if isinstance(value, dt.datetime) else value
        ws.write_datetime(r, c, day, fmt.date)
    else:
        # write_string: a string cell is never evaluated, whatever it starts with.
        ws.write_string(r, c, str(value)[:XLSX_MAX_TEXT])


def _default_width(column: Column) -> int:
    if column.width:
        return column.width
    by_kind = {Kind.DATE: 11, Kind.DATETIME: 20, Kind.MONEY: 13, Kind.DECIMAL: 13}
    return max(by_kind.get(column.kind, 12), min(len(column.name) + 2, 40))


def _sheet_name(name: str) -> str:
    # Excel: ≤ 31 characters, none of []:*?/\
    cleaned = "".join("_" if ch in "[]:*?/\\" else ch for ch in name)
    return cleaned[:31] or "Sheet"


def write_xlsx(
    target: str | IO[bytes],
    sheets: Sequence[Sheet],
    *,
    created: dt.datetime | None = None,
    title: str = "",
    on_row: Callable[[int], None] | None = None,
) -> int:
    """Write sheets into one workbook (a path or a binary file object) in
    XlsxWriter's constant-memory mode; returns the total data rows written.
    `created` pins the document metadata (give the period end for a
    reproducible file)."""
    book = xlsxwriter.Workbook(
        target,
        {"constant_memory": True, "remove_timezone": True, "strings_to_formulas": False},
    )
    book.set_properties(
        {"title": title, "author": "Tollgate", "created": _as_utc(created or EPOCH)}
    )
    fmt = _Formats(book)
    total = 0
    try:
        for sheet in sheets:
            ws = book.add_worksheet(_sheet_name(sheet.name))
            for c, column in enumerate(sheet.columns):
                ws.set_column(c, c, _default_width(column))
                ws.write_string(0, c, column.name[:XLSX_MAX_TEXT], fmt.header)
            ws.freeze_panes(1, 0)
            for r, row in enumerate(sheet.rows, start=1):
                values = row_values(sheet.columns, row)
                for c, (value, column) in enumerate(zip(values, sheet.columns, strict=True)):
                    _write_xlsx_cell(ws, r, c, value, column.kind, fmt)
                sheet.written = r
                total += 1
                if on_row is not None:
                    on_row(total)
    finally:
        book.close()
    return total
