"""Backends for the reporting tests: the same history loaded into DuckDB and PostgreSQL.

PostgreSQL is expected at 127.0.0.1:5432 (trust auth, user ``postgres``, database ``test``;
the usual ``PGHOST`` / ``PGPORT`` / ``PGUSER`` / ``PGDATABASE`` override these).  When it does
not answer, the Postgres tests skip with the reason, except under ``CI=true``, where they fail.
Each test session works in its own uniquely named schema and drops it afterwards.  Sessions
run in UTC; ``Backend.time_zone`` switches one for a block (the views must not care).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import duckdb
import pytest

from pipelines.reports.db import Db
from pipelines.reports.refresh import create_views
from tests.reports.history import History, build

PG_DSN = {
    "host": os.environ.get("PGHOST", "127.0.0.1"),
    "port": int(os.environ.get("PGPORT", "5432")),
    "user": os.environ.get("PGUSER", "postgres"),
    "dbname": os.environ.get("PGDATABASE", "test"),
}

TABLES = {
    "bulk_syncs": """
        id text, name text, active boolean, mode text, source_connection_id text,
        destination_connection_id text, organization_id text, default_schedule {json},
        additional_schedules {json}, destination_configuration {json},
        source_configuration {json}, policies {json}, created_by {json}, updated_by {json},
        concurrency_limit bigint, created_at timestamptz, updated_at timestamptz,
        last_seen_at timestamptz, deleted_at timestamptz, _dlt_load_id text, _dlt_id text""",
    "bulk_sync_executions": """
        id text, bulk_sync_id text, type text, status text, status_message text,
        fetch_mode text, output_disposition text, is_partial boolean, is_resync boolean,
        is_test boolean, record_count bigint, error_count bigint, warning_count bigint,
        created_at timestamptz, started_at timestamptz, completed_at timestamptz,
        updated_at timestamptz, version text, deleted_at timestamptz, _dlt_load_id text,
        _dlt_id text""",
    "bulk_sync_executions__schemas": """
        execution_id text, bulk_sync_id text, "schema" text, output_name text, status text,
        status_message text, record_count bigint, error_count bigint, warning_count bigint,
        created_at timestamptz, started_at timestamptz, completed_at timestamptz,
        updated_at timestamptz, version text, _dlt_parent_id text, _dlt_list_idx bigint,
        _dlt_id text, _dlt_root_id text, _tombstone boolean""",
}


@dataclass
class Backend:
    dialect: str
    connection: Any  # the session's own DB-API connection (autocommit)
    connect: Callable[[], Any]  # another connection to the same database
    insert: Callable[[str, list[dict[str, Any]]], None]

    def execute(self, sql: str) -> None:
        Db(self.connection, self.dialect).execute(sql)

    def query(self, sql: str, *args: Any) -> list[dict[str, Any]]:
        """Rows as dicts; ``%s`` marks a bind parameter on both databases."""
        return Db(self.connection, self.dialect).dicts(sql, *args)

    def new_dataset(self, tables: dict[str, str] | None = None) -> str:
        dataset = f"reports_{uuid.uuid4().hex[:10]}"
        self.execute(f"create schema {dataset}")
        json_type = "JSON" if self.dialect == "duckdb" else "jsonb"
        for table, columns in (TABLES if tables is None else tables).items():
            self.execute(f"create table {dataset}.{table} ({columns.format(json=json_type)})")
        return dataset

    def drop_dataset(self, dataset: str) -> None:
        self.execute(f"drop schema if exists {dataset} cascade")

    def load(self, history: History) -> str:
        """A new dataset holding ``history``, with the views pinned to ``history.now``."""
        dataset = self.new_dataset()
        for table, rows in (
            ("bulk_syncs", history.syncs),
            ("bulk_sync_executions", history.executions),
            ("bulk_sync_executions__schemas", history.schemas),
        ):
            if rows:
                self.insert(f"{dataset}.{table}", rows)
        create_views(self.connection, self.dialect, dataset, now=history.now)
        return dataset

    @contextmanager
    def time_zone(self, zone: str) -> Iterator[None]:
        """Run the block in a session set to ``zone``; back to UTC afterwards."""
        self.execute(f"set TimeZone = '{zone}'")
        try:
            yield
        finally:
            self.execute("set TimeZone = 'UTC'")


def _duckdb_backend() -> Iterator[Backend]:
    con = duckdb.connect(":memory:")
    con.execute("set TimeZone = 'UTC'")

    def connect() -> Any:
        other = con.cursor()  # a DuckDB cursor is another connection to the same database
        other.execute("set TimeZone = 'UTC'")
        return other

    def insert(table: str, rows: list[dict[str, Any]]) -> None:
        cols = list(rows[0])
        sql = f"insert into {table} ({', '.join(_q(c) for c in cols)}) values "
        con.executemany(sql + f"({', '.join('?' for _ in cols)})", [list(r.values()) for r in rows])

    yield Backend("duckdb", con, connect, insert)
    con.close()


def _postgres_backend() -> Iterator[Backend]:
    import psycopg2

    try:
        con = psycopg2.connect(**PG_DSN, connect_timeout=3)
    except psycopg2.OperationalError as exc:
        first_line = str(exc).strip().splitlines()[0]
        reason = f"PostgreSQL at {PG_DSN['host']}:{PG_DSN['port']} does not answer: {first_line}"
        if os.environ.get("CI") == "true":
            pytest.fail(f"{reason} (CI=true: Postgres tests must run)")
        pytest.skip(reason)

    def connect() -> Any:
        other = psycopg2.connect(**PG_DSN, connect_timeout=3)
        other.autocommit = True
        with other.cursor() as setup:
            setup.execute("set TimeZone = 'UTC'")
        opened.append(other)
        return other

    opened: list[Any] = []
    con.autocommit = True
    cur = con.cursor()
    cur.execute("set TimeZone = 'UTC'")

    def insert(table: str, rows: list[dict[str, Any]]) -> None:
        cols = list(rows[0])
        sql = f"insert into {table} ({', '.join(_q(c) for c in cols)}) values "
        cur.executemany(
            sql + f"({', '.join('%s' for _ in cols)})", [list(r.values()) for r in rows]
        )

    yield Backend("postgres", con, connect, insert)
    for other in opened:
        other.close()
    con.close()


def _q(column: str) -> str:
    return f'"{column}"'


@pytest.fixture(
    scope="session", params=["duckdb", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def backend(request: pytest.FixtureRequest) -> Iterator[Backend]:
    factory = _duckdb_backend if request.param == "duckdb" else _postgres_backend
    yield from factory()


@pytest.fixture(scope="session")
def postgres() -> Iterator[Backend]:
    """The PostgreSQL backend alone, for what only Postgres has."""
    yield from _postgres_backend()


@dataclass
class Warehouse:
    backend: Backend
    dataset: str

    @property
    def dialect(self) -> str:
        return self.backend.dialect

    def query(self, sql: str) -> list[dict[str, Any]]:
        return self.backend.query(sql.replace("{ds}", self.dataset))

    def view(self, name: str, where: str = "true") -> list[dict[str, Any]]:
        return self.query(f"select * from {{ds}}.{name} where {where}")


@pytest.fixture(scope="session")
def warehouse(backend: Backend) -> Iterator[Warehouse]:
    """The known history (tests/reports/history.py) with the views pinned to NOW."""
    dataset = backend.load(build())
    try:
        yield Warehouse(backend, dataset)
    finally:
        backend.drop_dataset(dataset)


@pytest.fixture
def load(backend: Backend) -> Iterator[Callable[[History], Warehouse]]:
    """Loads a test's own hand-made history into a fresh dataset (dropped afterwards)."""
    datasets: list[str] = []

    def _load(history: History) -> Warehouse:
        datasets.append(backend.load(history))
        return Warehouse(backend, datasets[-1])

    yield _load
    for dataset in datasets:
        backend.drop_dataset(dataset)
