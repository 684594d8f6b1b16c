"""The registry of export kinds: what `POST /api/v1/exports` and the export
buttons can produce. Any app adds a kind without touching billing's code.

It lives in `config` (the bottom layer) so every app may register — `accounts`
and `usage` must not import `billing`, where the jobs (`ExportJob`), the Celery
task and the download live.

How to add a kind — put this in `<your_app>/export_kinds.py` (discovered at
first use, like ai_features' features):

    from config.exports import ExportContext, Scope, register
    from config.tabular import Column, Kind, Sheet

    COLUMNS = [Column("day", Kind.DATE), Column("margin", Kind.MONEY)]

    def margin_sheets(ctx: ExportContext) -> list[Sheet]:
        # ctx.workspace is None for back-office kinds
        rows = MyModel.objects.filter(day__gte=ctx.start, day__lt=ctx.end)
        return [Sheet("Margin", COLUMNS, rows.iterator(chunk_size=2000))]

    register("margin", title="Margin by day", formats=("csv", "xlsx"),
             scope=Scope.BACKOFFICE, sheets=margin_sheets, count=lambda ctx: ...)

* `sheets(ctx)` — tabular kinds: the job writes CSV (the first sheet) or XLSX
  (every sheet) through `config.tabular`; give rows as an iterator (constant
  memory). `count(ctx)` (optional) is the expected number of rows, for progress.
* `writer(ctx, fileobj)` — any other format (e.g. a ZIP): write bytes to the
  binary file object; call `ctx.progress(percent)` as you go.
* `scope`: WORKSPACE (a customer's member with `perm`, scoped to their
  workspace: `ctx.workspace` is set), BACKOFFICE (staff in the Finance group,
  all workspaces: `ctx.workspace` is None), or BOTH.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import IO, Any

from django.utils.module_loading import autodiscover_modules

from config.tabular import Sheet

FORMATS = ("csv", "xlsx", "zip")
CONTENT_TYPES = {
    "csv": "text/csv; charset=utf-8",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "zip": "application/zip",
}


class Scope(StrEnum):
    WORKSPACE = "workspace"
    BACKOFFICE = "backoffice"
    BOTH = "both"


@dataclass
class ExportContext:
    """What a kind gets to build its file: the tenant (None for back-office
    exports), the half-open period [start, end) in UTC (None: unbounded), the
    format, extra filters (e.g. status / tier / country from the console) and
    a progress callback (0-100)."""

    workspace: Any
    start: dt.datetime | None
    end: dt.datetime | None
    format: str
    filters: Mapping[str, str] = field(default_factory=dict)
    requested_by: Any = None
    progress: Callable[[int], None] = lambda percent: None


@dataclass(frozen=True)
class ExportKind:
    kind: str
    title: str
    formats: tuple[str, ...]
    scope: Scope
    perm: str
    sheets: Callable[[ExportContext], Sequence[Sheet]] | None = None
    writer: Callable[[ExportContext, IO[bytes]], None] | None = None
    count: Callable[[ExportContext], int] | None = None
    description: str = ""
    # Personal exports (account_data): only the person who asked sees the job and file.
    private: bool = False

    def allows_workspace(self) -> bool:
        return self.scope in (Scope.WORKSPACE, Scope.BOTH)

    def allows_backoffice(self) -> bool:
        return self.scope in (Scope.BACKOFFICE, Scope.BOTH)


_REGISTRY: dict[str, ExportKind] = {}
_discovered = False


def register(
    kind: str,
    *,
    title: str,
    formats: Sequence[str],
    scope: Scope = Scope.WORKSPACE,
    perm: str = "export_invoices",
    sheets: Callable[[ExportContext], Sequence[Sheet]] | None = None,
    writer: Callable[[ExportContext, IO[bytes]], None] | None = None,
    count: Callable[[ExportContext], int] | None = None,
    description: str = "",
    private: bool = False,
) -> ExportKind:
    """Add (or replace, on reload) an export kind. Exactly one of `sheets`
    (tabular: csv/xlsx) or `writer` (anything else, e.g. zip) is required."""
    if (sheets is None) == (writer is None):
        raise ValueError(f"export kind {kind!r}: give exactly one of sheets= or writer=")
    unknown = set(formats) - set(FORMATS)
    if unknown:
        raise ValueError(f"export kind {kind!r}: unknown formats {sorted(unknown)}")
    if sheets is not None and set(formats) - {"csv", "xlsx"}:
        raise ValueError(f"export kind {kind!r}: sheets= writes csv/xlsx only; use writer=")
    entry = ExportKind(
        kind=kind,
        title=title,
        formats=tuple(formats),
        scope=Scope(scope),
        perm=perm,
        sheets=sheets,
        writer=writer,
        count=count,
        description=description,
        private=private,
    )
    _REGISTRY[kind] = entry
    return entry


def discover() -> None:
    """Import every installed app's `export_kinds` module (once)."""
    global _discovered
    if not _discovered:
        autodiscover_modules("export_kinds")
        _discovered = True


def get_kind(kind: str) -> ExportKind | None:
    discover()
    return _REGISTRY.get(kind)


def all_kinds() -> list[ExportKind]:
    discover()
    return sorted(_REGISTRY.values(), key=lambda k: k.kind)


# --- extra sections of the monthly close pack ---------------------------------------
# The close pack (billing) holds the register, lines, credit notes, payments and
# a summary per currency; other apps add sections (e.g. the upstream bill and
# margin) with `register_close_pack_section("margin", sheets=fn)`: fn(ctx) gets
# ctx.workspace None and the month as [start, end); each section becomes
# `<name>.xlsx` in the ZIP. Keep rows ordered deterministically: the pack of a
# closed month must be byte-for-byte reproducible.

_CLOSE_PACK_SECTIONS: dict[str, Callable[[ExportContext], Sequence[Sheet]]] = {}


def register_close_pack_section(
    name: str, *, sheets: Callable[[ExportContext], Sequence[Sheet]]
) -> None:
    _CLOSE_PACK_SECTIONS[name] = sheets


def close_pack_sections() -> list[tuple[str, Callable[[ExportContext], Sequence[Sheet]]]]:
    discover()
    return sorted(_CLOSE_PACK_SECTIONS.items())
