"""Run the source into a warehouse: checkpoint loop, lock, summary, error mapping.

A checkpoint is one completed dlt load: rows and per-sync state reach the destination in one
package. The loop repeats loads until every sync has caught up, so a killed run loses at most
the load in flight.
"""

from __future__ import annotations

import hashlib
import logging
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import dlt
from dlt.common.pipeline import get_dlt_pipelines_dir
from dlt.pipeline.exceptions import PipelineStepFailed

from pipelines.lock import PipelineLock
from pipelines.warehouse import LoadedRows, mark_deleted
from sources.polytomic import RunContext, polytomic_source
from sources.polytomic.errors import PolytomicError

log = logging.getLogger("polytomic_etl")

# Arrow tables skip dlt's normalizer; keep its load id column so rows can be traced to loads.
os.environ.setdefault("NORMALIZE__PARQUET_NORMALIZER__ADD_DLT_LOAD_ID", "true")
# Pages of one load may disagree on a new field's type (absent, null, a list); let dlt widen.
os.environ.setdefault("DATA_WRITER__ARROW_CONCAT_PROMOTE_OPTIONS", "permissive")

# Postgres without ADBC cannot take parquet; DuckDB loads parquet about 5x faster than inserts.
FILE_FORMATS = {"duckdb": "parquet", "motherduck": "parquet", "postgres": "insert_values"}


class RunFailed(Exception):
    exit_code = 1

    def __init__(self, message: str, summary: Summary | None = None, exit_code: int = 1) -> None:
        super().__init__(message)
        self.summary = summary
        self.exit_code = exit_code


@dataclass
class Target:
    """Where a run loads. Each target gets its own pipeline name, working dir and lock."""

    destination: str = "duckdb"
    duckdb_path: str | None = None
    dataset: str = "polytomic"
    pipelines_dir: str | None = None
    pipeline_name: str | None = None
    shard: str | None = None
    progress: str | None = None

    def __post_init__(self) -> None:
        if self.duckdb_path:
            self.destination = "duckdb"
            self.duckdb_path = str(Path(self.duckdb_path).expanduser().resolve())
        elif self.destination == "duckdb":
            self.duckdb_path = str(Path("polytomic.duckdb").resolve())

    def identity(self) -> str:
        """What makes two targets different: destination, its location, dataset and shard."""
        where = self.duckdb_path or _credentials_fingerprint(self.destination)
        return f"{self.destination}|{where}|{self.dataset}|{self.shard or ''}"

    def describe(self) -> str:
        where = self.duckdb_path or self.destination
        return f"{where} (dataset {self.dataset})"

    @property
    def name(self) -> str:
        if self.pipeline_name:
            return self.pipeline_name
        digest = hashlib.sha256(self.identity().encode()).hexdigest()[:10]
        shard = f"_shard{self.shard.replace('/', 'of')}" if self.shard else ""
        return f"polytomic_etl_{self.destination}_{self.dataset}{shard}_{digest}"

    @property
    def working_root(self) -> Path:
        return Path(self.pipelines_dir or get_dlt_pipelines_dir())

    def pipeline(self) -> dlt.Pipeline:
        destination: Any = self.destination
        if self.destination == "duckdb":
            destination = dlt.destinations.duckdb(self.duckdb_path)
        return dlt.pipeline(
            pipeline_name=self.name,
            destination=destination,
            dataset_name=self.dataset,
            pipelines_dir=str(self.working_root),
            progress=self.progress or _NO_PROGRESS,
        )

    def lock(self) -> PipelineLock:
        return PipelineLock(self.working_root / f"{self.name}.lock")

    @property
    def file_format(self) -> Any:
        return FILE_FORMATS.get(self.destination)


# dlt's progress collectors (log, tqdm, enlighten, alive_progress) are opt-in via --progress.
_NO_PROGRESS: Any = None


def _credentials_fingerprint(destination: str) -> str:
    """Host, port and database of a configured destination, never its password."""
    try:
        dest = dlt.destinations.Destination.from_reference(destination)
        config = dest.configuration(dest.spec(), accept_partial=True)  # type: ignore[call-arg]
        creds = getattr(config, "credentials", None)
        parts = [getattr(creds, k, None) for k in ("host", "port", "database", "project_id")]
        return ":".join(str(p) for p in parts if p) or destination
    except Exception:  # an unresolved config still gets a stable name
        return destination


@dataclass
class Summary:
    mode: str = "run"
    syncs: int = 0
    executions: int = 0
    schema_rows: int = 0
    skipped: int = 0
    failed_syncs: list[str] = field(default_factory=list)
    requests: int = 0
    loads: int = 0
    seconds: float = 0.0

    def line(self) -> str:
        failed = ",".join(self.failed_syncs) if self.failed_syncs else "0"
        return (
            f"polytomic-etl {self.mode}: syncs={self.syncs} executions={self.executions} "
            f"schema_rows={self.schema_rows} skipped={self.skipped} failed_syncs={failed} "
            f"requests={self.requests} loads={self.loads} seconds={self.seconds:.1f}"
        )

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def finish_pending(pipeline: dlt.Pipeline) -> None:
    """Load packages a killed or failed run left behind, before extracting anything new.

    dlt's `run(data)` with pending packages loads only those and ignores the new data, so the
    runner finishes them explicitly first. State never runs ahead of the data: the pending
    package carries the state that matches its rows.
    """
    extracted = set(pipeline.list_extracted_load_packages())
    # A kill between dlt's move of a normalized package and the delete of its extracted copy
    # leaves both; the normalized one is complete, so the stale copy goes.
    for load_id in extracted & set(pipeline.list_normalized_load_packages()):
        pipeline._get_normalize_storage().extracted_packages.delete_package(load_id)
        extracted.discard(load_id)
    if extracted:
        pipeline.normalize()
    if pipeline.list_normalized_load_packages():
        log.info(
            "loading %d pending package(s) first", len(pipeline.list_normalized_load_packages())
        )
        pipeline.load()


def run(
    target: Target,
    source_args: dict[str, Any] | None = None,
    mode: str = "run",
    before_load: Callable[[dlt.Pipeline, RunContext], None] | None = None,
    after_load: Callable[[dlt.Pipeline], None] | None = None,
) -> Summary:
    """One locked run: finish pending packages, then load checkpoints until caught up."""
    started = time.monotonic()
    summary = Summary(mode=mode)
    with target.lock():
        pipeline = target.pipeline()
        context = RunContext(warehouse=LoadedRows(pipeline))
        try:
            finish_pending(pipeline)
            if before_load:
                before_load(pipeline, context)
            while True:
                source = polytomic_source(context=context, **(source_args or {}))
                pipeline.run(source, loader_file_format=target.file_format)
                summary.loads += 1
                deleted = [i for ids in context.deleted.values() for i in ids]
                context.deleted.clear()
                mark_deleted(pipeline, deleted)
                if context.fatal is not None:
                    raise context.fatal
                if not context.pending:
                    break
            if after_load:
                after_load(pipeline)
        except PipelineStepFailed as exc:
            raise _unwrap(exc, summary) from exc
        finally:
            summary.seconds = time.monotonic() - started
            summary.syncs = len(context.memory)
            context.warehouse.close()
            for name in ("executions", "schema_rows", "skipped"):
                setattr(summary, name, context.counts[name])
            summary.failed_syncs = sorted(context.failed)
            if context.client is not None:
                summary.requests = sum(context.client.requests.values())
    if context.failed:
        names = ", ".join(sorted(context.failed))
        raise RunFailed(f"{len(context.failed)} sync(s) failed: {names}", summary)
    return summary


def _unwrap(exc: PipelineStepFailed, summary: Summary) -> Exception:
    cause: BaseException | None = exc.exception
    while cause is not None and not isinstance(cause, PolytomicError):
        nxt = cause.__cause__ or cause.__context__
        if nxt is None or nxt is cause:
            break
        cause = nxt
    if isinstance(cause, PolytomicError):
        return RunFailed(str(cause), summary, exit_code=cause.exit_code)
    detail = (
        str(exc.exception).splitlines()[0] if str(exc.exception) else type(exc.exception).__name__
    )
    locked = _lock_message(detail) if "lock" in detail.lower() else None
    if locked:
        return RunFailed(locked, summary)
    return RunFailed(f"{exc.step} step failed: {detail}", summary)


def _lock_message(detail: str) -> str | None:
    """DuckDB says which process holds the file; say it in one line."""
    import re

    match = re.search(r'file "([^"]+)".*?PID (\d+)', detail, re.S | re.I)
    if match:
        return (
            f"warehouse file {match.group(1)} is locked by another process (pid {match.group(2)})"
        )
    return detail


def env_flag(name: str) -> bool:
    return os.environ.get(name, "").lower() in ("1", "true", "yes")
