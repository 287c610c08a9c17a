"""Create or refresh the reporting views: one transaction, serialised, versioned.

``create_views`` runs the whole refresh in ONE transaction, so a reader sees either the old
views or the new ones, never a view missing or half replaced:

1. On Postgres, ``pg_advisory_xact_lock(hashtext('polytomic_etl:' || dataset))`` first: two
   refreshes of one dataset take turns (DuckDB allows one writing process; in-process
   refreshes take turns on a lock of this module).
2. Nothing to do when the views, their columns and the recorded fingerprint are current:
   most refreshes after a load end here and take no lock a reader could wait on.
3. Missing optional columns are added (``views.column_statements``), only those.
4. ``create or replace view`` for every view, so a view keeps its identity and a user's view
   on top of ours keeps working.  On Postgres, dependents first when every view exists (see
   ``_replace``).  Postgres cannot replace a view whose columns changed (an upgrade): then
   all the views are dropped and created, still inside the transaction.  No ``CASCADE``: a
   user's view that depends on one of them makes the refresh fail loudly, not vanish.
5. The view set's version (``views.views_version``) is written to ``_polytomic_etl_views``
   in the same transaction; ``installed_version`` reads it back for the report.

The thresholds (``settings.ReportSettings``) are part of the definitions: unless the caller
passes them, they are read from the ``[reports]`` config section (``settings.load_settings``)
before anything is touched, so a bad value fails the refresh with one clear line, and a
changed value changes the fingerprint, so the next refresh writes it.

On Postgres the refresh waits at most ``LOCK_TIMEOUT`` for any one lock after the advisory
lock.  A reader holding a view the refresh needs, while waiting for one the refresh already
replaced, would otherwise deadlock with it, and Postgres might cancel the reader; instead the
refresh rolls back and tries again, for up to ``RETRY_SECONDS``.
"""

from __future__ import annotations

import hashlib
import threading
import time
from datetime import datetime
from typing import Any

from pipelines.reports.db import Db
from pipelines.reports.settings import ReportSettings, load_settings
from pipelines.reports.views import (
    OPTIONAL_COLUMNS,
    VIEWS,
    check,
    column_statement,
    view_statements,
    views_version,
)

VERSION_TABLE = "_polytomic_etl_views"
TABLES = tuple(OPTIONAL_COLUMNS)
LOCK_TIMEOUT = "200ms"
RETRY_SECONDS = 120.0
_RETRY_PGCODES = ("55P03", "40P01")  # lock_not_available, deadlock_detected
_DUCKDB = threading.Lock()


def create_views(
    connection: Any,
    dialect: str,
    dataset: str,
    *,
    now: datetime | None = None,
    settings: ReportSettings | None = None,
) -> bool:
    """Create or refresh the views of ``dataset`` through a DB-API ``connection``.

    ``settings`` default to the ``[reports]`` config section (a ``SettingsError`` when a
    value there is bad).  Returns whether anything changed; False also when none of the
    tables exists yet.
    """
    check(dialect, dataset)
    settings = load_settings() if settings is None else settings
    db = Db(connection, dialect)
    deadline, delay = time.monotonic() + RETRY_SECONDS, 0.05
    while True:
        try:
            if dialect == "duckdb":
                with _DUCKDB, db.transaction():
                    return _refresh(db, dataset, now, settings)
            with db.transaction():
                db.execute(
                    "select pg_advisory_xact_lock(hashtext('polytomic_etl:' || %s))", dataset
                )
                db.execute(f"set local lock_timeout = '{LOCK_TIMEOUT}'")
                return _refresh(db, dataset, now, settings)
        except Exception as exc:
            if not _retryable(exc) or time.monotonic() > deadline:
                raise
        time.sleep(delay)
        delay = min(delay * 2, 1.0)


def installed_version(db: Db, dataset: str) -> str | None:
    """The version recorded with the views, or None when there is none.  Only reads."""
    if VERSION_TABLE not in _relations(db, dataset):
        return None
    rows = db.rows(f"select version from {dataset}.{VERSION_TABLE} order by created_at desc")
    return str(rows[0][0]) if rows else None


def missing_views(db: Db, dataset: str) -> list[str]:
    """The views that do not exist in ``dataset``.  Only reads."""
    present = _relations(db, dataset)
    return [name for name in VIEWS if name not in present]


def _refresh(db: Db, dataset: str, now: datetime | None, settings: ReportSettings) -> bool:
    columns = _columns(db, dataset)
    if not any(table in columns for table in TABLES):
        return False  # nothing loaded yet
    missing = [table for table in TABLES if table not in columns]
    statements = view_statements(db.dialect, dataset, now=now, missing=missing, settings=settings)
    fingerprint = hashlib.sha256("\n;\n".join(statements).encode()).hexdigest()
    alters = [
        column_statement(db.dialect, dataset, table, column)
        for table in TABLES
        if table in columns
        for column, _ in OPTIONAL_COLUMNS[table]
        if column not in columns[table]
    ]
    views = {name for name in VIEWS if name in columns}
    if (
        not alters
        and len(views) == len(VIEWS)
        and _fingerprint(db, dataset, columns) == fingerprint
    ):
        return False
    for statement in alters:
        db.execute(statement)
    _replace(db, dataset, statements, views)
    db.execute(
        f"create table if not exists {dataset}.{VERSION_TABLE} "
        "(version text, fingerprint text, created_at timestamp with time zone)"
    )
    db.execute(f"delete from {dataset}.{VERSION_TABLE}")
    db.execute(
        f"insert into {dataset}.{VERSION_TABLE} values (%s, %s, current_timestamp)",
        views_version(db.dialect),
        fingerprint,
    )
    return True


def _replace(db: Db, dataset: str, statements: list[str], present: set[str]) -> None:
    views = list(zip(VIEWS, statements, strict=True))
    if db.dialect == "duckdb":
        for _, statement in views:
            db.execute(statement)
        return
    # Dependents first when they all exist, so that a reader (who locks the view it reads
    # before the views under it) and the refresh never wait for each other in a circle;
    # dependencies first otherwise, because a view needs what it reads.
    order = views[::-1] if len(present) == len(VIEWS) else views
    db.execute("savepoint polytomic_etl_views")
    try:
        for _, statement in order:
            db.execute(statement)
    except Exception as exc:
        if _retryable(exc):
            raise
        # columns changed (another version): drop and create them, still in this
        # transaction; no CASCADE, so a user's view on top of ours fails the refresh loudly
        db.execute("rollback to savepoint polytomic_etl_views")
        for name in reversed(VIEWS):
            if name in present:
                db.execute(f"drop view {dataset}.{name}")
        for _, statement in views:
            db.execute(statement)
    else:
        db.execute("release savepoint polytomic_etl_views")


def _columns(db: Db, dataset: str) -> dict[str, set[str]]:
    """Every table and view of the dataset, with its columns."""
    out: dict[str, set[str]] = {}
    for table, column in db.rows(
        "select table_name, column_name from information_schema.columns where table_schema = %s",
        dataset,
    ):
        out.setdefault(str(table), set()).add(str(column))
    return out


def _relations(db: Db, dataset: str) -> set[str]:
    rows = db.rows(
        "select table_name from information_schema.tables where table_schema = %s", dataset
    )
    return {str(r[0]) for r in rows}


def _fingerprint(db: Db, dataset: str, columns: dict[str, set[str]]) -> str | None:
    if "fingerprint" not in columns.get(VERSION_TABLE, set()):
        return None
    rows = db.rows(f"select fingerprint from {dataset}.{VERSION_TABLE}")
    return str(rows[0][0]) if len(rows) == 1 else None


def _retryable(exc: BaseException) -> bool:
    if getattr(exc, "pgcode", None) in _RETRY_PGCODES:
        return True
    # DuckDB: another process (MotherDuck) changed the same catalog entries first
    return type(exc).__name__ == "TransactionException" and "conflict" in str(exc).lower()
