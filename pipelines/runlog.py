"""The run log: one row in `<dataset>.etl_runs` per `run` and `backfill`, failed ones included.

Stale data looks healthy unless something says when the loader last succeeded; `report` reads
this table for that (`pipelines/reports/runs.py`).

Columns (types on DuckDB and Postgres; other destinations get dlt's own type for each):

    run_id        text                      uuid4 of the run
    started_at    timestamp with time zone  before the run took its lock
    finished_at   timestamp with time zone  when it returned or raised
    mode          text                      run | backfill
    outcome       text                      ok | failed | interrupted
    exit_code     bigint                    the CLI's exit code (0, 1, 2, 5)
    syncs .. loads bigint                   the run's summary counts (`runner.Summary`): syncs,
                                            executions (and of those _new, _changed), schema_rows,
                                            skipped, requests, loads; null when not known
    failed_syncs  text                      comma list of sync ids, null when none
    seconds       double precision          the run's own duration
    error         text                      first line of the error, redacted, <= 500 chars
    version       text                      polytomic-etl version that ran
    shard         text                      `--shard`, null when none
    bulk_sync_ids text                      `--bulk-sync-id` list, null for every sync

No host name: the run log is readable by anyone who can read the dataset, and machine names
say more about a network than a report needs.

Writing (`logged_run`, which `run`, `backfill` and `demo` call instead of `runner.run`). The
row goes in when `runner.run` is done, still under its lock, through the destination's own
SQL client: one INSERT with bind parameters; when that fails (no table yet, or a column a
later version added), `CREATE SCHEMA/TABLE IF NOT EXISTS`, the missing columns, and the
INSERT again, in one transaction. Not through dlt's `pipeline.run`: after a failed load that
would load the pending packages and nothing else. dlt's schema does not know the table, so schema
sync, `backfill --full` (which deletes execution rows only) and the views refresh never touch
it; a dataset dropped by hand loses it with everything else.

- A run refused because another run holds the lock (exit 3) never ran: nothing is written.
- Every other outcome is written, when the warehouse can be reached: a run that failed on its
  API key still says so in the report (on DuckDB the file is created if it was not there).
- Writing never changes the exit code and never hides the run's error. When it fails, a run
  that succeeded logs a warning (the report would otherwise miss it); a run that failed logs
  at INFO only, since its own error already went out and is most likely the reason (the
  warehouse is down, locked or misconfigured). A second Ctrl-C (KeyboardInterrupt) ends the
  process at once and writes nothing.
- The row goes in while the run still holds its lock (`runner.run`'s `on_finish`), so on
  DuckDB no other run can have the file open at that moment.
- Redaction (`redact_error`): URL userinfo passwords (`scheme://user:***@`), query-string
  values of keys that look secret, `Bearer`/`Basic` credentials, `password=...`-style pairs,
  and the configured api_key, deployment_key and destination password wherever they appear.
  Then one line, at most `MAX_ERROR` characters.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from pipelines.errors import config_error, configured_secrets
from pipelines.output import (
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_LOCKED,
    EXIT_OK,
    UsageError,
    one_line,
)
from pipelines.runner import Summary, run
from pipelines.target import Target
from sources.polytomic.errors import redact

log = logging.getLogger("polytomic_etl")

TABLE = "etl_runs"
MAX_ERROR = 500
COUNTS = (
    "syncs",
    "executions",
    "executions_new",
    "executions_changed",
    "schema_rows",
    "skipped",
    "requests",
    "loads",
)

# (column, dlt data type); timestamps are timezone-aware
COLUMNS: tuple[tuple[str, str], ...] = (
    ("run_id", "text"),
    ("started_at", "timestamp"),
    ("finished_at", "timestamp"),
    ("mode", "text"),
    ("outcome", "text"),
    ("exit_code", "bigint"),
    *((name, "bigint") for name in COUNTS),
    ("failed_syncs", "text"),
    ("seconds", "double"),
    ("error", "text"),
    ("version", "text"),
    ("shard", "text"),
    ("bulk_sync_ids", "text"),
)
_SQL_TYPES = {
    "text": "text",
    "timestamp": "timestamp with time zone",
    "bigint": "bigint",
    "double": "double precision",
}
_STANDARD = ("duckdb", "motherduck", "postgres")


def redact_error(text: str, secrets: Iterable[str | None] = ()) -> str:
    """One line of ``text`` without credentials, at most ``MAX_ERROR`` characters."""
    return redact(text, secrets, limit=MAX_ERROR)


def tool_version() -> str:
    try:
        return version("polytomic-etl")
    except PackageNotFoundError:
        return "unknown"


def outcome_of(exit_code: int) -> str:
    if exit_code == EXIT_OK:
        return "ok"
    return "interrupted" if exit_code == EXIT_INTERRUPTED else "failed"


def should_record(error: BaseException | None) -> bool:
    """Not for a run that never started: another run held the lock (exit 3)."""
    return error is None or getattr(error, "exit_code", None) != EXIT_LOCKED


def make_row(
    mode: str,
    started: datetime,
    selection: dict[str, Any],
    summary: Any = None,
    error: BaseException | None = None,
) -> dict[str, Any]:
    """The row for one run (``error`` not yet redacted: ``record`` does it)."""
    finished = datetime.now(UTC)
    if summary is None and error is not None:
        summary = getattr(error, "summary", None)
    shown = None if error is None else config_error(error) or error  # as the CLI shows it
    code = EXIT_OK if shown is None else int(getattr(shown, "exit_code", EXIT_FAILED))
    counts = {name: getattr(summary, name, None) for name in COUNTS}
    failed = list(getattr(summary, "failed_syncs", None) or [])
    seconds = getattr(summary, "seconds", None)
    ids = sorted(selection.get("bulk_sync_ids") or [])
    return {
        "run_id": str(uuid.uuid4()),
        "started_at": started,
        "finished_at": finished,
        "mode": mode,
        "outcome": outcome_of(code),
        "exit_code": code,
        **counts,
        "failed_syncs": ",".join(failed) or None,
        "seconds": float(seconds) if seconds else (finished - started).total_seconds(),
        "error": None if shown is None else one_line(shown),
        "version": tool_version(),
        "shard": selection.get("shard") or None,
        "bulk_sync_ids": ",".join(ids) or None,
    }


def logged_run(target: Target, source_args: dict[str, Any], mode: str, **hooks: Any) -> Summary:
    """``runner.run``, with its row in ``etl_runs``: what ``run``, ``backfill`` and ``demo`` call.

    The row is written while the run still holds its lock (``run``'s ``on_finish``), so the
    next run cannot open the warehouse in between. Writing never changes the outcome: the
    summary is returned, the error re-raised.
    """
    started = datetime.now(UTC)
    secrets = [v for k, v in source_args.items() if k.endswith("_key") and isinstance(v, str)]
    written: list[bool] = []

    def on_finish(pipeline: Any, summary: Summary, error: Exception | None) -> None:
        if error is not None and not should_record(error):
            return
        row = make_row(mode, started, source_args, summary, error)
        written.append(record(lambda: pipeline, row, error is not None, secrets))

    try:
        return run(target, source_args, mode=mode, on_finish=on_finish, **hooks)
    except Exception as exc:
        # Failed before the lock was taken or the pipeline built (misconfigured, unreachable):
        # the warehouse is most likely out of reach too, but try, at INFO.
        if not written and should_record(exc) and not isinstance(exc, UsageError):
            record(target.pipeline, make_row(mode, started, source_args, error=exc), True, secrets)
        raise


def record(
    pipeline_of: Any, row: dict[str, Any], failed: bool, secrets: Iterable[str] = ()
) -> bool:
    """Insert ``row`` into the target's ``etl_runs``; never raises. ``pipeline_of()`` gives
    the dlt pipeline (``Target.pipeline``). Returns whether the row was written."""
    try:
        pipeline = pipeline_of()
        sql = pipeline.sql_client()
        if row.get("error"):
            row = {
                **row,
                "error": redact_error(row["error"], [*_secrets(sql), *secrets]),
            }
        name = pipeline.destination.destination_name if pipeline.destination else ""
        with sql:
            _write(sql, row, name)
        return True
    except Exception as exc:
        reason = redact_error(one_line(exc), _secrets(None))
        level = logging.INFO if failed else logging.WARNING
        log.log(level, "could not record this run in %s: %s", TABLE, reason)
        return False


def _secrets(sql: Any) -> list[str]:
    """What the CLI blanks in every error line, and the destination's own password."""
    password = getattr(getattr(sql, "credentials", None), "password", None)
    return [*configured_secrets(), *([password] if isinstance(password, str) else [])]


def _column_types(sql: Any, destination: str) -> dict[str, str]:
    if destination in _STANDARD:
        return {name: _SQL_TYPES[kind] for name, kind in COLUMNS}
    mapper = sql.capabilities.get_type_mapper()
    table: Any = {"name": TABLE}
    out = {}
    for name, kind in COLUMNS:
        column: Any = {"name": name, "data_type": kind, "nullable": True}
        if kind == "timestamp":
            column["timezone"] = True
        out[name] = mapper.to_destination_type(column, table)
    return out


def _write(sql: Any, row: dict[str, Any], destination: str) -> None:
    """The INSERT alone first (the table is there after the first run); when it fails, the
    table (or a column) is created in a transaction and the INSERT repeated."""
    names = [name for name, _ in COLUMNS]
    insert = (
        f"INSERT INTO {sql.make_qualified_table_name(TABLE)} "
        f"({', '.join(sql.escape_column_name(n) for n in names)}) "
        f"VALUES ({', '.join(['%s'] * len(names))})"
    )
    values = [row[n] for n in names]
    try:
        sql.execute_sql(insert, *values)
        return
    except Exception as exc:
        log.debug("creating %s: %s", TABLE, one_line(exc))
    types = _column_types(sql, destination)
    for attempt in (1, 2):  # a concurrent shard may create the schema or table first
        try:
            with sql.begin_transaction():
                _ensure_table(sql, types, destination)
                sql.execute_sql(insert, *values)
            return
        except Exception:
            if attempt == 2:
                raise


def _ensure_table(sql: Any, types: dict[str, str], destination: str) -> None:
    quote, table = sql.escape_column_name, sql.make_qualified_table_name(TABLE)
    if destination in _STANDARD:
        sql.execute_sql(f"CREATE SCHEMA IF NOT EXISTS {sql.fully_qualified_dataset_name()}")
    elif not sql.has_dataset():
        sql.create_dataset()
    columns = ", ".join(f"{quote(name)} {kind}" for name, kind in types.items())
    sql.execute_sql(f"CREATE TABLE IF NOT EXISTS {table} ({columns})")
    if destination not in _STANDARD:
        return
    present = {
        str(r[0])
        for r in sql.execute_sql(
            "SELECT column_name FROM information_schema.columns "
            "WHERE table_schema = %s AND table_name = %s",
            sql.dataset_name,
            TABLE,
        )
        or ()
    }
    for name, kind in types.items():
        if name not in present:  # a table an older version created
            sql.execute_sql(f"ALTER TABLE {table} ADD COLUMN {quote(name)} {kind}")
