"""The one table helper (config.tabular): formulas never run, cells are typed,
files are reproducible."""

from __future__ import annotations

import csv
import datetime as dt
import io
from decimal import Decimal

from config.tabular import Column, Kind, Sheet, csv_text, escape_formula, write_xlsx
from tests.exports.xlsx import read_xlsx

COLUMNS = [
    Column("name"),
    Column("amount", Kind.MONEY),
    Column("day", Kind.DATE),
    Column("count", Kind.INTEGER),
    Column("at", Kind.DATETIME),
    Column("paid", Kind.BOOLEAN),
]
HOSTILE = ['=HYPERLINK("http://x","y")', "+1+1", "-2+3", "@SUM(A1)", "\tx", "\rx"]


def _rows():
    return [
        {
            "name": text,
            "amount": Decimal("10.005"),
            "day": dt.date(2026, 11, 30),
            "count": 7,
            "at": dt.datetime(2026, 11, 30, 23, 59, 58, tzinfo=dt.UTC),
            "paid": True,
        }
        for text in [*HOSTILE, "plain"]
    ]


def test_csv_escapes_every_formula_trigger_and_types_values():
    text = csv_text(COLUMNS, _rows())
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0] == ["name", "amount", "day", "count", "at", "paid"]
    for row, hostile in zip(rows[1:], HOSTILE, strict=False):
        assert row[0] == "'" + hostile
    assert rows[-1] == ["plain", "10.01", "2026-11-30", "7", "2026-11-30T23:59:58+00:00", "true"]
    assert escape_formula("a=b") == "a=b"


def test_csv_escapes_hostile_headers_too():
    assert csv_text([Column("=cmd")], []).startswith("'=cmd")


def test_xlsx_cells_are_typed_and_text_is_never_a_formula():
    out = io.BytesIO()
    write_xlsx(out, [Sheet("Data", COLUMNS, _rows())])
    sheet = read_xlsx(io.BytesIO(out.getvalue()))["Data"]
    assert sheet[0] == ["name", "amount", "day", "count", "at", "paid"]
    assert [r[0] for r in sheet[1:-1]] == HOSTILE  # string cells, shown as typed
    last = sheet[-1]
    assert last[1] == Decimal("10.01")
    assert last[2] == dt.date(2026, 11, 30)
    assert last[3] == 7
    assert last[4] == dt.datetime(2026, 11, 30, 23, 59, 58)
    assert last[5] is True


def test_xlsx_is_byte_for_byte_reproducible():
    created = dt.datetime(2026, 12, 1, tzinfo=dt.UTC)

    def build() -> bytes:
        out = io.BytesIO()
        write_xlsx(out, [Sheet("A", COLUMNS, _rows()), Sheet("B", COLUMNS, [])], created=created)
        return out.getvalue()

    assert build() == build()
