# ruff: noqa: S314 - parses the XLSX files our own code just wrote
"""A small, strict XLSX reader for the tests (zipfile + the OOXML itself), so
a test sees what a spreadsheet program sees: cell types from the cell and its
number format — strings, booleans, numbers (as Decimal, from the file's text),
dates and datetimes."""

from __future__ import annotations

import datetime as dt
import re
import zipfile
from decimal import Decimal
from typing import IO, Any
from xml.etree import ElementTree as ET  # our own files, in tests only

NS = {"m": "http://schemas.openxmlformats.org/spreadsheetml/2006/main"}
REL = "{http://schemas.openxmlformats.org/officeDocument/2006/relationships}id"
BUILTIN_DATE_FORMATS = {14, 15, 16, 17, 22}
EXCEL_EPOCH = dt.datetime(1899, 12, 30)


def _col_index(ref: str) -> int:
    letters = re.match(r"[A-Z]+", ref).group(0)
    n = 0
    for ch in letters:
        n = n * 26 + ord(ch) - 64
    return n - 1


def _styles(book: zipfile.ZipFile) -> list[str]:
    """Per cell style index: 'date', 'datetime', 'money' or ''."""
    root = ET.fromstring(book.read("xl/styles.xml"))
    codes = {
        int(f.get("numFmtId")): f.get("formatCode") for f in root.findall("m:numFmts/m:numFmt", NS)
    }
    kinds = []
    for xf in root.findall("m:cellXfs/m:xf", NS):
        fid = int(xf.get("numFmtId", "0"))
        code = codes.get(fid, "")
        if "hh" in code:
            kinds.append("datetime")
        elif "yy" in code or fid in BUILTIN_DATE_FORMATS:
            kinds.append("date")
        elif code == "#,##0.00":
            kinds.append("money")
        else:
            kinds.append("")
    return kinds


def _cell(c: ET.Element, styles: list[str], shared: list[str]) -> Any:
    kind = c.get("t")
    if kind == "inlineStr":
        text = "".join(t.text or "" for t in c.iter(f"{{{NS['m']}}}t"))
        # OOXML escapes control characters as _xHHHH_.
        return re.sub(r"_x([0-9A-F]{4})_", lambda m: chr(int(m.group(1), 16)), text)
    v = c.find("m:v", NS)
    if v is None:
        return None
    if kind == "s":
        return shared[int(v.text)]
    if kind == "b":
        return v.text == "1"
    if kind == "str":
        return v.text
    style = styles[int(c.get("s", "0"))]
    number = Decimal(v.text)
    if style in ("date", "datetime"):
        moment = EXCEL_EPOCH + dt.timedelta(days=float(number))
        moment = moment.replace(microsecond=round(moment.microsecond, -3) % 1_000_000)
        return moment.date() if style == "date" else moment.replace(microsecond=0)
    return number


def read_xlsx(source: str | IO[bytes]) -> dict[str, list[list[Any]]]:
    """{sheet name: rows (header first)}; formulas are an error: we never write any."""
    with zipfile.ZipFile(source) as book:
        styles = _styles(book)
        shared = []
        if "xl/sharedStrings.xml" in book.namelist():
            root = ET.fromstring(book.read("xl/sharedStrings.xml"))
            shared = ["".join(t.text or "" for t in si.iter(f"{{{NS['m']}}}t")) for si in root]
        wb = ET.fromstring(book.read("xl/workbook.xml"))
        rels = ET.fromstring(book.read("xl/_rels/workbook.xml.rels"))
        targets = {r.get("Id"): r.get("Target") for r in rels}
        result = {}
        for sheet in wb.findall("m:sheets/m:sheet", NS):
            xml = book.read("xl/" + targets[sheet.get(REL)].lstrip("/").removeprefix("xl/"))
            root = ET.fromstring(xml)
            assert root.find(".//m:f", NS) is None, "a formula in an export"
            rows = []
            for row in root.findall("m:sheetData/m:row", NS):
                cells = {_col_index(c.get("r")): _cell(c, styles, shared) for c in row}
                width = max(cells) + 1 if cells else 0
                rows.append([cells.get(i) for i in range(width)])
            result[sheet.get("name")] = rows
        return result
