"""The benchmark suite of issue 6: B1-B4, contestants alternated, medians, ratios, goals.

    python -m tests.benchmarks.suite            # full sizes (what `make bench` runs)
    python -m tests.benchmarks.suite --tiny     # seconds; what the smoke test runs
    python -m tests.benchmarks.suite --only B1,B3 --reps 1 --out /tmp/b.json

Every contestant runs as its own subprocess, started from a fresh working directory, and is
reaped with `os.wait4`, which gives that child's own user+sys CPU and peak RSS (`ru_maxrss`
is the largest of the child and any process it waited for, i.e. its largest process). Each
sandbox runs in a process of its own (`sandbox_proc.py`), warmed before any timing, so its
CPU and memory are charged to no contestant; its CPU per run is still reported as context.

Writes `bench-results.json` at the repository root (or `--out`) and prints Markdown tables.
Nothing here asserts a speed: goals are evaluated and printed, never enforced.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import math
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
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
# Environment prefixes that would change how any contestant behaves; never inherited.
_SCRUB = ("SOURCES__", "DESTINATION__", "NORMALIZE__", "EXTRACT__", "LOAD__", "DATA_WRITER__")
_SCRUB += ("RUNTIME__", "DLT_")

CONTESTANTS = ("polytomic-etl", "rest_api", "raw_floor")


@dataclass
class Sizes:
    name: str
    b1: tuple[int, int]  # syncs x executions per sync
    b1_reps: int
    b2_histories: tuple[int, ...]
    b2_reps: int
    b3: tuple[int, int]
    b3_latency_ms: float
    b3_reps: int
    b4_small: tuple[int, int]
    b4_large: tuple[int, int]
    b4_reps_small: int
    b4_reps_large: int


FULL = Sizes(
    name="full",
    b1=(20, 5_000),
    b1_reps=3,
    b2_histories=(1_000, 10_000, 100_000),
    b2_reps=3,
    b3=(20, 500),
    b3_latency_ms=100.0,
    b3_reps=3,
    b4_small=(20, 1_000),
    b4_large=(20, 10_000),
    b4_reps_small=2,
    b4_reps_large=1,  # a 200k first load takes minutes; one run keeps `make bench` < 25 min
)
TINY = Sizes(
    name="tiny",
    b1=(2, 50),
    b1_reps=1,
    b2_histories=(50, 200),
    b2_reps=1,
    b3=(2, 50),
    b3_latency_ms=10.0,
    b3_reps=1,
    b4_small=(2, 50),
    b4_large=(2, 200),
    b4_reps_small=1,
    b4_reps_large=1,
)


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
        self.label = f"{syncs}x{executions}" + (f" +{latency_ms:g}ms" if latency_ms else "")
        started = time.perf_counter()
        self.proc = subprocess.Popen(
            cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=_clean_env(), text=True
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
        _log(f"  sandbox {self.label} ready in {self.setup_s:.1f}s at {self.base_url}")

    def _admin(self, method: str, action: str) -> dict[str, Any]:
        req = urllib.request.Request(f"{self.base_url}/_sandbox/{action}", method=method)
        if method == "POST":
            req.data = b"{}"
        with urllib.request.urlopen(req, timeout=30) as resp:
            return json.loads(resp.read())

    def reset(self) -> None:
        self._admin("POST", "reset")

    def stats(self) -> dict[str, Any]:
        return self._admin("GET", "stats")

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


def _clean_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(_SCRUB)}
    env["RUNTIME__DLTHUB_TELEMETRY"] = "false"
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


def _bin(name: str) -> str:
    local = Path(PY).parent / name
    found = str(local) if local.exists() else shutil.which(name)
    if not found:
        raise RuntimeError(f"{name} is not installed: run `make install` first")
    return found


def contestant_cmd(name: str, workdir: Path) -> tuple[list[str], dict[str, str]]:
    db = str(workdir / "warehouse.duckdb")
    pipelines = str(workdir / "pipelines")
    if name == "polytomic-etl":
        cmd = [_bin("polytomic-etl"), "run", "--duckdb", db, "--pipelines-dir", pipelines]
        return [*cmd, "--json"], {}
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
    env = _clean_env()
    env.update(
        {
            "SOURCES__POLYTOMIC__API_KEY": sandbox.api_key,
            "SOURCES__POLYTOMIC__BASE_URL": sandbox.base_url,
            **env_extra,
            **(extra_env or {}),
        }
    )
    sandbox.reset()
    cpu_before, busy_before = sandbox.cpu_s(), _machine_busy_s()
    m = measure(cmd, env, workdir)
    sandbox_cpu = sandbox.cpu_s() - cpu_before
    # CPU that neither the contestant nor the sandbox used: other work on the machine that
    # competed with this run. Large values mean the wall time of this run is inflated.
    foreign = max(0.0, _machine_busy_s() - busy_before - m.cpu_s - sandbox_cpu)
    if m.returncode != 0:
        raise RuntimeError(f"{name} exited {m.returncode}:\n{m.stderr_tail}")
    stats = sandbox.stats()
    executions, schema_rows = _warehouse_counts(workdir / "warehouse.duckdb")
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
        _log(f"  WARNING {name}: loaded {executions}/{schema_rows} rows, truth {truth}")
    return Run(
        contestant=name,
        wall_s=m.wall_s,
        cpu_s=m.cpu_s,
        user_s=m.user_s,
        sys_s=m.sys_s,
        peak_rss_mb=m.peak_rss_mb,
        requests=int(stats["total"]),
        sandbox_cpu_s=sandbox_cpu,
        foreign_cpu_s=foreign,
        executions=executions,
        schema_rows=schema_rows,
        rows_ok=rows_ok,
        output=m.output,
    )


def _machine_busy_s() -> float:
    """Busy CPU seconds of the whole machine so far (all cores), from /proc/stat."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    return (sum(fields[:8]) - idle) / CLK_TCK


def _warehouse_counts(db: Path) -> tuple[int, int]:
    import duckdb

    with duckdb.connect(str(db), read_only=True) as con:
        counts = [
            con.execute(f"SELECT count(*) FROM polytomic.{table}").fetchone()[0]
            for table in ("bulk_sync_executions", "bulk_sync_executions__schemas")
        ]
    executions, schemas = counts
    return int(executions), int(schemas)


# -- the benchmarks ---------------------------------------------------------------------------

METRICS = ("wall_s", "cpu_s", "peak_rss_mb")


def _median(runs: list[Run], metric: str) -> float:
    return statistics.median(getattr(r, metric) for r in runs)


def _summary(runs: list[Run]) -> dict[str, Any]:
    out: dict[str, Any] = {m: _median(runs, m) for m in (*METRICS, "user_s", "sys_s")}
    out["requests"] = int(statistics.median(r.requests for r in runs))
    out["sandbox_cpu_s"] = _median(runs, "sandbox_cpu_s")
    out["foreign_cpu_s"] = _median(runs, "foreign_cpu_s")
    out["executions"] = runs[-1].executions
    out["schema_rows"] = runs[-1].schema_rows
    out["rows_ok"] = all(r.rows_ok for r in runs)
    out["reps"] = len(runs)
    keys = (*METRICS, "requests", "foreign_cpu_s")
    out["runs"] = [{k: getattr(r, k) for k in keys} for r in runs]
    return out


def bench_b1(sizes: Sizes, tmp: Path, reps: int | None) -> dict[str, Any]:
    syncs, per_sync = sizes.b1
    reps = reps or sizes.b1_reps
    _log(f"B1: full first load, {syncs} x {per_sync}, {reps} rep(s), contestants alternated")
    runs: dict[str, list[Run]] = {c: [] for c in CONTESTANTS}
    with SandboxProcess(syncs, per_sync) as sb:
        for rep in range(reps):
            order = CONTESTANTS[rep % 3 :] + CONTESTANTS[: rep % 3]  # rotate who goes first
            for name in order:
                workdir = tmp / f"b1-{name}-{rep}"
                run = run_contestant(name, sb, workdir)
                shutil.rmtree(workdir, ignore_errors=True)
                runs[name].append(run)
                _log(f"  rep {rep + 1} {name:14s} {_fmt_run(run)}")
        truth = sb.truth
    medians = {name: _summary(rs) for name, rs in runs.items()}
    ratios = {
        metric: {
            a: {b: medians[a][metric] / medians[b][metric] for b in CONTESTANTS}
            for a in CONTESTANTS
        }
        for metric in METRICS
    }
    return {
        "syncs": syncs,
        "executions_per_sync": per_sync,
        "truth": truth,
        "reps": reps,
        "rest_api_env": REST_API_ENV,
        "contestants": medians,
        "ratios": ratios,
    }


def bench_b2(sizes: Sizes, tmp: Path, reps: int | None) -> dict[str, Any]:
    reps = reps or sizes.b2_reps
    _log(f"B2: idle incremental run on one sync, histories {sizes.b2_histories}, {reps} rep(s)")
    results: dict[str, Any] = {}
    for history in sizes.b2_histories:
        with SandboxProcess(1, history) as sb:
            workdir = tmp / f"b2-{history}"
            first = run_contestant("polytomic-etl", sb, workdir)
            _log(f"  {history:>7} first load  {_fmt_run(first)}")
            idle: list[Run] = []
            for rep in range(reps):
                run = run_contestant("polytomic-etl", sb, workdir, expect="idle")
                idle.append(run)
                _log(f"  {history:>7} idle rep {rep + 1} {_fmt_run(run)}")
            stats = sb.stats()
            shutil.rmtree(workdir, ignore_errors=True)
        summary = _summary(idle)
        # `list_syncs` is one request per run, not per sync; the rest is the sync's own cost.
        by_kind = stats.get("by_kind", {})
        summary["requests_by_kind"] = by_kind
        summary["requests_per_sync"] = sum(v for k, v in by_kind.items() if k != "list_syncs")
        summary["rows_reloaded"] = idle[-1].output.get("executions", 0)
        summary["first_load"] = {m: getattr(first, m) for m in (*METRICS, "requests")}
        results[str(history)] = summary
    walls = [results[str(h)]["wall_s"] for h in sizes.b2_histories]
    per_sync = [results[str(h)]["requests_per_sync"] for h in sizes.b2_histories]
    return {
        "histories": list(sizes.b2_histories),
        "reps": reps,
        "by_history": results,
        "wall_ratio_largest_to_smallest": walls[-1] / walls[0],
        "requests_per_sync_max": max(per_sync),
        "requests_flat": len(set(per_sync)) == 1,
    }


def bench_b3(sizes: Sizes, tmp: Path, reps: int | None) -> dict[str, Any]:
    syncs, per_sync = sizes.b3
    latency = sizes.b3_latency_ms
    reps = reps or sizes.b3_reps
    concurrency, source = _concurrency(B3_CONCURRENCY)
    env = {"SOURCES__POLYTOMIC__CONCURRENCY": str(B3_CONCURRENCY)} if B3_CONCURRENCY else {}
    _log(f"B3: latency-bound first load, {syncs} x {per_sync}, +{latency:g} ms, {reps} rep(s)")
    runs: list[Run] = []
    with SandboxProcess(syncs, per_sync, latency_ms=latency) as sb:
        for rep in range(reps):
            workdir = tmp / f"b3-{rep}"
            run = run_contestant("polytomic-etl", sb, workdir, extra_env=env)
            shutil.rmtree(workdir, ignore_errors=True)
            runs.append(run)
            _log(f"  rep {rep + 1} {_fmt_run(run)}")
    summary = _summary(runs)
    bound = summary["requests"] * latency / 1000 / concurrency
    in_process = statistics.median(float(r.output.get("seconds", 0.0)) for r in runs)
    return {
        "syncs": syncs,
        "executions_per_sync": per_sync,
        "latency_ms": latency,
        "concurrency": concurrency,
        "concurrency_source": source,
        "reps": reps,
        "polytomic-etl": summary,
        "bound_s": bound,
        "wall_over_bound": summary["wall_s"] / bound,
        "run_seconds_in_process": in_process,
        "in_process_over_bound": in_process / bound,
    }


def _concurrency(override: int | None) -> tuple[int, str]:
    """The concurrency the product's run uses: `SOURCES__POLYTOMIC__CONCURRENCY` when the suite
    sets it (`--concurrency`), else the source's default."""
    if override:
        return override, "SOURCES__POLYTOMIC__CONCURRENCY"
    from sources.polytomic import settings

    return int(settings.DEFAULT_CONCURRENCY), "default"


def bench_b4(sizes: Sizes, tmp: Path, reps: int | None) -> dict[str, Any]:
    _log("B4: peak RSS of the loader during a first load, small vs large history")
    cases = (
        (sizes.b4_small, reps or sizes.b4_reps_small),
        (sizes.b4_large, reps or sizes.b4_reps_large),
    )
    results: dict[str, Any] = {}
    totals = []
    for (syncs, per_sync), n in cases:
        total = syncs * per_sync
        totals.append(total)
        runs = []
        with SandboxProcess(syncs, per_sync) as sb:
            for rep in range(n):
                workdir = tmp / f"b4-{total}-{rep}"
                run = run_contestant("polytomic-etl", sb, workdir)
                shutil.rmtree(workdir, ignore_errors=True)
                runs.append(run)
                _log(f"  {total:>7} rep {rep + 1} {_fmt_run(run)}")
        results[str(total)] = {"syncs": syncs, "executions_per_sync": per_sync, **_summary(runs)}
    small, large = (results[str(t)]["peak_rss_mb"] for t in totals)
    growth = large / small
    return {
        "executions": totals,
        "by_executions": results,
        "rss_growth": growth,
        "executions_growth": totals[1] / totals[0],
        # log-log slope: 1.0 is linear growth, 0 is flat
        "rss_scaling_exponent": math.log(growth) / math.log(totals[1] / totals[0]),
    }


# -- goals and tables --------------------------------------------------------------------------

FLAT_WALL = 1.25  # B2 "flat": wall at the largest history within 25 % of the smallest
SUBLINEAR_EXPONENT = 0.5  # B4 "clearly sub-linear": RSS grows at most like sqrt(executions)


def goals(results: dict[str, Any], sizes: Sizes) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []

    def goal(bench: str, text: str, value: float | None, limit: float, met: bool | None) -> None:
        out.append({"bench": bench, "goal": text, "measured": value, "limit": limit, "met": met})

    if "B1" in results:
        wall = results["B1"]["ratios"]["wall_s"]["polytomic-etl"]
        goal("B1", "wall vs rest_api_source <= 0.67x", wall["rest_api"], 0.67, None)
        goal("B1", "wall vs raw floor <= 2x", wall["raw_floor"], 2.0, None)
    if "B2" in results:
        b2 = results["B2"]
        goal("B2", "requests per idle sync <= 2", b2["requests_per_sync_max"], 2, None)
        flat = 1.0 if b2["requests_flat"] else 0.0
        goal("B2", "requests flat from smallest to largest history (1 = yes)", flat, 1, None)
        text = f"idle wall flat: largest / smallest history <= {FLAT_WALL}"
        goal("B2", text, b2["wall_ratio_largest_to_smallest"], FLAT_WALL, None)
    if "B3" in results:
        goal("B3", "wall <= 1.3x latency bound", results["B3"]["wall_over_bound"], 1.3, None)
    if "B4" in results:
        b4 = results["B4"]
        large = results["B4"]["by_executions"][str(b4["executions"][1])]["peak_rss_mb"]
        goal("B4", f"peak RSS at {b4['executions'][1]:,} executions <= 400 MB", large, 400, None)
        text = f"RSS clearly sub-linear: log-log exponent <= {SUBLINEAR_EXPONENT}"
        goal("B4", text, b4["rss_scaling_exponent"], SUBLINEAR_EXPONENT, None)
    for g in out:
        g["met"] = g["measured"] is not None and g["measured"] <= g["limit"]
        if "flat from" in g["goal"]:
            g["met"] = g["measured"] >= 1
    if sizes.name != "full":
        for g in out:
            g["note"] = "tiny sizes: not comparable with the goals"
    return out


def tables(results: dict[str, Any]) -> str:
    lines: list[str] = []
    if "B1" in results:
        b1 = results["B1"]
        med = b1["contestants"]
        lines += [
            f"### B1: full first load, {b1['syncs']} syncs x {b1['executions_per_sync']:,} "
            f"executions (medians of {b1['reps']})",
            "",
            "| contestant | wall s | CPU s | peak RSS MB | requests | executions | schema rows |"
            " sandbox CPU s | foreign CPU s |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for name in CONTESTANTS:
            m = med[name]
            lines.append(
                f"| {name} | {m['wall_s']:.2f} | {m['cpu_s']:.2f} | {m['peak_rss_mb']:.0f} | "
                f"{m['requests']} | {m['executions']:,} | {m['schema_rows']:,} | "
                f"{m['sandbox_cpu_s']:.2f} | {m['foreign_cpu_s']:.2f} |"
            )
        lines += [
            "",
            "Ratios (row / column):",
            "",
            "| metric | contestant | ÷ polytomic-etl | ÷ rest_api | ÷ raw_floor |",
            "|---|---|---:|---:|---:|",
        ]
        for metric in METRICS:
            for a in CONTESTANTS:
                cells = " | ".join(f"{b1['ratios'][metric][a][b]:.2f}" for b in CONTESTANTS)
                lines.append(f"| {metric} | {a} | {cells} |")
        lines.append("")
    if "B2" in results:
        b2 = results["B2"]
        lines += [
            f"### B2: idle incremental run, one sync (medians of {b2['reps']})",
            "",
            "| history | requests | per sync | rows re-loaded | wall s | CPU s | peak RSS MB |"
            " first load wall s |",
            "|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for h in b2["histories"]:
            r = b2["by_history"][str(h)]
            lines.append(
                f"| {h:,} | {r['requests']} | {r['requests_per_sync']} | {r['rows_reloaded']} "
                f"| {r['wall_s']:.2f} | {r['cpu_s']:.2f} | {r['peak_rss_mb']:.0f} | "
                f"{r['first_load']['wall_s']:.2f} |"
            )
        lines.append("")
    if "B3" in results:
        b3 = results["B3"]
        p = b3["polytomic-etl"]
        lines += [
            f"### B3: latency-bound first load, {b3['syncs']} x {b3['executions_per_sync']}, "
            f"+{b3['latency_ms']:g} ms per request (medians of {b3['reps']})",
            "",
            "| requests | concurrency | bound s | wall s | wall / bound | run() s in process |"
            " in-process / bound |",
            "|---:|---:|---:|---:|---:|---:|---:|",
            f"| {p['requests']} | {b3['concurrency']} ({b3['concurrency_source']}) | "
            f"{b3['bound_s']:.2f} | {p['wall_s']:.2f} | {b3['wall_over_bound']:.2f} | "
            f"{b3['run_seconds_in_process']:.2f} | {b3['in_process_over_bound']:.2f} |",
            "",
        ]
    if "B4" in results:
        b4 = results["B4"]
        lines += [
            "### B4: peak RSS of the loader, first load",
            "",
            "| executions | syncs x per sync | peak RSS MB | wall s | CPU s | runs |",
            "|---:|---|---:|---:|---:|---:|",
        ]
        for total in b4["executions"]:
            r = b4["by_executions"][str(total)]
            lines.append(
                f"| {total:,} | {r['syncs']} x {r['executions_per_sync']:,} | "
                f"{r['peak_rss_mb']:.0f} | {r['wall_s']:.2f} | {r['cpu_s']:.2f} | {r['reps']} |"
            )
        lines += [
            "",
            f"RSS grows {b4['rss_growth']:.2f}x for {b4['executions_growth']:.0f}x executions "
            f"(log-log exponent {b4['rss_scaling_exponent']:.2f}).",
            "",
        ]
    if results.get("goals"):
        lines += ["### Goals", "", "| bench | goal | measured | met |", "|---|---|---:|---|"]
        for g in results["goals"]:
            lines.append(
                f"| {g['bench']} | {g['goal']} | {g['measured']:.2f} | "
                f"{'yes' if g['met'] else 'NO'} |"
            )
        lines.append("")
    return "\n".join(lines)


# -- entry point ------------------------------------------------------------------------------

BENCHES = {"B1": bench_b1, "B2": bench_b2, "B3": bench_b3, "B4": bench_b4}


def _fmt_run(r: Run) -> str:
    return (
        f"wall {r.wall_s:6.2f}s cpu {r.cpu_s:6.2f}s rss {r.peak_rss_mb:5.0f}MB "
        f"req {r.requests:5d} rows {r.executions}/{r.schema_rows} "
        f"(sandbox cpu {r.sandbox_cpu_s:.1f}s, foreign cpu {r.foreign_cpu_s:.1f}s)"
    )


_QUIET = False
B3_CONCURRENCY: int | None = None  # `--concurrency`: set SOURCES__POLYTOMIC__CONCURRENCY in B3


def _log(text: str) -> None:
    if not _QUIET:
        print(text, flush=True)


def code_fingerprint() -> str:
    """A hash of the code the contestants run. The package is installed in editable mode, so
    an edit to `sources/` or `pipelines/` during the suite changes what later runs measure."""
    digest = hashlib.sha256()
    for folder in ("sources", "pipelines"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            digest.update(str(path.relative_to(ROOT)).encode())
            with contextlib.suppress(OSError):
                digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


def _meta(sizes: Sizes) -> dict[str, Any]:
    from importlib.metadata import version

    def _git() -> str | None:
        with contextlib.suppress(Exception):
            out = subprocess.run(
                ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
            )
            dirty = subprocess.run(
                ["git", "status", "--porcelain", "--untracked-files=no"],
                cwd=ROOT,
                capture_output=True,
                text=True,
            )
            return out.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")
        return None

    mem_kb = 0
    with contextlib.suppress(OSError, ValueError, IndexError):
        mem_kb = int(Path("/proc/meminfo").read_text().split()[1])
    return {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "sizes": asdict(sizes),
        "cpus": os.cpu_count(),
        "memory_gb": round(mem_kb / 1024 / 1024, 1),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "dlt": version("dlt"),
        "duckdb": version("duckdb"),
        "pyarrow": version("pyarrow"),
        "git": _git(),
        "loadavg_at_start": Path("/proc/loadavg").read_text().split()[:3],
        "command": "python -m tests.benchmarks.suite " + " ".join(sys.argv[1:]),
    }


def run_suite(
    sizes: Sizes,
    only: list[str] | None = None,
    reps: int | None = None,
    out: Path | None = None,
    quiet: bool = False,
    concurrency: int | None = None,
) -> dict[str, Any]:
    global _QUIET, B3_CONCURRENCY
    _QUIET, B3_CONCURRENCY = quiet, concurrency
    started = time.perf_counter()
    results: dict[str, Any] = {"meta": _meta(sizes)}
    fingerprint = results["meta"]["code_fingerprint"] = code_fingerprint()
    changed: list[str] = []
    with tempfile.TemporaryDirectory(prefix="polytomic-bench-") as tmp:
        for name in only or list(BENCHES):
            results[name] = BENCHES[name](sizes, Path(tmp), reps)
            now = code_fingerprint()
            if now != fingerprint:
                changed.append(name)
                fingerprint = now
                _log(f"  WARNING: sources/ or pipelines/ changed while {name} ran")
    results["meta"]["code_changed_during"] = changed
    results["meta"]["code_fingerprint_at_end"] = fingerprint
    results["goals"] = goals(results, sizes)
    results["meta"]["suite_seconds"] = time.perf_counter() - started
    results["meta"]["loadavg_at_end"] = Path("/proc/loadavg").read_text().split()[:3]
    path = out or ROOT / "bench-results.json"
    path.write_text(json.dumps(results, indent=2, default=str) + "\n")
    _log("")
    _log(tables(results))
    if changed:
        _log(f"WARNING: the code under test changed during {', '.join(changed)}: re-run those")
    _log(f"suite took {results['meta']['suite_seconds']:.0f}s; results in {path}")
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.benchmarks.suite", description=__doc__)
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--full", action="store_true", help="the issue's sizes (default)")
    size.add_argument("--tiny", action="store_true", help="seconds-long smoke sizes")
    parser.add_argument("--only", help="comma-separated subset, e.g. B1,B3")
    parser.add_argument("--reps", type=int, help="override repetitions for every benchmark")
    parser.add_argument(
        "--concurrency", type=int, help="B3: set SOURCES__POLYTOMIC__CONCURRENCY (default: unset)"
    )
    parser.add_argument("--out", type=Path, help="results file (default ./bench-results.json)")
    args = parser.parse_args(argv)
    only = [b.strip().upper() for b in args.only.split(",")] if args.only else None
    for name in only or []:
        if name not in BENCHES:
            parser.error(f"unknown benchmark {name!r}; choose from {', '.join(BENCHES)}")
    run_suite(TINY if args.tiny else FULL, only, args.reps, args.out, concurrency=args.concurrency)
    return 0


if __name__ == "__main__":
    sys.exit(main())
