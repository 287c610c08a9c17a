"""Run the source into a warehouse: checkpoint loop, lock, summary, error mapping.

A checkpoint is one completed dlt load: rows and per-sync state reach the destination in one
package. The loop repeats loads until every sync has caught up, so a killed run loses at most
the load in flight.
"""

from __future__ import annotations

import contextlib
import logging
import os
import stat
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import dlt
from dlt.pipeline.exceptions import PipelineStepFailed

from pipelines.changes import Changes
from pipelines.errors import config_error
from pipelines.memory import tune_allocators
from pipelines.output import EXIT_INTERRUPTED, STOP
from pipelines.progress_line import ProgressLine
from pipelines.target import (
    DEFAULT_LOCK_WAIT_SECONDS,
    DuckDBLocked,
    StoppedWaiting,
    Target,
    duckdb_lock_holder,
)
from pipelines.warehouse import LoadedRows, mark_deleted
from pipelines.warehouse_lock import load_checkpoint, load_lock
from sources.polytomic import RunContext, polytomic_source, settings
from sources.polytomic.errors import ConfigError, PolytomicError

log = logging.getLogger("polytomic_etl")

# Arrow tables skip dlt's normalizer; keep its load id column so rows can be traced to loads.
os.environ.setdefault("NORMALIZE__PARQUET_NORMALIZER__ADD_DLT_LOAD_ID", "true")
# Pages of one load may disagree on a new field's type (absent, null, a list); let dlt widen.
os.environ.setdefault("DATA_WRITER__ARROW_CONCAT_PROMOTE_OPTIONS", "permissive")


class RunFailed(Exception):
    exit_code = 1

    def __init__(self, message: str, summary: Summary | None = None, exit_code: int = 1) -> None:
        super().__init__(message)
        self.summary = summary
        self.exit_code = exit_code


@dataclass
class Summary:
    mode: str = "run"
    syncs: int = 0
    executions: int = 0  # every execution row loaded: new + changed + re-read as it was
    # of those: not in the warehouse before / there with another updated_at (`changes.py`);
    # None when the warehouse could not be read to tell
    executions_new: int | None = 0
    executions_changed: int | None = 0
    schema_rows: int = 0
    skipped: int = 0
    failed_syncs: list[str] = field(default_factory=list)
    requests: int = 0
    loads: int = 0
    seconds: float = 0.0

    def line(self) -> str:
        failed = ",".join(self.failed_syncs) if self.failed_syncs else "0"
        new, changed = (
            "?" if n is None else n for n in (self.executions_new, self.executions_changed)
        )
        return (
            f"polytomic-etl {self.mode}: syncs={self.syncs} executions={self.executions} "
            f"new={new} changed={changed} "
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
    with load_lock(pipeline):  # like every load into a shared dataset
        if extracted:
            pipeline.normalize()
        if pipeline.list_normalized_load_packages():
            log.info(
                "loading %d pending package(s) first",
                len(pipeline.list_normalized_load_packages()),
            )
            pipeline.load()


def run(
    target: Target,
    source_args: dict[str, Any] | None = None,
    mode: str = "run",
    before_load: Callable[[dlt.Pipeline, RunContext], None] | None = None,
    after_load: Callable[[dlt.Pipeline], None] | None = None,
    on_finish: Callable[[dlt.Pipeline, Summary, Exception | None], None] | None = None,
    show_progress: bool = False,
) -> Summary:
    """One locked run: finish pending packages, then load checkpoints until caught up.

    A SIGTERM or Ctrl-C (the CLI's `STOP`) ends it at the next load boundary with exit 5: a
    load in progress completes; a walk in progress sends no new request and its checkpoint is
    dropped (state stays with the last load), so the next run continues from there.

    `on_finish` (the run log) is called with the outcome while the lock is still held, so no
    other run can open the warehouse between the run and its record.
    """
    tune_allocators()
    summary = Summary(mode=mode)
    with target.lock():
        pipeline = target.pipeline()
        try:
            hooks = (before_load, after_load, show_progress)
            _run_locked(target, pipeline, summary, source_args, *hooks)
        except Exception as exc:
            if on_finish:
                on_finish(pipeline, summary, exc)
            raise
        if on_finish:
            on_finish(pipeline, summary, None)
    return summary


def _run_locked(
    target: Target,
    pipeline: dlt.Pipeline,
    summary: Summary,
    source_args: dict[str, Any] | None,
    before_load: Callable[[dlt.Pipeline, RunContext], None] | None,
    after_load: Callable[[dlt.Pipeline], None] | None,
    show_progress: bool,
) -> None:
    started = time.monotonic()
    keep = keep_load_packages()
    wait = lock_wait_seconds()
    context = RunContext(warehouse=LoadedRows(pipeline))
    changes = Changes(pipeline)  # new and changed executions, for the summary
    progress = ProgressLine(context) if show_progress else contextlib.nullcontext()
    with progress:
        try:
            _while_locked(target, time.monotonic() + wait, finish_pending, pipeline)
            if before_load:
                before_load(pipeline, context)
            while True:
                if (stop := _interrupted(summary)) is not None:
                    raise stop
                source = polytomic_source(context=context, **(source_args or {}))
                changes.watch(source)
                if context.client is not None:
                    context.client.cancel = STOP
                _load(pipeline, source, target, wait, changes.count)
                summary.loads += 1
                deleted = [i for ids in context.deleted.values() for i in ids]
                context.deleted.clear()
                _while_locked(target, time.monotonic() + wait, mark_deleted, pipeline, deleted)
                if (stop := _interrupted(summary)) is not None:
                    raise stop
                if context.fatal is not None:
                    raise context.fatal
                if not context.pending:
                    break
            if after_load:
                _while_locked(target, time.monotonic() + wait, after_load, pipeline)
        except PipelineStepFailed as exc:
            raise (_interrupted(summary) or _unwrap(exc, summary)) from exc
        except DuckDBLocked as exc:
            raise RunFailed(str(exc), summary) from None
        except StoppedWaiting as exc:
            raise RunFailed(str(exc), summary, exit_code=exc.exit_code) from None
        finally:
            summary.seconds = time.monotonic() - started
            summary.syncs = len(context.memory)
            context.warehouse.close()
            changes.close()
            summary.executions_new, summary.executions_changed = changes.totals()
            tidy(pipeline, target.working_root / target.name, keep)
            for name in ("executions", "schema_rows", "skipped"):
                setattr(summary, name, context.counts[name])
            summary.failed_syncs = sorted(context.failed)
            if context.client is not None:
                summary.requests = sum(context.client.requests.values())
        if context.failed:
            names = ", ".join(sorted(context.failed))
            raise RunFailed(f"{len(context.failed)} sync(s) failed: {names}", summary)


def _load(
    pipeline: dlt.Pipeline,
    source: Any,
    target: Target,
    wait: float,
    after_extract: Callable[[], None] | None = None,
) -> None:
    """One checkpoint. A DuckDB file another process opened (a DuckDB shell, `sql`, a BI
    tool) is waited for, before the load and whenever dlt finds it locked: before extract
    (its state sync) the checkpoint starts again; after extract, the extracted package, which
    carries its state, loads as a pending one."""
    target.wait_for_file(wait)
    deadline = time.monotonic() + wait
    try:
        load_checkpoint(pipeline, source, target.file_format, after_extract)
        return
    except PipelineStepFailed as exc:
        if not _file_locked(target, exc.exception) or exc.step not in LOCKABLE_STEPS:
            raise
        if exc.step == "sync":
            step = (pipeline, source, target.file_format, after_extract)
            _while_locked(target, deadline, load_checkpoint, *step)
            return
    _while_locked(target, deadline, finish_pending, pipeline)


LOCKABLE_STEPS = ("sync", "normalize", "load")


def _file_locked(target: Target, exc: BaseException | None) -> bool:
    return bool(target.duckdb_path) and duckdb_lock_holder(str(exc or "")) is not None


def _while_locked(target: Target, deadline: float, step: Callable[..., Any], *args: Any) -> None:
    """`step(*args)`, again after each wait while another process holds the DuckDB file."""
    while True:
        target.wait_for_file(max(0.0, deadline - time.monotonic()))
        try:
            step(*args)
            return
        except PipelineStepFailed as exc:
            if not _file_locked(target, exc.exception) or time.monotonic() >= deadline:
                raise
        except Exception as exc:
            if not _file_locked(target, exc) or time.monotonic() >= deadline:
                raise


def _interrupted(summary: Summary) -> RunFailed | None:
    """At a load boundary: the exit-5 error when SIGTERM or Ctrl-C asked the run to stop."""
    if not STOP.is_set():
        return None
    where = f"after load {summary.loads}" if summary.loads else "before its first load"
    return RunFailed(
        f"interrupted by {STOP.signal_name or 'a stop request'}: stopped {where}; "
        "the next run continues from there",
        summary,
        exit_code=EXIT_INTERRUPTED,
    )


def lock_wait_seconds() -> float:
    """`[polytomic_etl] lock_wait_seconds` (env `POLYTOMIC_ETL__LOCK_WAIT_SECONDS`)."""
    try:
        value = dlt.config.get("polytomic_etl.lock_wait_seconds", float)
    except Exception:
        value = -1.0
    if value is None:
        return DEFAULT_LOCK_WAIT_SECONDS
    if not 0 <= value < float("inf"):  # NaN and infinity too
        raise ConfigError("polytomic_etl.lock_wait_seconds must be a number of seconds >= 0")
    return value


def keep_load_packages() -> int:
    """`[polytomic_etl] keep_load_packages` (env `POLYTOMIC_ETL__KEEP_LOAD_PACKAGES`)."""
    try:
        value = dlt.config.get("polytomic_etl.keep_load_packages", int)
    except Exception:
        value = -1
    if value is None:
        return settings.DEFAULT_KEEP_LOAD_PACKAGES
    if value < 0:
        raise ConfigError("polytomic_etl.keep_load_packages must be a whole number >= 0")
    return value


def tidy(pipeline: dlt.Pipeline, working_dir: Path, keep: int) -> None:
    """Completed load packages but the newest `keep` go; what stays is private to its user.

    dlt keeps every finished package under `load/loaded` (about 100 KB per idle run). A failure
    here never hides the run's own outcome: it is logged.
    """
    try:
        storage = pipeline._get_load_storage()
        loaded = list(pipeline.list_completed_load_packages())  # oldest first
        for load_id in loaded[: max(0, len(loaded) - keep)]:
            storage.delete_loaded_package(load_id)
        make_private(working_dir)
    except Exception as exc:
        log.warning("could not tidy the working directory %s: %s", working_dir, exc)


def make_private(path: Path) -> None:
    """Directories 0700 and files 0600, also those an older version left readable to others."""
    if not path.is_dir():
        return
    for item in [path, *path.rglob("*")]:
        mode = item.lstat().st_mode
        if not stat.S_ISLNK(mode) and stat.S_IMODE(mode) & 0o077:
            item.chmod(stat.S_IMODE(mode) & 0o700)


def _unwrap(exc: PipelineStepFailed, summary: Summary) -> Exception:
    cause: BaseException | None = exc.exception
    while cause is not None and not isinstance(cause, PolytomicError):
        nxt = cause.__cause__ or cause.__context__
        if nxt is None or nxt is cause:
            break
        cause = nxt
    if isinstance(cause, PolytomicError):
        return RunFailed(str(cause), summary, exit_code=cause.exit_code)
    if (usage := config_error(exc)) is not None:
        return RunFailed(str(usage), summary, exit_code=usage.exit_code)
    detail = (
        str(exc.exception).splitlines()[0] if str(exc.exception) else type(exc.exception).__name__
    )
    holder = duckdb_lock_holder(detail)
    if holder is not None and "file" in detail.lower():
        # Another process opened the file between our wait and dlt's connection.
        return RunFailed(_locked_message(detail, holder), summary)
    return RunFailed(f"{exc.step} step failed: {detail}", summary)


def _locked_message(detail: str, holder: str) -> str:
    import re

    match = re.search(r'file "([^"]+)"', detail)
    where = f"warehouse file {match.group(1)}" if match else "the warehouse file"
    return f"{where} is locked by another process (pid {holder})"


def env_flag(name: str) -> bool:
    return os.environ.get(name, "").lower() in ("1", "true", "yes")
