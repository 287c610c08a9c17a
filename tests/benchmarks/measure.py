"""The harness: one measured child process, the sandbox in its own process, the contestants.

Every contestant runs as its own subprocess, started from a fresh working directory, and is
reaped with `os.wait4`, which gives that child's own user+sys CPU and peak RSS (`ru_maxrss`
is the largest of the child and any process it waited for, i.e. its largest process). Each
sandbox runs in a process of its own (`sandbox_proc.py`), warmed before any timing, so its
CPU and memory are charged to no contestant; its CPU per run is still reported as context.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
import urllib.request
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
PY = sys.executable
CLK_TCK = os.sysconf("SC_CLK_TCK")

# How the rest_api contestant is tuned, beyond its source config (see rest_api_contestant.py).
# From dlt's performance guide (`reference/performance.md`): uncompressed intermediate files,
# and parallel normalize, which needs extract file rotation to have files to share out. On
# 20 x 5,000 this combination gave rest_api its lowest CPU of the four variants tried
# (defaults, each lever alone, both): 62 s vs 73 s CPU with the defaults.
REST_API_ENV: dict[str, str] = {
    "DATA_WRITER__DISABLE_COMPRESSION": "true",
    "NORMALIZE__WORKERS": "2",
    "EXTRACT__DATA_WRITER__FILE_MAX_ITEMS": "20000",
}
# Environment prefixes that would change how any contestant behaves; never inherited. A
# contestant's configuration is passed explicitly (`--env` of the suite, for polytomic-etl).
SCRUB = ("SOURCES__", "DESTINATION__", "NORMALIZE__", "EXTRACT__", "LOAD__", "DATA_WRITER__")
SCRUB += ("RUNTIME__", "DLT_")

PRODUCT = "polytomic-etl"
CONTESTANTS = (PRODUCT, "rest_api", "raw_floor")
METRICS = ("wall_s", "cpu_s", "peak_rss_mb")


class _Log:
    """Progress lines on stdout, unless the suite runs quietly (the smoke test)."""

    quiet = False

    def __call__(self, text: str) -> None:
        if not self.quiet:
            print(text, flush=True)


log = _Log()


# -- measuring one child ------------------------------------------------------------------


@dataclass
class Measurement:
    wall_s: float
    user_s: float
    sys_s: float
    cpu_s: float
    peak_rss_mb: float
    returncode: int
    output: dict[str, Any] = field(default_factory=dict)
    stderr_tail: str = ""


def measure(cmd: list[str], env: dict[str, str], cwd: Path) -> Measurement:
    """Run `cmd` to completion; wall from spawn to reap, CPU and peak RSS from `wait4`."""
    out_path, err_path = cwd / "stdout.txt", cwd / "stderr.txt"
    with out_path.open("wb") as out, err_path.open("wb") as err:
        started = time.perf_counter()
        proc = subprocess.Popen(cmd, env=env, cwd=cwd, stdout=out, stderr=err)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    lines = [ln for ln in out_path.read_text().splitlines() if ln.strip()]
    output: dict[str, Any] = {}
    if lines:
        with contextlib.suppress(ValueError):
            output = json.loads(lines[-1])
    return Measurement(
        wall_s=wall,
        user_s=usage.ru_utime,
        sys_s=usage.ru_stime,
        cpu_s=usage.ru_utime + usage.ru_stime,
        peak_rss_mb=usage.ru_maxrss / 1024,  # Linux reports KiB
        returncode=proc.returncode,
        output=output,
        stderr_tail=err_path.read_text(errors="replace")[-2000:],
    )


# -- the sandbox in its own process -----------------------------------------------------------


class SandboxProcess:
    """`sandbox_proc.py` as a child; it serves until we close its stdin."""

    def __init__(self, syncs: int, executions: int, latency_ms: float = 0.0, seed: int = 1):
        cmd = [PY, str(HERE / "sandbox_proc.py"), "--seed", str(seed), "--syncs", str(syncs)]
        cmd += ["--executions", str(executions), "--latency-ms", str(latency_ms)]
        self.syncs, self.executions = syncs, executions
        self.latency_ms = latency_ms
        self.label = f"{syncs}x{executions}" + (f" +{latency_ms:g}ms" if latency_ms else "")
        started = time.perf_counter()
        self.proc = subprocess.Popen(
            cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=clean_env(), text=True
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            self.proc.wait()
            raise RuntimeError(f"sandbox {self.label} did not start (exit {self.proc.returncode})")
        info = json.loads(line)
        self.base_url: str = info["base_url"]
        self.api_key: str = info["api_key"]
        self.truth: dict[str, int] = info["truth"]
        self.setup_s = time.perf_counter() - started
        log(f"  sandbox {self.label} ready in {self.setup_s:.1f}s at {self.base_url}")

    def _admin(self, method: str, action: str, body: dict[str, Any] | None = None) -> Any:
        req = urllib.request.Request(f"{self.base_url}/_sandbox/{action}", method=method)
        if method == "POST":
            req.data = json.dumps(body or {}).encode()
        with urllib.request.urlopen(req, timeout=30) as resp:
            return json.loads(resp.read())

    def reset(self) -> None:
        self._admin("POST", "reset")

    def stats(self) -> dict[str, Any]:
        return self._admin("GET", "stats")

    def set_latency(self, latency_ms: float) -> None:
        """Added to every API request from now on (the sandbox's `latency_ms` option)."""
        self._admin("POST", "configure", {"latency_ms": latency_ms})
        self.latency_ms = latency_ms

    def cpu_s(self) -> float:
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime, stime

    def close(self) -> None:
        if self.proc.poll() is None:
            assert self.proc.stdin is not None
            self.proc.stdin.close()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.terminate()
                self.proc.wait(timeout=30)

    def __enter__(self) -> SandboxProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# -- contestants --------------------------------------------------------------------------------


def clean_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(SCRUB)}
    env["RUNTIME__DLTHUB_TELEMETRY"] = "false"
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


def _bin(name: str) -> str:
    local = Path(PY).parent / name
    found = str(local) if local.exists() else shutil.which(name)
    if not found:
        raise RuntimeError(f"{name} is not installed: run `make install` first")
    return found


def product_cmd(workdir: Path) -> list[str]:
    """The command every polytomic-etl run of the suite uses (also what to profile)."""
    db, pipelines = str(workdir / "warehouse.duckdb"), str(workdir / "pipelines")
    return [_bin("polytomic-etl"), "run", "--duckdb", db, "--pipelines-dir", pipelines, "--json"]


def contestant_cmd(name: str, workdir: Path) -> tuple[list[str], dict[str, str]]:
    db = str(workdir / "warehouse.duckdb")
    pipelines = str(workdir / "pipelines")
    if name == PRODUCT:
        return product_cmd(workdir), {}
    if name == "rest_api":
        script = str(HERE / "rest_api_contestant.py")
        return [PY, script, "--duckdb", db, "--pipelines-dir", pipelines], dict(REST_API_ENV)
    if name == "raw_floor":
        return [PY, str(HERE / "raw_floor.py"), "--duckdb", db], {}
    raise ValueError(name)


@dataclass
class Run:
    contestant: str
    wall_s: float
    cpu_s: float
    user_s: float
    sys_s: float
    peak_rss_mb: float
    requests: int
    requests_by_kind: dict[str, int]
    sync_request_counts: dict[int, int]  # how many syncs made n requests: {n: syncs}
    sandbox_cpu_s: float
    foreign_cpu_s: float
    executions: int
    schema_rows: int
    rows_ok: bool
    output: dict[str, Any]


def run_contestant(
    name: str,
    sandbox: SandboxProcess,
    workdir: Path,
    extra_env: dict[str, str] | None = None,
    expect: str = "first_load",
) -> Run:
    """One measured run in `workdir` (kept between runs when the caller reuses it)."""
    workdir.mkdir(parents=True, exist_ok=True)
    cmd, env_extra = contestant_cmd(name, workdir)
    env = clean_env()
    env.update(
        {
            "SOURCES__POLYTOMIC__API_KEY": sandbox.api_key,
            "SOURCES__POLYTOMIC__BASE_URL": sandbox.base_url,
            **env_extra,
            **(extra_env or {}),
        }
    )
    sandbox.reset()
    cpu_before, busy_before = sandbox.cpu_s(), machine_busy_s()
    m = measure(cmd, env, workdir)
    sandbox_cpu = sandbox.cpu_s() - cpu_before
    # CPU that neither the contestant nor the sandbox used: other work on the machine that
    # competed with this run. Large values mean the wall time of this run is inflated.
    foreign = max(0.0, machine_busy_s() - busy_before - m.cpu_s - sandbox_cpu)
    if m.returncode != 0:
        raise RuntimeError(f"{name} exited {m.returncode}:\n{m.stderr_tail}")
    stats = sandbox.stats()
    executions, schema_rows = warehouse_counts(workdir / "warehouse.duckdb")
    truth = sandbox.truth
    if expect == "first_load":
        # The product also loads in-flight executions (its snapshot); the others walk
        # `only_terminal` only. Either way every terminal execution must be there.
        rows_ok = (
            truth["terminal_executions"] <= executions <= truth["executions"]
            and truth["terminal_schema_rows"] <= schema_rows <= truth["schema_rows"]
        )
    else:
        rows_ok = executions >= truth["terminal_executions"]
    if not rows_ok:
        log(f"  WARNING {name}: loaded {executions}/{schema_rows} rows, truth {truth}")
    run = Run(
        contestant=name,
        wall_s=m.wall_s,
        cpu_s=m.cpu_s,
        user_s=m.user_s,
        sys_s=m.sys_s,
        peak_rss_mb=m.peak_rss_mb,
        requests=int(stats["total"]),
        requests_by_kind={str(k): int(v) for k, v in stats.get("by_kind", {}).items()},
        sync_request_counts=dict(sorted(Counter(stats.get("by_sync", {}).values()).items())),
        sandbox_cpu_s=sandbox_cpu,
        foreign_cpu_s=foreign,
        executions=executions,
        schema_rows=schema_rows,
        rows_ok=rows_ok,
        output=m.output,
    )
    return run


def machine_busy_s() -> float:
    """Busy CPU seconds of the whole machine so far (all cores), from /proc/stat."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    return (sum(fields[:8]) - idle) / CLK_TCK


def warehouse_counts(db: Path) -> tuple[int, int]:
    import duckdb

    with duckdb.connect(str(db), read_only=True) as con:
        counts = [
            con.execute(f"SELECT count(*) FROM polytomic.{table}").fetchone()[0]
            for table in ("bulk_sync_executions", "bulk_sync_executions__schemas")
        ]
    executions, schemas = counts
    return int(executions), int(schemas)


# -- medians ------------------------------------------------------------------------------------


def median(runs: list[Run], metric: str) -> float:
    return statistics.median(getattr(r, metric) for r in runs)


def summary(runs: list[Run]) -> dict[str, Any]:
    """Medians of `runs` (and each run's own figures), as they go into the results file."""
    out: dict[str, Any] = {m: median(runs, m) for m in (*METRICS, "user_s", "sys_s")}
    out["requests"] = int(statistics.median(r.requests for r in runs))
    out["requests_by_kind"] = runs[-1].requests_by_kind
    out["sync_request_counts"] = runs[-1].sync_request_counts
    out["sandbox_cpu_s"] = median(runs, "sandbox_cpu_s")
    out["foreign_cpu_s"] = median(runs, "foreign_cpu_s")
    out["executions"] = runs[-1].executions
    out["schema_rows"] = runs[-1].schema_rows
    out["rows_ok"] = all(r.rows_ok for r in runs)
    out["reps"] = len(runs)
    keys = (*METRICS, "requests", "foreign_cpu_s")
    out["runs"] = [{k: getattr(r, k) for k in keys} for r in runs]
    return out


def fmt_run(r: Run) -> str:
    return (
        f"wall {r.wall_s:6.2f}s cpu {r.cpu_s:6.2f}s rss {r.peak_rss_mb:5.0f}MB "
        f"req {r.requests:5d} rows {r.executions}/{r.schema_rows} "
        f"(sandbox cpu {r.sandbox_cpu_s:.1f}s, foreign cpu {r.foreign_cpu_s:.1f}s)"
    )
