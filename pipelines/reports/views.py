"""Create the reporting views over the loaded Polytomic tables.

The view definitions live in ``sql/`` as plain SQL: ``sql/common/<view>.sql`` holds text that
runs unchanged on DuckDB and Postgres, and ``sql/<dialect>/<view>.sql`` overrides it for one
dialect where the two differ.  ``{dataset}`` in the files is replaced by the dataset (schema)
name.

``view_statements`` returns, in order:

1. ``ALTER TABLE ... ADD COLUMN IF NOT EXISTS`` for every column the views read that dlt may
   not have created yet (dlt only creates a column once it has seen a non-null value, so e.g.
   ``version``, ``deleted_at`` or ``_tombstone`` can be missing on a young dataset).  The
   added columns are nullable and have the types dlt would give them, so later loads simply
   fill them.
2. ``DROP VIEW IF EXISTS`` for every view, dependents first.  No ``CASCADE``: a user's own
   view on top of ours makes the refresh fail loudly on Postgres rather than vanish silently.
3. ``CREATE VIEW`` for every view, dependencies first.

"Now" comes from one place, the ``report_clock`` view: ``current_timestamp`` by default, or a
fixed instant when ``now`` is given (reproducible reports and tests).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime
from importlib import resources

DIALECTS = ("duckdb", "postgres")

# Dependencies first: every view only reads tables and views listed before it.
VIEWS: tuple[str, ...] = (
    "report_clock",
    "execution_outcomes",
    "schema_outcomes",
    "sync_health",
    "daily_executions",
    "execution_durations",
    "schema_health",
    "incidents",
    "recovery",
    "flapping",
    "volume_anomalies",
    "stuck_executions",
)

_TEXT, _TS, _BIGINT, _BOOL, _JSON = "text", "timestamp with time zone", "bigint", "boolean", "json"

# Columns the views read that may be absent because every loaded value was null so far.
OPTIONAL_COLUMNS: dict[str, tuple[tuple[str, str], ...]] = {
    "bulk_syncs": (
        ("name", _TEXT),
        ("active", _BOOL),
        ("default_schedule", _JSON),
        ("created_at", _TS),
        ("last_seen_at", _TS),
        ("deleted_at", _TS),
    ),
    "bulk_sync_executions": (
        ("type", _TEXT),
        ("status_message", _TEXT),
        ("is_resync", _BOOL),
        ("is_test", _BOOL),
        ("record_count", _BIGINT),
        ("error_count", _BIGINT),
        ("warning_count", _BIGINT),
        ("created_at", _TS),
        ("started_at", _TS),
        ("completed_at", _TS),
        ("updated_at", _TS),
        ("version", _TEXT),
        ("deleted_at", _TS),  # set when the execution is confirmed deleted upstream
    ),
    "bulk_sync_executions__schemas": (
        ("output_name", _TEXT),
        ("status_message", _TEXT),
        ("record_count", _BIGINT),
        ("error_count", _BIGINT),
        ("warning_count", _BIGINT),
        ("started_at", _TS),
        ("completed_at", _TS),
        ("updated_at", _TS),
        ("version", _TEXT),
        ("_tombstone", _BOOL),  # the loader's delete marker (a dlt hard_delete column)
    ),
}

_JSON_TYPE = {"duckdb": "JSON", "postgres": "jsonb"}
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def _check(dialect: str, dataset: str) -> None:
    if dialect not in DIALECTS:
        raise ValueError(f"unsupported dialect {dialect!r}; expected one of {DIALECTS}")
    if not _IDENTIFIER.fullmatch(dataset):
        raise ValueError(f"dataset name {dataset!r} is not a plain SQL identifier")


def view_sql(name: str, dialect: str) -> str:
    """The raw text of one view, with the ``{dataset}`` placeholder still in it."""
    root = resources.files("pipelines.reports") / "sql"
    specific = root / dialect / f"{name}.sql"
    source = specific if specific.is_file() else root / "common" / f"{name}.sql"
    return source.read_text(encoding="utf-8")


def _now_expr(now: datetime | None) -> str:
    if now is None:
        return "cast(current_timestamp as timestamp with time zone)"
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    stamp = now.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f+00:00")
    return f"cast('{stamp}' as timestamp with time zone)"


def column_statements(dialect: str, dataset: str) -> list[str]:
    """``ALTER TABLE ... ADD COLUMN IF NOT EXISTS`` for the optional columns."""
    _check(dialect, dataset)
    statements = []
    for table, columns in OPTIONAL_COLUMNS.items():
        for column, kind in columns:
            sql_type = _JSON_TYPE[dialect] if kind == _JSON else kind
            statements.append(
                f"alter table {dataset}.{table} add column if not exists {column} {sql_type}"
            )
    return statements


def view_statements(dialect: str, dataset: str, *, now: datetime | None = None) -> list[str]:
    """Every statement that creates or refreshes the views, in the order to run them."""
    _check(dialect, dataset)
    drops = [f"drop view if exists {dataset}.{name}" for name in reversed(VIEWS)]
    creates = []
    for name in VIEWS:
        text = view_sql(name, dialect).replace("{dataset}", dataset)
        creates.append(text.replace("{now_expr}", _now_expr(now)).strip().rstrip(";"))
    return [*column_statements(dialect, dataset), *drops, *creates]


def create_views(
    execute: Callable[[str], object],
    dialect: str,
    dataset: str,
    *,
    now: datetime | None = None,
) -> None:
    """Run ``view_statements`` one by one through ``execute``.

    Run it inside one transaction where the connection allows, so that readers never see the
    views missing between the drop and the create.
    """
    for statement in view_statements(dialect, dataset, now=now):
        execute(statement)
