"""`usage.rows.prepared(commit=True)`: the statement that ends a transaction
commits in the same round trip — alone in autocommit when nothing else was
written, behind the earlier writes in pipeline mode otherwise — and a failure
commits nothing. Checked from a second connection, on real PostgreSQL."""

from __future__ import annotations

import psycopg
import pytest
from django.db import IntegrityError, connection, transaction
from psycopg.pq import TransactionStatus

from usage.rows import prepared

pytestmark = pytest.mark.django_db(transaction=True)

INSERT = "INSERT INTO tg_rows_probe (v) VALUES (%(v)s) RETURNING v"


@pytest.fixture
def probe_table():
    with connection.cursor() as cursor:
        cursor.execute("CREATE TABLE tg_rows_probe (v int PRIMARY KEY)")
    yield
    with connection.cursor() as cursor:
        cursor.execute("DROP TABLE tg_rows_probe")


def committed_values() -> list[int]:
    """What another session sees: only committed rows."""
    params = connection.get_connection_params()
    params.pop("cursor_factory", None)
    params.pop("context", None)
    with psycopg.connect(**params, autocommit=True) as other:
        return [v for (v,) in other.execute("SELECT v FROM tg_rows_probe ORDER BY v")]


def status() -> TransactionStatus:
    return connection.connection.info.transaction_status


def test_a_statement_alone_in_its_block_commits_with_itself(probe_table):
    with transaction.atomic():
        assert prepared(INSERT, {"v": 1}, commit=True) == [(1,)]
        assert status() == TransactionStatus.IDLE  # committed before the block ends
        assert committed_values() == [1]
    assert committed_values() == [1]
    # The connection is Django's again: the next block is a transaction.
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("INSERT INTO tg_rows_probe (v) VALUES (2)")
        assert status() == TransactionStatus.INTRANS
        transaction.set_rollback(True)
    assert committed_values() == [1]


def test_earlier_writes_of_the_block_commit_with_the_statement(probe_table):
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("INSERT INTO tg_rows_probe (v) VALUES (1)")
        assert committed_values() == []
        prepared(INSERT, {"v": 2}, commit=True)
        assert status() == TransactionStatus.IDLE
    assert committed_values() == [1, 2]


@pytest.mark.parametrize("written_before", [False, True])
def test_a_failing_statement_commits_nothing(probe_table, written_before):
    with connection.cursor() as cursor:
        cursor.execute("INSERT INTO tg_rows_probe (v) VALUES (7)")
    with pytest.raises(IntegrityError), transaction.atomic():
        if written_before:
            with connection.cursor() as cursor:
                cursor.execute("INSERT INTO tg_rows_probe (v) VALUES (1)")
        prepared(INSERT, {"v": 7}, commit=True)  # duplicate key
    assert committed_values() == [7]
    # Nothing left half-done: the connection works, in Django's own mode.
    assert connection.connection.autocommit is True
    prepared(INSERT, {"v": 8})
    assert committed_values() == [7, 8]


def test_commit_needs_the_outermost_block(probe_table):
    with transaction.atomic(), transaction.atomic(), pytest.raises(RuntimeError):
        prepared(INSERT, {"v": 1}, commit=True)
    assert committed_values() == []
