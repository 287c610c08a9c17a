"""Where a run loads: the destination, its dataset and shard, and the checks made before dlt.

Each target gets its own pipeline name, working directory and lock (see the README's "Local
dlt state"). Destination configuration problems are usage errors (exit 2) with the setting
and its environment variable, not dlt's multi-line traces.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dlt
from dlt.common.destination import Destination
from dlt.common.normalizers.naming.snake_case import NamingConvention
from dlt.common.pipeline import get_dlt_pipelines_dir

from pipelines.cleanup import marker_content, remember_marker, write_marker
from pipelines.lock import PipelineLock, held_by
from pipelines.output import EXIT_INTERRUPTED, STOP, UsageError
from pipelines.warehouse_lock import RunLock

log = logging.getLogger("polytomic_etl")

DEFAULT_DUCKDB = "polytomic_etl.duckdb"
OLD_DEFAULT_DUCKDB = "polytomic.duckdb"  # until 0.1: its stem equals the default dataset
DUCKDB_CATALOGS = ("system", "temp")  # built into every DuckDB database
MAX_PIPELINE_NAME = 64
DEFAULT_LOCK_WAIT_SECONDS = 60.0  # for a DuckDB file another process holds

# Postgres without ADBC cannot take parquet; DuckDB loads parquet about 5x faster than inserts.
FILE_FORMATS = {"duckdb": "parquet", "motherduck": "parquet", "postgres": "insert_values"}

# dlt's progress collectors (log, tqdm, enlighten, alive_progress) are opt-in via --progress.
_NO_PROGRESS: Any = None


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
        if self.pipeline_name:
            _check_pipeline_name(self.pipeline_name)  # before its lock file is made
        if self.duckdb_path:
            _check_utf8(self.duckdb_path)
            self.destination = "duckdb"
            self.duckdb_path = str(Path(self.duckdb_path).expanduser().resolve())
        elif self.destination == "duckdb":
            self.duckdb_path = str(_default_duckdb())
        stored = normalized_dataset(self.destination, self.dataset)
        if stored != self.dataset:
            # dlt stores the dataset under its normalised name; every reader must use it.
            log.warning("dataset %r is stored as %r", self.dataset, stored)
            self.dataset = stored
        if self.duckdb_path:
            _check_duckdb_names(Path(self.duckdb_path), self.dataset)

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
        shard = f"_{self._shard_tag}" if self.shard else ""
        # dlt caps pipeline names at 64 characters; the digest keeps a shortened one unique.
        room = MAX_PIPELINE_NAME - len(f"polytomic_etl_{self.destination}_{shard}_{digest}")
        return f"polytomic_etl_{self.destination}_{self.dataset[: max(room, 1)]}{shard}_{digest}"

    @property
    def _shard_tag(self) -> str:
        return f"shard{(self.shard or '').replace('/', 'of')}"

    @property
    def working_root(self) -> Path:
        return Path(self.pipelines_dir or get_dlt_pipelines_dir())

    def pipeline(self) -> dlt.Pipeline:
        # Each shard merges through a staging dataset of its own: a shared one is truncated
        # by every load, so concurrent shards would empty each other's rows mid-merge.
        layout = {"staging_dataset_name_layout": f"%s_staging_{self._shard_tag}"}
        options: dict[str, Any] = layout if self.shard else {}
        if self.destination == "duckdb":
            destination: Any = dlt.destinations.duckdb(self.duckdb_path, **options)
        else:
            credentials = _passwordless_credentials(self.destination)
            if credentials is not None:
                options["credentials"] = credentials
            destination = Destination.from_reference(self.destination, **options)
        remember_marker(self.working_root / self.name)  # dlt may empty the dir in a run
        pipeline = dlt.pipeline(
            pipeline_name=self.name,
            destination=destination,
            dataset_name=self.dataset,
            pipelines_dir=str(self.working_root),
            progress=self.progress or _NO_PROGRESS,
        )
        self.mark_working_dir()  # after dlt: it empties a working dir that has no state yet
        return pipeline

    def mark_working_dir(self) -> None:
        """Record in the working dir which warehouse it serves, for `polytomic-etl cleanup`."""
        content = marker_content(self.destination, self.duckdb_path, self.dataset, self.shard)
        write_marker(self.working_root / self.name, content)

    def lock(self) -> contextlib.ExitStack:
        """The lock file beside the working directory, then the warehouse's run lock."""
        stack = contextlib.ExitStack()
        try:
            stack.enter_context(PipelineLock(self.working_root / f"{self.name}.lock"))
            stack.enter_context(RunLock(self.pipeline(), self.identity()))
            # again at the end: dlt empties the working dir when its warehouse has gone
            stack.callback(self.mark_working_dir)
        except BaseException:
            stack.close()
            raise
        return stack

    def load_in_progress(self) -> str | None:
        """ "pid N, since T" of a run loading this target now (any shard), or None."""
        own = self.working_root / f"{self.name}.lock"
        prefix = f"polytomic_etl_{self.destination}_{self.dataset[:16]}"
        family = self.working_root.glob(f"{prefix}*.lock")
        for path in [own, *sorted(family)]:
            if (holder := held_by(path)) is not None:
                return holder
        return None

    @property
    def file_format(self) -> Any:
        return FILE_FORMATS.get(self.destination)

    def wait_for_file(self, seconds: float) -> None:
        """Wait up to `seconds` while another process (a DuckDB shell, a BI tool) holds the file.

        DuckDB lets one process open a file for writing, and none while another holds it,
        even read-only. A locked file is a failed run (exit 1), not a usage error.
        """
        if not self.duckdb_path or not Path(self.duckdb_path).exists():
            return
        import duckdb

        deadline = time.monotonic() + max(0.0, seconds)
        while True:
            try:
                duckdb.connect(self.duckdb_path).close()
                return
            except duckdb.IOException as exc:
                holder = duckdb_lock_holder(str(exc))
                if holder is None:
                    raise
                if STOP.is_set():  # SIGTERM or Ctrl-C: stop now, not when the holder lets go
                    raise StoppedWaiting(
                        f"interrupted by {STOP.signal_name or 'a stop request'} while waiting "
                        f"for {self.duckdb_path}; the next run continues from there"
                    ) from None
                if time.monotonic() >= deadline:
                    raise DuckDBLocked(
                        f"warehouse file {self.duckdb_path} is locked by another process "
                        f"(pid {holder}); waited {seconds:g}s "
                        "(polytomic_etl.lock_wait_seconds, env POLYTOMIC_ETL__LOCK_WAIT_SECONDS)"
                    ) from None
                STOP.wait(min(0.5, max(0.05, deadline - time.monotonic())))


class DuckDBLocked(Exception):
    exit_code = 1


class StoppedWaiting(Exception):
    exit_code = EXIT_INTERRUPTED


def duckdb_lock_holder(detail: str) -> str | None:
    """The pid DuckDB names in its "Could not set lock on file" error, or None."""
    if "lock" not in detail.lower():
        return None
    match = re.search(r"PID (\d+)", detail, re.I)
    return match.group(1) if match else "?"


def _default_duckdb() -> Path:
    """`./polytomic_etl.duckdb`, unless only the old default file is here."""
    new, old = Path(DEFAULT_DUCKDB), Path(OLD_DEFAULT_DUCKDB)
    if not new.exists() and old.exists():
        raise UsageError(
            f"found ./{OLD_DEFAULT_DUCKDB} (the old default warehouse) but no ./{DEFAULT_DUCKDB}: "
            f"pass --duckdb {OLD_DEFAULT_DUCKDB} --dataset <another name than 'polytomic'>, "
            f"or rename it to {DEFAULT_DUCKDB}"
        )
    return new.resolve()


def _check_pipeline_name(name: str) -> None:
    """dlt's rule for a pipeline name (it names the working directory and its lock file)."""
    from dlt.common.storages.file_storage import FileStorage

    try:
        FileStorage.validate_file_name_component(name)
    except ValueError as exc:  # pathvalidate's errors, and a name that is not UTF-8
        why = getattr(getattr(exc, "reason", None), "description", None) or "not UTF-8"
        raise UsageError(
            f"--pipeline-name {name!a} cannot name a working directory ({why}): "
            "use letters, digits, '_' and '-'"
        ) from None


def _check_utf8(path: str) -> None:
    """DuckDB takes UTF-8 file names only; a path with other bytes is refused (exit 2)."""
    try:
        path.encode("utf-8")
    except UnicodeEncodeError:
        raise UsageError(
            f"--duckdb {path!a}: the path is not valid UTF-8, which DuckDB needs: "
            "pass another --duckdb path"
        ) from None


def _check_duckdb_names(path: Path, dataset: str) -> None:
    """DuckDB names the catalog after the file: a dataset of the same name is ambiguous."""
    if not path.parent.is_dir():
        raise UsageError(f"directory {path.parent} does not exist (for --duckdb {path})")
    stem = path.name.lstrip(".").split(".")[0]  # DuckDB's catalog name for the file
    if stem.lower() == dataset.lower():
        raise UsageError(
            f"the DuckDB file {path.name} and the dataset {dataset!r} share a name, which "
            "DuckDB cannot tell apart: name the file differently "
            f"(the default is {DEFAULT_DUCKDB}) or pass another --dataset"
        )
    if dataset.lower() in DUCKDB_CATALOGS:
        raise UsageError(
            f"the dataset {dataset!r} is a DuckDB built-in catalog name: choose another --dataset"
        )


def normalized_dataset(destination: str, dataset: str) -> str:
    """The name dlt gives the dataset on this destination (case, characters, length)."""
    try:
        caps = Destination.from_reference(destination).capabilities()
    except Exception:  # an unknown destination fails later, with dlt's own message
        return dataset
    naming = NamingConvention(max_length=caps.max_identifier_length)
    return naming.normalize_table_identifier(dataset)


def _destination_config(destination: str) -> Any:
    dest = Destination.from_reference(destination)
    return dest.configuration(dest.spec(), accept_partial=True)  # type: ignore[call-arg]


def _credentials_fingerprint(destination: str) -> str:
    """Host, port and database of a configured destination, never its password."""
    try:
        creds = getattr(_destination_config(destination), "credentials", None)
        parts = [getattr(creds, k, None) for k in ("host", "port", "database", "project_id")]
        return ":".join(str(p) for p in parts if p) or destination
    except Exception:  # an unresolved config still gets a stable name
        return destination


def _passwordless_credentials(destination: str) -> Any | None:
    """Postgres credentials with only the password missing, completed with an empty one.

    A trust-auth server (common on a developer laptop) needs no password, but dlt's
    Postgres credentials require the field.
    """
    if destination != "postgres":
        return None
    try:
        creds = getattr(_destination_config(destination), "credentials", None)
    except Exception:
        return None  # dlt reports the real problem when the pipeline resolves it
    if creds is None or creds.password is not None or not (creds.host and creds.database):
        return None
    creds.password = ""
    creds.resolve()
    return creds
