"""Warehouse-side locks, for server warehouses that several machines or shards load at once.

The lock file beside the pipeline working directory only excludes runs that share that
directory. On Postgres two more locks, both session advisory locks keyed on names, cover
the rest:

* the run lock, keyed on the target (destination, database, dataset, shard): a second run of
  the same target from another `--pipelines-dir` or machine exits 3 instead of interleaving;
* the load lock, keyed on the dataset: shards that share a dataset extract at the same time
  but load one at a time, so their schema changes (CREATE/ALTER TABLE) never race. Each
  shard also merges through a staging dataset of its own (see `Target.pipeline`).

DuckDB needs neither: one process at a time can open its file for writing.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator
from types import TracebackType
from typing import Any

import dlt

from pipelines.lock import LockHeld

log = logging.getLogger("polytomic_etl")
SERVER_DESTINATIONS = ("postgres",)


def _uses_advisory_locks(pipeline: dlt.Pipeline) -> bool:
    name = pipeline.destination.destination_name if pipeline.destination else ""
    return name in SERVER_DESTINATIONS


class RunLock:
    """Held for a whole run: `pg_try_advisory_lock` on the target's identity."""

    def __init__(self, pipeline: dlt.Pipeline, identity: str) -> None:
        self.pipeline, self.key = pipeline, f"polytomic_etl:run:{identity}"
        self._sql: Any = None

    def __enter__(self) -> RunLock:
        if not _uses_advisory_locks(self.pipeline):
            return self
        sql = self.pipeline.sql_client()
        sql.open_connection()
        rows = sql.execute_sql("SELECT pg_try_advisory_lock(hashtext(%s))", self.key)
        if not (rows and rows[0][0]):
            sql.close_connection()
            raise LockHeld(
                "another run of this target holds its lock in the warehouse (a run from "
                "another --pipelines-dir or machine)"
            )
        self._sql = sql
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._sql is None:
            return
        with contextlib.suppress(Exception):  # closing the session releases it anyway
            self._sql.execute_sql("SELECT pg_advisory_unlock(hashtext(%s))", self.key)
        with contextlib.suppress(Exception):
            self._sql.close_connection()
        self._sql = None


@contextlib.contextmanager
def load_lock(pipeline: dlt.Pipeline) -> Iterator[None]:
    """One load at a time into a dataset (blocking): schema changes never race."""
    if not _uses_advisory_locks(pipeline):
        yield
        return
    sql = pipeline.sql_client()
    key = f"polytomic_etl:load:{sql.dataset_name}"
    sql.open_connection()
    try:
        sql.execute_sql("SELECT pg_advisory_lock(hashtext(%s))", key)
        yield
    finally:
        with contextlib.suppress(Exception):
            sql.execute_sql("SELECT pg_advisory_unlock(hashtext(%s))", key)
        with contextlib.suppress(Exception):
            sql.close_connection()


def load_checkpoint(
    pipeline: dlt.Pipeline,
    source: Any,
    file_format: Any,
    after_extract: Callable[[], None] | None = None,
) -> None:
    """What `pipeline.run(source)` does, with normalize and load under the dataset's lock.

    Like `run`, the state is restored from the destination once per pipeline object.
    `after_extract` runs between extract and normalize, while the warehouse is as it was.
    """
    if pipeline.config.restore_from_destination and not getattr(pipeline, "_state_restored", False):
        pipeline.sync_destination()
        pipeline._state_restored = True
    pipeline.extract(source, loader_file_format=file_format)
    if after_extract is not None:
        after_extract()
    with load_lock(pipeline):
        pipeline.normalize()
        pipeline.load()
