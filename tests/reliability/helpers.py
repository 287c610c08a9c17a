"""Tools for the reliability suite: the CLI as a real subprocess, kills, locks, state readers.

Everything here looks at the product from outside: the CLI's exit code and output, the
pipeline working directory, the warehouse and the sandbox's request log.
"""

from __future__ import annotations

import contextlib
import gzip
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import requests

from pipelines.sandbox import Sandbox
from tests.conftest import Etl, assert_matches_truth

CLI = Path(sys.executable).with_name("polytomic-etl")
SUBPROCESS_TIMEOUT = 180


# -- the CLI as a subprocess -------------------------------------------------------------


def cli_env(etl: Etl, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SOURCES__POLYTOMIC__")}
    env.update(etl.env())
    env.update(extra)
    env["PYTHONUNBUFFERED"] = "1"
    return env


def spawn(etl: Etl, *extra: str, command: str = "run", env: dict[str, str] | None = None) -> Any:
    """Start `polytomic-etl <command> --json ...` for this warehouse, in its own directory."""
    return subprocess.Popen(
        [str(CLI), *etl.args(command, "--json", *extra)],
        env=env or cli_env(etl),
        cwd=etl.tmp,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@dataclass
class Outcome:
    code: int
    out: str
    err: str

    @property
    def summary(self) -> dict[str, Any] | None:
        lines = [line for line in self.out.splitlines() if line.startswith("{")]
        return json.loads(lines[-1]) if lines else None


def finish(proc: Any, timeout: float = SUBPROCESS_TIMEOUT) -> Outcome:
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        message = f"the CLI did not return within {timeout}s; stderr: {err[-2000:]}"
        raise AssertionError(message) from None
    return Outcome(proc.returncode, out, err)


def run_cli(etl: Etl, *extra: str, timeout: float = SUBPROCESS_TIMEOUT, **env: str) -> Outcome:
    return finish(spawn(etl, *extra, env=cli_env(etl, **env)), timeout)


# -- kills -------------------------------------------------------------------------------


@dataclass
class Killer:
    """SIGKILLs the current CLI process at a chosen moment, seen from the sandbox or the disk.

    Modes: `request` (on the n-th API request of this process, inside the sandbox hook, so
    the process dies in the middle of an HTTP exchange), `time` (a delay after the first API
    request, which lands in extract, normalize or load), `load` (as soon as a new normalized
    package has a job started or completed, i.e. in the middle of the load step).
    """

    sb: Sandbox
    proc: Any = None
    mode: str = "none"
    arg: float = 0
    requests_seen: int = 0
    fired: bool = False
    where: str = ""
    pipeline_root: Path | None = None
    _first: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self.sb.add_hook(self._hook)

    def arm(self, proc: Any, mode: str, arg: float = 0) -> None:
        with self._lock:
            self.proc, self.mode, self.arg = proc, mode, arg
            self.requests_seen, self.fired, self.where = 0, False, ""
            self._first = threading.Event()
        if mode == "time":
            threading.Thread(target=self._after_delay, args=(proc,), daemon=True).start()
        elif mode == "load":
            known = set(_packages(self.pipeline_root, "load/normalized"))
            threading.Thread(target=self._on_load, args=(proc, known), daemon=True).start()

    def _kill(self, proc: Any, where: str) -> None:
        with self._lock:
            if proc is not self.proc or self.fired or proc.poll() is not None:
                return
            self.where = where or self._phase()
            os.kill(proc.pid, signal.SIGKILL)
            self.fired = True

    def _phase(self) -> str:
        if _packages(self.pipeline_root, "load/normalized"):
            return "load"
        if _packages(self.pipeline_root, "load/new") or _packages(
            self.pipeline_root, "normalize/extracted"
        ):
            return "normalize"
        return "extract"

    def _hook(self, sb: Sandbox, record: Any) -> None:
        with self._lock:
            proc, mode = self.proc, self.mode
            if proc is None:
                return
            self.requests_seen += 1
            seen = self.requests_seen
            self._first.set()
        if mode == "request" and seen == int(self.arg):
            self._kill(proc, f"extract (request {seen}, {record.kind})")

    def _after_delay(self, proc: Any) -> None:
        first = self._first
        while not first.wait(0.02):
            if proc.poll() is not None:
                return
        time.sleep(self.arg)
        self._kill(proc, "")

    def _on_load(self, proc: Any, known: set[str]) -> None:
        root = self.pipeline_root
        while proc.poll() is None and root is not None:
            for load_id in set(_packages(root, "load/normalized")) - known:
                for pipeline in root.glob("*/"):
                    package = pipeline / "load" / "normalized" / load_id
                    jobs = [package / "started_jobs", package / "completed_jobs"]
                    if any(d.is_dir() and any(d.iterdir()) for d in jobs):
                        self._kill(proc, "load (jobs started)")
                        return
            time.sleep(0.002)


def _packages(root: Path | None, sub: str) -> list[str]:
    if root is None:
        return []
    found: list[str] = []
    for pipeline in root.glob("*/"):
        folder = pipeline / sub
        if folder.is_dir():
            found.extend(p.name for p in folder.iterdir() if p.is_dir())
    return found


# -- crash points: the process SIGKILLs itself right after a chosen dlt internal returns ----

# Each names a step boundary inside dlt where a kill leaves a distinct on-disk state.
CRASH_POINTS = {
    # the extract package is committed; the local state file is not yet saved
    "after-extract-commit": "dlt.extract.extract:Extract.commit_packages",
    # the normalized package is renamed into load/; the extracted copy is not yet deleted
    "after-normalize-commit": (
        "dlt.common.storages.load_storage:LoadStorage.commit_new_load_package"
    ),
    # one data file is loaded into the warehouse, the rest of the package is not
    "after-first-copy-job": "dlt.destinations.impl.duckdb.duck:DuckDbCopyJob.run",
    # the warehouse committed the load (_dlt_loads row); the package is not archived yet
    "after-destination-commit": "dlt.destinations.job_client_impl:SqlJobClientBase.complete_load",
    # the package is archived as loaded
    "after-package-archived": "dlt.common.storages.load_storage:LoadStorage.complete_load_package",
}

_SHIM = """
import os
_spec = os.environ.get("RELIABILITY_CRASH_AT")
if _spec:
    import importlib, signal
    _module, _, _qual = _spec.partition(":")
    _nth = int(os.environ.get("RELIABILITY_CRASH_NTH", "1"))
    _match = os.environ.get("RELIABILITY_CRASH_MATCH", "")
    _owner_name, _, _attr = _qual.rpartition(".")
    _owner = importlib.import_module(_module)
    for _part in filter(None, _owner_name.split(".")):
        _owner = getattr(_owner, _part)
    _original = getattr(_owner, _attr)
    _calls = [0]

    def _crashing(*args, **kwargs):
        result = _original(*args, **kwargs)
        seen = " ".join(str(getattr(a, "_file_path", a)) for a in args)
        if _match not in seen:
            return result
        _calls[0] += 1
        if _calls[0] == _nth:
            os.kill(os.getpid(), signal.SIGKILL)
        return result

    setattr(_owner, _attr, _crashing)
"""


def crash_env(etl: Etl, point: str, nth: int = 1, match: str = "") -> dict[str, str]:
    """Environment for a CLI subprocess that kills itself at a dlt step boundary: right
    after the `nth` call of that point whose arguments (or job file) mention `match`."""
    shim = etl.tmp / "crash-shim"
    shim.mkdir(exist_ok=True)
    (shim / "sitecustomize.py").write_text(_SHIM)
    path = os.pathsep.join(p for p in (str(shim), os.environ.get("PYTHONPATH", "")) if p)
    return cli_env(
        etl,
        PYTHONPATH=path,
        RELIABILITY_CRASH_AT=CRASH_POINTS[point],
        RELIABILITY_CRASH_NTH=str(nth),
        RELIABILITY_CRASH_MATCH=match,
    )


# -- the pipeline working directory and dlt state ------------------------------------------


def pipeline_dir(etl: Etl) -> Path:
    """This warehouse's dlt working directory (several warehouses may share `tmp/pl`)."""
    from pipelines.target import Target

    return etl.tmp / "pl" / Target(duckdb_path=str(etl.db_path)).name


def local_state(etl: Etl) -> dict[str, Any]:
    return json.loads((pipeline_dir(etl) / "state.json").read_text())


def sync_states(state: dict[str, Any]) -> dict[str, Any]:
    resources = state.get("sources", {}).get("polytomic", {}).get("resources", {})
    return resources.get("bulk_sync_executions", {}).get("syncs", {})


def destination_state(etl: Etl) -> dict[str, Any]:
    """The pipeline state a run restores from the warehouse when its working dir is lost."""
    from dlt.common.versioned_state import decompress_state

    # dlt's own restore query: the newest state of a load the warehouse marked complete
    rows = etl.query(
        "SELECT s.state FROM polytomic._dlt_pipeline_state AS s JOIN polytomic._dlt_loads AS l "
        "ON l.load_id = s._dlt_load_id WHERE l.status = 0 ORDER BY l.load_id DESC LIMIT 1"
    )
    return decompress_state(rows[0][0]) if rows else {}


def pending_packages(etl: Etl) -> list[str]:
    root = pipeline_dir(etl)
    found = []
    for sub in ("normalize/extracted", "load/new", "load/normalized"):
        folder = root / sub
        if folder.is_dir():
            found.extend(p.name for p in folder.iterdir() if p.is_dir())
    return sorted(found)


def duckdb_opens(path: Path) -> bool:
    with duckdb.connect(str(path), read_only=True) as con:
        con.execute("SELECT 1").fetchall()
    return True


# -- the real API, read directly -----------------------------------------------------------


def terminal_pages(sb: Sandbox, sync_id: str) -> list[dict[str, Any]]:
    """The pages of the walk the product makes (`only_terminal`, ascending, limit 100)."""
    pages, token = [], None
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {sb.api_key}"
    while True:
        params: dict[str, Any] = {"only_terminal": "true", "ascending": "true", "limit": 100}
        if token:
            params["page_token"] = token
        body = session.get(
            f"{sb.base_url}/api/bulk/syncs/{sync_id}/executions", params=params, timeout=10
        ).json()
        pages.append(body)
        token = (body.get("pagination") or {}).get("next_page_token")
        if not token:
            return pages


# -- a process holding the DuckDB file -----------------------------------------------------

_HOLDER = """
import sys, time, duckdb
con = duckdb.connect(sys.argv[1])
con.execute("SELECT count(*) FROM information_schema.tables").fetchall()
print("held", flush=True)
sys.stdin.readline()
con.close()
"""


@contextlib.contextmanager
def duckdb_held(path: Path) -> Iterator[Any]:
    """Another process opens the warehouse read-write, as a user's `duckdb` CLI would."""
    proc = subprocess.Popen(
        [sys.executable, "-c", _HOLDER, str(path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        line = proc.stdout.readline()
        assert line.strip() == "held", proc.stderr.read()
        yield proc
    finally:
        release(proc)


def release(proc: Any) -> None:
    if proc.poll() is None:
        with contextlib.suppress(BrokenPipeError, OSError):
            proc.stdin.write("\n")
            proc.stdin.flush()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


# -- secrets -------------------------------------------------------------------------------


def readable_bytes(path: Path) -> bytes:
    """A file's bytes, plus its decompressed or decoded text where it has one."""
    data = path.read_bytes()
    parts = [data]
    if data[:2] == b"\x1f\x8b":
        with contextlib.suppress(OSError, EOFError):
            parts.append(gzip.decompress(data))
    if path.suffix == ".parquet":
        import pyarrow.parquet as pq

        parts.append(json.dumps(pq.read_table(path).to_pylist(), default=str).encode())
    if path.name == "state.json" or path.suffix == ".json":
        with contextlib.suppress(ValueError):
            parts.append(json.dumps(json.loads(data)).encode())
    return b"\n".join(parts)


def files_containing(root: Path, needles: list[str]) -> list[tuple[str, str]]:
    found = []
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        blob = readable_bytes(path)
        for needle in needles:
            if needle.encode() in blob:
                found.append((str(path.relative_to(root)), needle[:6] + "…"))
    return found


def warehouse_text(db_path: Path, schema: str = "polytomic") -> str:
    """Every value of every table in the dataset, as text, with decoded pipeline state."""
    from dlt.common.versioned_state import decompress_state

    chunks: list[str] = []
    with duckdb.connect(str(db_path), read_only=True) as con:
        tables = con.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = ?", [schema]
        ).fetchall()
        for (table,) in tables:
            rows = con.execute(f'SELECT * FROM {schema}."{table}"').fetchall()
            chunks.append(json.dumps(rows, default=str))
            if table == "_dlt_pipeline_state":
                for (state,) in con.execute(f"SELECT state FROM {schema}.{table}").fetchall():
                    chunks.append(json.dumps(decompress_state(state)))
    return "\n".join(chunks)


TERMINAL = frozenset({"completed", "failed", "canceled", "errors", "interrupted"})


def assert_state_not_ahead_of_data(etl: Etl) -> int:
    """Every terminal execution at or before a sync's committed cursor is in the warehouse.

    Reads the state the warehouse holds (what a run restores), so a cursor that ran ahead of
    its rows shows up as a missing execution. Returns how many syncs had a cursor.
    """
    from sources.polytomic.records import parse_ts

    if not etl.db_path.exists():
        return 0
    tables = {r[0] for r in etl.query("SELECT table_name FROM information_schema.tables")}
    if "_dlt_pipeline_state" not in tables:
        return 0
    cursors = {
        sync_id: parse_ts(s.get("cursor"))
        for sync_id, s in sync_states(destination_state(etl)).items()
        if s.get("cursor")
    }
    loaded = etl.executions() if "bulk_sync_executions" in tables else {}
    for ex in etl.sandbox.truth_executions():
        cursor = cursors.get(ex["bulk_sync_id"])
        if cursor is None or ex["status"] not in TERMINAL:
            continue
        if parse_ts(ex["updated_at"]) <= cursor:
            assert ex["id"] in loaded, (
                f"state ran ahead of the data: sync {ex['bulk_sync_id']} cursor {cursor} but "
                f"execution {ex['id']} updated {ex['updated_at']} is not in the warehouse"
            )
    return len(cursors)


# -- a TCP forwarder that can be switched off and on: a database going down and back -----


class TcpForwarder:
    """Listens on a fixed loopback port and forwards to `target` while it is up."""

    def __init__(self, target: tuple[str, int]) -> None:
        import socket

        self.target = target
        probe = socket.socket()
        probe.bind(("127.0.0.1", 0))
        self.port = probe.getsockname()[1]
        probe.close()  # nothing listens here until start(): connections are refused
        self._server: Any = None
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        import socket

        server = socket.socket()
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        server.bind(("127.0.0.1", self.port))
        server.listen(16)
        self._server = server
        thread = threading.Thread(target=self._accept, args=(server,), daemon=True)
        thread.start()

    def stop(self) -> None:
        if self._server is not None:
            with contextlib.suppress(OSError):
                self._server.close()
            self._server = None

    def _accept(self, server: Any) -> None:
        import socket

        while True:
            try:
                client, _ = server.accept()
            except OSError:
                return
            upstream = socket.create_connection(self.target, timeout=10)
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(source: Any, sink: Any) -> None:
        try:
            while chunk := source.recv(65536):
                sink.sendall(chunk)
        except OSError:
            pass
        finally:
            for sock in (source, sink):
                with contextlib.suppress(OSError):
                    sock.close()


# Fields only some executions carry (Go's omitempty): `version` appears on newer ones only.
OPTIONAL_FIELDS = ("version", "type", "status_message")


def assert_optional_fields_match(etl: Etl, sync_ids: set[str] | None = None) -> None:
    """Every execution keeps the fields it has, even when other rows of its page lack them."""
    loaded = etl.executions()
    for want in etl.sandbox.truth_executions():
        if sync_ids is not None and want["bulk_sync_id"] not in sync_ids:
            continue
        got = loaded[want["id"]]
        for name in OPTIONAL_FIELDS:
            assert got.get(name) == want.get(name), (want["id"], name, got.get(name))


def assert_equal_to_truth_except(etl: Etl, excluded: set[str]) -> None:
    """`assert_matches_truth`, leaving out executions a test deliberately corrupted."""
    assert_matches_truth(etl, exclude=excluded)
