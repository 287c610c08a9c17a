"""New and changed executions: what a `run` or `backfill` wrote that the warehouse lacked.

`executions` in the summary counts every execution row a run loads, including rows a
backfill (or the lookback) re-reads unchanged. A weekly reconciliation wants to know whether
it repaired anything, so each load's `bulk_sync_executions` rows are compared, as they are
extracted and so before they are loaded, with what the warehouse holds:

- new: no row with that `id` yet;
- changed: a row with that `id` whose `updated_at` differs, or that is marked deleted
  (`deleted_at` set; loading it again clears the mark);
- the rest (`executions - new - changed`) were loaded already, as they are.

An execution loaded twice in one run (in flight, then finished) counts in each load, as in
`executions`. The ids each extraction yields are gathered (as Arrow columns) and counted once
per load, after extract and before normalize and load, with one connection and one
`SELECT id, updated_at, deleted_at ... WHERE id IN (...)` per 500 ids, on the run's own
destination: a connection per sync and load was most of a load's fixed cost over many syncs.
On DuckDB the connection is closed after each count, so that no connection of ours is open
when dlt's load step opens the file; on a server the one connection is kept until the run's
`close()`: it is in autocommit mode and holds no lock between statements. Counting never
fails a run: when the warehouse cannot be read the counts are unknown (None), and the run
goes on.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

import dlt

from pipelines.output import one_line

log = logging.getLogger("polytomic_etl")

EXECUTIONS = "bulk_sync_executions"
_CHUNK = 500
_SERVERS = ("postgres",)


class Changes:
    """Counts the new and changed executions of one run's loads."""

    def __init__(self, pipeline: dlt.Pipeline) -> None:
        self.pipeline = pipeline
        self.new = 0
        self.changed = 0
        self.unknown = False
        name = pipeline.destination.destination_name if pipeline.destination else ""
        self._keep_open = name in _SERVERS
        self._sql: Any = None
        self._table: str | None = None
        self._present: set[str] | None = None  # the table's columns, once it exists
        self._gathered: list[tuple[Any, Any]] = []  # (ids, updated_at) columns of this load

    def watch(self, source: Any) -> None:
        """Count the executions each extraction of ``source`` yields (a dlt map step)."""
        resource = source.resources.get(EXECUTIONS) if hasattr(source, "resources") else None
        if resource is not None:
            resource.add_map(self._count)

    def totals(self) -> tuple[int | None, int | None]:
        return (None, None) if self.unknown else (self.new, self.changed)

    def close(self) -> None:
        if self._sql is not None:
            try:
                self._sql.close_connection()
            except Exception as exc:
                log.debug("closing the change counter's connection: %s", one_line(exc))
            self._sql = None

    def _count(self, item: Any, meta: Any = None) -> Any:
        hints = getattr(meta, "hints", None) or {}
        if hints.get("table_name") != EXECUTIONS or self.unknown:
            return item
        columns = getattr(item, "column_names", None)
        if not columns or "id" not in columns or "updated_at" not in columns:
            return item
        self._gathered.append((item.column("id"), item.column("updated_at")))
        return item

    def count(self) -> None:
        """Count what this load's extraction gathered, against the warehouse before it loads."""
        gathered, self._gathered = self._gathered, []
        if self.unknown or not gathered:
            return
        ids = [i for column, _ in gathered for i in column.to_pylist()]
        stamps = [s for _, column in gathered for s in column.to_pylist()]
        try:
            held = self._held([i for i in ids if isinstance(i, str)])
        except Exception as exc:
            self.unknown = True
            log.info("cannot tell new from changed executions: %s", one_line(exc))
            self.close()
            return
        for exec_id, stamp in zip(ids, stamps, strict=True):
            if exec_id not in held:
                self.new += 1
                continue
            updated, deleted = held[exec_id]
            if deleted or _utc(stamp) != updated:
                self.changed += 1

    def _held(self, ids: list[str]) -> dict[str, tuple[datetime | None, bool]]:
        """``id -> (updated_at, marked deleted)`` of the rows the warehouse holds."""
        if not ids:
            return {}
        sql = self._client()
        try:
            columns = self._columns(sql)
            if not {"id", "updated_at"} <= columns:
                return {}  # nothing loaded yet
            deleted = "deleted_at" if "deleted_at" in columns else "NULL"
            out: dict[str, tuple[datetime | None, bool]] = {}
            for start in range(0, len(ids), _CHUNK):
                chunk = ids[start : start + _CHUNK]
                marks = ", ".join(["%s"] * len(chunk))
                rows = sql.execute_sql(
                    f"SELECT id, updated_at, {deleted} FROM {self._table} WHERE id IN ({marks})",
                    *chunk,
                )
                out.update({r[0]: (_utc(r[1]), r[2] is not None) for r in rows or ()})
            return out
        finally:
            if not self._keep_open:
                self.close()

    def _client(self) -> Any:
        if self._sql is None:
            sql = self.pipeline.sql_client()
            sql.open_connection()
            self._sql, self._table = sql, sql.make_qualified_table_name(EXECUTIONS)
        return self._sql

    def _columns(self, sql: Any) -> set[str]:
        if self._present is None:
            rows = sql.execute_sql(
                "SELECT column_name FROM information_schema.columns "
                "WHERE table_schema = %s AND table_name = %s",
                sql.dataset_name,
                EXECUTIONS,
            )
            present = {str(r[0]) for r in rows or ()}
            if not present:
                return present  # asked again next time: a load creates the table
            self._present = present
        return self._present


def _utc(value: Any) -> datetime | None:
    if value is None:
        return None
    if not isinstance(value, datetime):
        value = datetime.fromisoformat(str(value))
    return value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
