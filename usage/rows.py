"""The hot path's SQL: prepared statements and one-statement INSERTs.

Django's PostgreSQL backend turns psycopg's prepared statements off for every
connection (`prepare_threshold=None`, for transaction-mode poolers), so a
`prepare=True` alone is ignored and PostgreSQL parses and plans each of the
meter's CTEs on every call (~0.4 ms of its CPU per statement, measured with
`log_min_duration_statement`). `prepared()` switches preparation on for the
statements that ask for it — and only those: the ORM's own queries keep
Django's client-side binding. A pooler in front of PostgreSQL must keep a
session per connection (PgBouncer ≥ 1.21 tracks protocol-level prepared
statements in transaction mode too).

`insert()` writes model instances (any mix of models) in ONE prepared statement
without the ORM's per-object machinery, filling in their primary keys: the
ledger event, its moderation log and the feature's stored result are the
writes of every metered call. `insert_ctes()` gives the same INSERTs as CTEs of
a bigger statement, and `deferred()` lets the meter collect a feature's rows to
write them in its own settle statement."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache

import psycopg
from django.db import DEFAULT_DB_ALIAS, connections
from django.db.models import Model
from psycopg import _queries
from psycopg.pq import ExecStatus, TransactionStatus

# Prepare a statement only when it asks (`prepare=True`): never automatically.
ONLY_WHEN_ASKED = 2**31 - 1

# psycopg remembers how it split a query around its placeholders only for
# queries under 4 KiB and 50 parameters; the settle statement has ~60 and is
# re-split on every call (~6% of the web process's CPU under load, py-spy).
# Its cache is an LRU of 128 entries, so raising the bounds costs little.
if getattr(_queries, "MAX_CACHED_STATEMENT_LENGTH", 0) < 16384:
    _queries.MAX_CACHED_STATEMENT_LENGTH = 16384
if getattr(_queries, "MAX_CACHED_STATEMENT_PARAMS", 0) < 256:
    _queries.MAX_CACHED_STATEMENT_PARAMS = 256


def _db():
    """This thread's connection wrapper itself. `django.db.connection` is a
    proxy that looks the wrapper up again on every attribute read; the settle
    statement's ~45 field conversions read it ~40 times (~20 % of building
    its parameters)."""
    return connections[DEFAULT_DB_ALIAS]


# One server-side binding cursor per statement text and connection, kept: a
# cursor that runs the very same query object again keeps its adapters'
# choice of dumper per value (the settle statement binds ~60 values; looking
# each type up again on a fresh cursor was ~1/4 of the settle's CPU).
# Kept on Django's connection wrapper (one per thread), for the psycopg
# connection it holds now: a reconnect starts afresh and frees the old ones.
MAX_CURSORS = 64  # statement shapes per connection (the meter has a handful)


def _cursor_for(db, sql: str) -> tuple[str, psycopg.Cursor]:
    pg = db.connection
    owner, kept = getattr(db, "_tollgate_cursors", (None, None))
    if owner is not pg or kept is None:
        if pg.prepare_threshold is None:
            pg.prepare_threshold = ONLY_WHEN_ASKED
        kept = {}
        db._tollgate_cursors = (pg, kept)
    entry = kept.get(sql)
    if entry is None or entry[1].closed:
        if len(kept) >= MAX_CURSORS:
            kept.clear()
        entry = kept[sql] = (sql, psycopg.Cursor(pg))
    return entry


def prepared(sql: str, params: dict | list | tuple, *, commit: bool = False) -> list[tuple]:
    """Run `sql` server-side bound and prepared on this connection (planned
    once per connection). Goes through Django's cursor wrappers and error
    mapping like any other query.

    `commit`: the statement ends the outermost `atomic` block it runs in, so
    it commits in the same round trip: the locks it takes are released by the
    server as soon as it has run, not after this thread gets the GIL back and
    sends a COMMIT of its own. The block must end right after; Django's
    commit then finds nothing to do."""
    db = _db()
    with db.cursor() as wrapper:
        # The kept text is the same object each time (psycopg compares identity).
        text, raw = _cursor_for(db, sql)
        if commit and not in_outermost_block(db):
            raise RuntimeError("commit=True needs the outermost atomic block")

        def run(sql, params, many, context):
            with db.wrap_database_errors:
                if not commit:
                    raw.execute(text, params, prepare=True)
                else:
                    _execute_and_commit(raw, text, params)

        wrapper._execute_with_wrappers(sql, params, many=False, executor=run)
        # (Not `raw.description`: it builds a Column per result column.)
        result = raw.pgresult
        return raw.fetchall() if result and result.status == ExecStatus.TUPLES_OK else []


def _execute_and_commit(raw: psycopg.Cursor, text: str, params) -> None:
    """Run ONE statement as the end of its transaction, in one round trip.

    Nothing written yet in the transaction (the usual settle): the statement
    runs as a transaction of its own, in autocommit, which PostgreSQL commits
    when it ends: no BEGIN, no COMMIT. This is the same transaction
    `atomic` would have made, as nothing else is in it. Otherwise its COMMIT
    is queued behind it in psycopg's pipeline mode: still one round trip."""
    pg = raw.connection
    if pg.info.transaction_status != TransactionStatus.IDLE:
        with pg.pipeline():
            raw.execute(text, params, prepare=True)
            pg.commit()
        return
    pg.autocommit = True
    try:
        raw.execute(text, params, prepare=True)
    finally:
        if not pg.closed:  # (a broken connection is Django's to replace)
            pg.autocommit = False  # Django's atomic block still owns the connection


def in_outermost_block(db=None) -> bool:
    """Inside an `atomic` block that opened the transaction and has no
    enclosing one (so a statement may commit it)."""
    if db is None:
        db = _db()
    return (
        db.in_atomic_block
        and db.commit_on_exit
        and len(db.atomic_blocks) == 1
        and not db.savepoint_ids
    )


@cache
def _insert_shape(
    model: type[Model], n: int, computed: tuple[tuple[str, str], ...] = ()
) -> tuple[tuple, str, str]:
    """(fields, CTE `r{n}`, pick of its key) for one model: the
    SQL text is the same on every call, only the values change. `computed`:
    (field name, SQL expression) for columns the statement itself fills in."""
    meta = model._meta
    generated = meta.pk.db_returning if meta.pk is not None else False
    exprs = dict(computed)
    stored = [f for f in meta.concrete_fields if not (f.primary_key and generated)]
    fields = tuple(f for f in stored if f.attname not in exprs)
    filled = [f for f in stored if f.attname in exprs]
    quote_name = _db().ops.quote_name
    columns = ", ".join(quote_name(f.column or f.attname) for f in [*fields, *filled])
    marks = ", ".join(
        [*(f"%(r{n}_{i})s" for i in range(len(fields))), *(exprs[f.attname] for f in filled)]
    )
    pk = quote_name(meta.pk.column or "id")
    # Table and column names come from the models; values are parameters.
    cte = f"r{n} AS (INSERT INTO {meta.db_table} ({columns}) VALUES ({marks}) RETURNING {pk})"  # noqa: S608
    return fields, cte, f"(SELECT {pk} FROM r{n})"  # noqa: S608


def insert_ctes(
    instances: list[Model], computed: tuple[tuple[str, str], ...] = ()
) -> tuple[list[str], list[str], dict]:
    """CTEs `r0, r1, ...` that INSERT `instances` (named parameters `r0_0`, ...),
    and the scalar subqueries that pick their primary keys, in order: to put
    a row's INSERT into a bigger statement. Values go through the fields' own
    conversions and defaults, as Model.save would send them; a primary key the
    database generates is left out (and read back). `computed`: (field, SQL)
    for the first instance's columns that the bigger statement computes."""
    ctes: list[str] = []
    picks: list[str] = []
    params: dict[str, object] = {}
    db = _db()
    for n, instance in enumerate(instances):
        fields, cte, pick = _insert_shape(type(instance), n, computed if n == 0 else ())
        for i, f in enumerate(fields):
            params[f"r{n}_{i}"] = f.get_db_prep_save(f.pre_save(instance, True), db)
        ctes.append(cte)
        picks.append(pick)
    return ctes, picks, params


def inserted(instances: list[Model], keys) -> None:
    """Mark `instances` as saved with the keys their INSERT returned."""
    for instance, key in zip(instances, keys, strict=True):
        instance.pk = key
        instance._state.adding = False
        instance._state.db = DEFAULT_DB_ALIAS


_collecting = threading.local()


@contextmanager
def deferred() -> Iterator[list[Model]]:
    """Inside: `insert()` queues its rows on the yielded list instead of writing
    them, for the caller to write in a statement of its own (the meter writes a
    feature's result in the statement that records the charge). A deferred row
    doesn't exist until then: nothing inside may query it."""
    queued: list[Model] = []
    outer = getattr(_collecting, "rows", None)
    _collecting.rows = queued
    try:
        yield queued
    finally:
        _collecting.rows = outer


def insert(*instances: Model) -> None:
    """INSERT `instances` in one prepared statement; sets their pk and state
    (or queues them, inside `deferred()`)."""
    queue = getattr(_collecting, "rows", None)
    if queue is not None:
        queue.extend(instances)
        return
    ctes, picks, params = insert_ctes(list(instances))
    (keys,) = prepared(f"WITH {', '.join(ctes)} SELECT {', '.join(picks)}", params)
    inserted(list(instances), keys)
