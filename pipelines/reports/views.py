"""The reporting views' SQL: the statements that create them, and the view set's version.

The view definitions live in ``sql/`` as plain SQL: ``sql/common/<view>.sql`` holds text that
runs unchanged on DuckDB and Postgres, and ``sql/<dialect>/<view>.sql`` overrides it for one
dialect where the two differ.  ``{dataset}`` in the files is replaced by the dataset (schema)
name.  Each file is one ``create or replace view``; ``refresh.create_views`` runs them.

- ``column_statements``: ``ALTER TABLE ... ADD COLUMN IF NOT EXISTS`` for every column the
  views read that dlt may not have created yet (dlt only creates a column once it has seen a
  non-null value, so e.g. ``version``, ``deleted_at`` or ``_tombstone`` can be missing on a
  young dataset).  The added columns are nullable and have the types dlt would give them, so
  later loads simply fill them.
- ``view_statements``: one ``create or replace view`` per view, dependencies first.  A table
  dlt has not created yet (no execution loaded so far) is read as an empty stand-in with the
  same columns, so a new sync already shows as ``never_run``; the next refresh after the
  table appears reads the table.
- ``views_version``: a hash of the SQL text, recorded in the warehouse with the views, so
  that a report can tell views of another version from its own.

"Now" comes from one place, the ``report_clock`` view: ``current_timestamp`` by default, or a
fixed instant when ``now`` is given (reproducible reports and tests).  The thresholds come from
one place too, the ``report_settings`` view: ``settings.ReportSettings`` (the ``[reports]``
config section), written into it as plain numbers.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Collection
from datetime import UTC, datetime
from importlib import resources

from pipelines.reports.settings import ReportSettings

DIALECTS = ("duckdb", "postgres")

# Dependencies first: every view only reads tables and views listed before it.
VIEWS: tuple[str, ...] = (
    "report_clock",
    "report_settings",
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

# The columns dlt always creates with a table: with OPTIONAL_COLUMNS, what a stand-in has.
REQUIRED_COLUMNS: dict[str, tuple[tuple[str, str], ...]] = {
    "bulk_syncs": (("id", _TEXT),),
    "bulk_sync_executions": (("id", _TEXT), ("bulk_sync_id", _TEXT), ("status", _TEXT)),
    "bulk_sync_executions__schemas": (
        ("execution_id", _TEXT),
        ("bulk_sync_id", _TEXT),
        ("schema", _TEXT),
        ("status", _TEXT),
    ),
}

_JSON_TYPE = {"duckdb": "JSON", "postgres": "jsonb"}
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# A table the views read, with its alias when it has one (the longest name first).
_TABLE_REF = re.compile(
    r"\{dataset\}\.(bulk_sync_executions__schemas|bulk_sync_executions|bulk_syncs)\b"
    r"(?:\s+as\s+(\w+))?"
)


def check(dialect: str, dataset: str) -> None:
    """Refuse an unknown dialect, and a dataset name that is not a plain SQL identifier."""
    if dialect not in DIALECTS:
        raise ValueError(f"unsupported dialect {dialect!r}; expected one of {DIALECTS}")
    check_dataset(dataset)


def check_dataset(dataset: str) -> None:
    """The dataset goes into SQL text: only a plain SQL identifier may."""
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
    check(dialect, dataset)
    return [
        column_statement(dialect, dataset, table, column)
        for table, columns in OPTIONAL_COLUMNS.items()
        for column, _ in columns
    ]


def column_statement(dialect: str, dataset: str, table: str, column: str) -> str:
    """``ALTER TABLE ... ADD COLUMN IF NOT EXISTS`` for one of the optional columns."""
    sql_type = _sql_type(dict(OPTIONAL_COLUMNS[table])[column], dialect)
    return f"alter table {dataset}.{table} add column if not exists {column} {sql_type}"


def _sql_type(kind: str, dialect: str) -> str:
    return _JSON_TYPE[dialect] if kind == _JSON else kind


def _stand_in(table: str, dialect: str) -> str:
    """An empty relation with the columns the views read from ``table``."""
    columns = (*REQUIRED_COLUMNS[table], *OPTIONAL_COLUMNS[table])
    cells = ", ".join(f'cast(null as {_sql_type(k, dialect)}) as "{c}"' for c, k in columns)
    return f"(select {cells} where false)"


def view_statements(
    dialect: str,
    dataset: str,
    *,
    now: datetime | None = None,
    missing: Collection[str] = (),
    settings: ReportSettings | None = None,
) -> list[str]:
    """One ``create or replace view`` per view, in ``VIEWS`` order (dependencies first).

    ``missing`` names tables dlt has not created yet: the views read empty stand-ins.
    ``settings`` go into ``report_settings`` (the defaults when None).
    """
    check(dialect, dataset)
    values = (settings or ReportSettings()).sql_values()

    def table_ref(match: re.Match[str]) -> str:
        table, alias = match.group(1), match.group(2)
        if table not in missing:
            return match.group(0)
        return f"{_stand_in(table, dialect)} as {alias or table}"

    creates = []
    for name in VIEWS:
        text = _TABLE_REF.sub(table_ref, view_sql(name, dialect)).replace("{dataset}", dataset)
        text = text.replace("{now_expr}", _now_expr(now))
        for key, literal in values.items():
            text = text.replace(f"{{{key}}}", literal)
        creates.append(text.strip().rstrip(";"))
    return creates


def views_version(dialect: str) -> str:
    """A hash of the view set's SQL text for ``dialect`` (the clock, the settings' values and
    the dataset aside: a changed setting is a refresh, not another version)."""
    digest = hashlib.sha256(dialect.encode())
    for name in VIEWS:
        digest.update(f"\0{name}\0{view_sql(name, dialect)}".encode())
    digest.update(repr((REQUIRED_COLUMNS, OPTIONAL_COLUMNS)).encode())
    return digest.hexdigest()[:16]
