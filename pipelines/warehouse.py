"""What the warehouse already holds, for the source's rolling verification; deletions.

Reads go through dlt's SQL client of the run's own pipeline, so they work on every
destination. The connection is opened on first use and closed by `close()`, before dlt's
load step opens the warehouse for writing.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import dlt

EXECUTIONS = "bulk_sync_executions"
_CHUNK = 500


class LoadedRows:
    """`sources.polytomic.verify.Warehouse` over a dlt pipeline's destination."""

    def __init__(self, pipeline: dlt.Pipeline) -> None:
        self.pipeline = pipeline
        self._sql: Any = None
        self._table: str | None = None
        self._exists: bool | None = None

    def _client(self) -> Any:
        if self._sql is None:
            self._sql = self.pipeline.sql_client()
            self._sql.open_connection()
            self._table = self._sql.make_qualified_table_name(EXECUTIONS)
        return self._sql

    def _ready(self) -> bool:
        if self._exists is None:
            sql = self._client()
            rows = sql.execute_sql(
                "SELECT column_name FROM information_schema.columns "
                "WHERE table_schema = %s AND table_name = %s",
                sql.dataset_name,
                EXECUTIONS,
            )
            self._exists = "deleted_at" in {r[0] for r in rows or ()}
        return self._exists

    def loaded(self, sync_id: str, ids: list[str]) -> dict[str, datetime]:
        if not ids or not self._ready():
            return {}
        out: dict[str, datetime] = {}
        for start in range(0, len(ids), _CHUNK):
            chunk = ids[start : start + _CHUNK]
            marks = ", ".join(["%s"] * len(chunk))
            rows = self._client().execute_sql(
                f"SELECT id, updated_at FROM {self._table} WHERE bulk_sync_id = %s "
                f"AND deleted_at IS NULL AND id IN ({marks})",
                sync_id,
                *chunk,
            )
            out.update({r[0]: _utc(r[1]) for r in rows or () if r[1] is not None})
        return out

    def started_between(
        self, sync_id: str, low: datetime | None, high: datetime | None
    ) -> dict[str, datetime]:
        if not self._ready():
            return {}
        start = "coalesce(started_at, created_at)"
        where, args = ["bulk_sync_id = %s", "deleted_at IS NULL"], [sync_id]
        if low is not None:
            where.append(f"{start} > %s")
            args.append(low)
        if high is not None:
            where.append(f"{start} <= %s")
            args.append(high)
        rows = self._client().execute_sql(
            f"SELECT id, {start} FROM {self._table} WHERE {' AND '.join(where)}", *args
        )
        return {r[0]: _utc(r[1]) for r in rows or () if r[1] is not None}

    def close(self) -> None:
        if self._sql is not None:
            self._sql.close_connection()
            self._sql = None
        self._exists = None


def mark_deleted(pipeline: dlt.Pipeline, ids: Iterable[str]) -> int:
    """Set `deleted_at` on executions confirmed deleted upstream; their rows stay."""
    wanted = sorted(set(ids))
    if not wanted:
        return 0
    now = datetime.now(UTC)
    with pipeline.sql_client() as sql:
        table = sql.make_qualified_table_name(EXECUTIONS)
        for start in range(0, len(wanted), _CHUNK):
            chunk = wanted[start : start + _CHUNK]
            marks = ", ".join(["%s"] * len(chunk))
            sql.execute_sql(
                f"UPDATE {table} SET deleted_at = %s WHERE deleted_at IS NULL AND id IN ({marks})",
                now,
                *chunk,
            )
    return len(wanted)


def _utc(value: Any) -> datetime:
    if isinstance(value, datetime):
        return value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
    return datetime.fromisoformat(str(value)).astimezone(UTC)


class WarehouseCheckFailed(Exception):
    exit_code = 1


def probe(pipeline: dlt.Pipeline, created_file: str | None = None) -> str:
    """`check`'s warehouse half: connect, create the dataset if needed, write and drop a table.

    What the probe created goes again: a dataset it had to create, and a DuckDB file that did
    not exist before (`created_file`, its path), so `check` leaves the warehouse as it found it.
    """
    table = "_polytomic_etl_check"
    try:
        with pipeline.sql_client() as sql:
            existed = sql.has_dataset()
            if not existed:
                sql.create_dataset()
            name = sql.make_qualified_table_name(table)
            sql.execute_sql(f"DROP TABLE IF EXISTS {name}")  # one an interrupted check left
            sql.execute_sql(f"CREATE TABLE {name} (ok INTEGER)")
            try:
                sql.execute_sql(f"INSERT INTO {name} VALUES (1)")
            finally:
                sql.execute_sql(f"DROP TABLE IF EXISTS {name}")
            if not existed:
                sql.drop_dataset()
    except Exception as exc:
        text = str(exc).strip().splitlines()
        raise WarehouseCheckFailed(
            f"warehouse check failed: {text[0] if text else type(exc).__name__}"
        ) from exc
    finally:
        for path in (created_file, f"{created_file}.wal") if created_file else ():
            Path(path).unlink(missing_ok=True)
    return "dataset exists" if existed else "dataset can be created"
