"""The benchmarks B1-B5, at the sizes of `Sizes`; each returns what goes into the results file.

A `Lab` carries what one suite run shares: its scratch directory, the environment passed to
polytomic-etl, and the product's runs already measured, so that a shape measured by one
benchmark is not measured again by another (B4's 100k over 20 syncs is B1's 100k case;
B3's idle start-up is B2's idle run at 1k history).
"""

from __future__ import annotations

import itertools
import math
import shutil
import statistics
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from .measure import (
    CONTESTANTS,
    METRICS,
    PRODUCT,
    REST_API_ENV,
    Run,
    SandboxProcess,
    fmt_run,
    log,
    run_contestant,
    summary,
)


@dataclass(frozen=True)
class Shape:
    """An organisation of `syncs` bulk syncs with `per_sync` executions each; `reps` runs."""

    syncs: int
    per_sync: int
    reps: int = 1

    @property
    def total(self) -> int:
        return self.syncs * self.per_sync

    @property
    def key(self) -> str:
        return f"{self.syncs}x{self.per_sync}"


@dataclass(frozen=True)
class Sizes:
    name: str
    b1: tuple[Shape, ...]  # full first load, three contestants
    b2_histories: tuple[int, ...]  # idle run of one sync after a first load of this history
    b2_reps: int
    startup_history: int  # the idle run read as start-up (B3's bound, the start-up goal)
    b3: Shape  # latency-bound first load
    b3_latency_ms: float
    b4: tuple[Shape, ...]  # peak RSS of a first load
    b4_flat: Shape | None  # the 1M case (`--with-1m`)
    b5: Shape  # idle at scale: reps are the idle runs at 0 ms
    b5_latency_ms: float
    b5_latency_reps: int


FULL = Sizes(
    name="full",
    # 100k: rest_api takes ~90 s per run, so 2 repetitions keep `make bench` < 20 minutes
    b1=(Shape(20, 1_000, 3), Shape(20, 5_000, 2)),
    b2_histories=(1_000, 10_000, 100_000),
    b2_reps=3,
    startup_history=1_000,
    b3=Shape(20, 500, 3),
    b3_latency_ms=100.0,
    # one run each (minutes per 200k first load); 20 x 5,000 also takes B1's runs
    b4=(Shape(20, 5_000), Shape(1_000, 100), Shape(20, 10_000), Shape(1_000, 200)),
    b4_flat=None,
    b5=Shape(1_000, 20, 3),
    b5_latency_ms=100.0,
    b5_latency_reps=1,  # ~2,000 requests at 100 ms / 4: about a minute per run
)
MILLION = Shape(2_000, 500)
TINY = Sizes(
    name="tiny",
    b1=(Shape(2, 50), Shape(2, 100)),
    b2_histories=(50, 200),
    b2_reps=1,
    startup_history=50,
    b3=Shape(2, 50),
    b3_latency_ms=10.0,
    b4=(Shape(2, 100), Shape(20, 10), Shape(2, 200), Shape(20, 20)),
    b4_flat=Shape(40, 50),  # 5x the largest, as 1M is 5x 200k; cheap at this size
    b5=Shape(30, 5),
    b5_latency_ms=10.0,
    b5_latency_reps=1,
)


def full_sizes(with_1m: bool = False) -> Sizes:
    return replace(FULL, name="full+1m", b4_flat=MILLION) if with_1m else FULL


class Lab:
    """What the benchmarks of one suite run share."""

    def __init__(
        self,
        tmp: Path,
        reps: int | None = None,
        env: dict[str, str] | None = None,
        b3_concurrency: int | None = None,
    ) -> None:
        self.tmp = tmp
        self.reps_override = reps
        self.env = dict(env or {})  # for polytomic-etl runs only
        self.b3_concurrency = b3_concurrency
        self.first_loads: dict[str, list[Run]] = {}  # polytomic-etl first loads, by shape
        self.idle: dict[int, list[Run]] = {}  # idle runs on one sync, by history
        self._ids = itertools.count()

    def reps(self, default: int) -> int:
        return self.reps_override or default

    def workdir(self, label: str) -> Path:
        return self.tmp / f"{label}-{next(self._ids)}"

    def env_for(self, contestant: str) -> dict[str, str]:
        return dict(self.env) if contestant == PRODUCT else {}

    def run(self, name: str, sb: SandboxProcess, workdir: Path, expect: str = "first_load") -> Run:
        return run_contestant(name, sb, workdir, self.env_for(name), expect)

    def concurrency(self, override: int | None = None) -> tuple[int, str]:
        """The concurrency the product's run uses: the override, else what `--env` sets,
        else the source's default."""
        if override:
            return override, "SOURCES__POLYTOMIC__CONCURRENCY"
        if self.env.get("SOURCES__POLYTOMIC__CONCURRENCY"):
            return int(self.env["SOURCES__POLYTOMIC__CONCURRENCY"]), "--env"
        from sources.polytomic import settings

        return int(settings.DEFAULT_CONCURRENCY), "default"

    def first_load_runs(self, shape: Shape, label: str) -> tuple[list[Run], bool]:
        """At least `shape.reps` first loads of the product on `shape`; (runs, reused)."""
        runs = self.first_loads.setdefault(shape.key, [])
        reused = bool(runs)
        missing = self.reps(shape.reps) - len(runs)
        if missing > 0:
            with SandboxProcess(shape.syncs, shape.per_sync) as sb:
                for rep in range(missing):
                    workdir = self.workdir(label)
                    run = self.run(PRODUCT, sb, workdir)
                    shutil.rmtree(workdir, ignore_errors=True)
                    runs.append(run)
                    log(f"  {shape.key:>10} rep {rep + 1} {fmt_run(run)}")
        else:
            log(f"  {shape.key:>10} reuses {len(runs)} first load(s) measured before")
        return runs, reused

    def idle_runs(self, history: int, reps: int) -> tuple[Run, list[Run]]:
        """A first load of one sync with `history` executions, then `reps` idle runs."""
        with SandboxProcess(1, history) as sb:
            workdir = self.workdir(f"idle-{history}")
            first = self.run(PRODUCT, sb, workdir)
            log(f"  {history:>7} first load  {fmt_run(first)}")
            idle: list[Run] = []
            for rep in range(reps):
                run = self.run(PRODUCT, sb, workdir, expect="idle")
                idle.append(run)
                log(f"  {history:>7} idle rep {rep + 1} {fmt_run(run)}")
            shutil.rmtree(workdir, ignore_errors=True)
        self.idle[history] = idle
        return first, idle


def _idle_summary(runs: list[Run], syncs: int) -> dict[str, Any]:
    """`summary` plus the request split of an idle run: the sync list is paid once per run;
    everything else is the syncs' own cost (their list requests, the rolling verification)."""
    out = summary(runs)
    pages = statistics.median(r.requests_by_kind.get("list_syncs", 0) for r in runs)
    out["sync_list_pages"] = int(pages)
    out["requests_per_sync"] = (out["requests"] - pages) / syncs
    out["requests_max"] = max(r.requests for r in runs)
    out["rows_reloaded"] = runs[-1].output.get("executions", 0)
    return out


# -- B1 ---------------------------------------------------------------------------------------


def bench_b1(sizes: Sizes, lab: Lab) -> dict[str, Any]:
    cases: dict[str, Any] = {}
    for shape in sizes.b1:
        reps = lab.reps(shape.reps)
        log(f"B1: first load, {shape.syncs} x {shape.per_sync}, {reps} rep(s), alternated")
        runs: dict[str, list[Run]] = {c: [] for c in CONTESTANTS}
        with SandboxProcess(shape.syncs, shape.per_sync) as sb:
            for rep in range(reps):
                order = CONTESTANTS[rep % 3 :] + CONTESTANTS[: rep % 3]  # rotate who goes first
                for name in order:
                    workdir = lab.workdir(f"b1-{name}")
                    run = lab.run(name, sb, workdir)
                    shutil.rmtree(workdir, ignore_errors=True)
                    runs[name].append(run)
                    log(f"  rep {rep + 1} {name:14s} {fmt_run(run)}")
            truth = sb.truth
        lab.first_loads.setdefault(shape.key, []).extend(runs[PRODUCT])
        medians = {name: summary(rs) for name, rs in runs.items()}
        ratios = {
            metric: {
                a: {b: medians[a][metric] / medians[b][metric] for b in CONTESTANTS}
                for a in CONTESTANTS
            }
            for metric in METRICS
        }
        cases[shape.key] = {
            "syncs": shape.syncs,
            "executions_per_sync": shape.per_sync,
            "executions": shape.total,
            "truth": truth,
            "reps": reps,
            "contestants": medians,
            "ratios": ratios,
        }
    return {"cases": cases, "order": [s.key for s in sizes.b1], "rest_api_env": REST_API_ENV}


# -- B2 ---------------------------------------------------------------------------------------


def bench_b2(sizes: Sizes, lab: Lab) -> dict[str, Any]:
    reps = lab.reps(sizes.b2_reps)
    log(f"B2: idle incremental run on one sync, histories {sizes.b2_histories}, {reps} rep(s)")
    results: dict[str, Any] = {}
    for history in sizes.b2_histories:
        first, idle = lab.idle_runs(history, reps)
        out = _idle_summary(idle, syncs=1)
        out["first_load"] = {m: getattr(first, m) for m in (*METRICS, "requests")}
        results[str(history)] = out
    walls = [results[str(h)]["wall_s"] for h in sizes.b2_histories]
    per_sync = [results[str(h)]["requests_per_sync"] for h in sizes.b2_histories]
    return {
        "histories": list(sizes.b2_histories),
        "reps": reps,
        "by_history": results,
        "startup_history": sizes.startup_history,
        "wall_ratio_largest_to_smallest": walls[-1] / walls[0],
        "requests_per_sync_max": max(per_sync),
        "requests_ratio_largest_to_smallest": (
            per_sync[-1] / per_sync[0] if per_sync[0] else 1.0 if not per_sync[-1] else math.inf
        ),
    }


# -- B3 ---------------------------------------------------------------------------------------


def bench_b3(sizes: Sizes, lab: Lab) -> dict[str, Any]:
    shape, latency = sizes.b3, sizes.b3_latency_ms
    reps = lab.reps(shape.reps)
    concurrency, source = lab.concurrency(lab.b3_concurrency)
    env = {"SOURCES__POLYTOMIC__CONCURRENCY": str(concurrency)} if lab.b3_concurrency else {}
    log(f"B3: latency-bound first load, {shape.key}, +{latency:g} ms, {reps} rep(s)")
    history = sizes.startup_history
    startup_from = "B2"
    if history not in lab.idle:
        log(f"  idle start-up: one sync, {history} history, 0 ms")
        lab.idle_runs(history, lab.reps(sizes.b2_reps))
        startup_from = "B3"
    startup = _idle_summary(lab.idle[history], syncs=1)
    runs: list[Run] = []
    with SandboxProcess(shape.syncs, shape.per_sync, latency_ms=latency) as sb:
        for rep in range(reps):
            workdir = lab.workdir("b3")
            run = run_contestant(PRODUCT, sb, workdir, {**lab.env, **env})
            shutil.rmtree(workdir, ignore_errors=True)
            runs.append(run)
            log(f"  rep {rep + 1} {fmt_run(run)}")
    out = summary(runs)
    bound = out["requests"] * latency / 1000 / concurrency
    in_process = statistics.median(float(r.output.get("seconds", 0.0)) for r in runs)
    return {
        "syncs": shape.syncs,
        "executions_per_sync": shape.per_sync,
        "latency_ms": latency,
        "concurrency": concurrency,
        "concurrency_source": source,
        "reps": reps,
        PRODUCT: out,
        "bound_s": bound,
        "wall_over_bound": out["wall_s"] / bound,
        "startup": {
            "history": history,
            "measured_by": startup_from,
            "wall_s": startup["wall_s"],
            "cpu_s": startup["cpu_s"],
            "peak_rss_mb": startup["peak_rss_mb"],
            "foreign_cpu_s": startup["foreign_cpu_s"],
            "reps": startup["reps"],
        },
        "run_seconds_in_process": in_process,
        "in_process_over_bound": in_process / bound,
    }


# -- B4 ---------------------------------------------------------------------------------------


def bench_b4(sizes: Sizes, lab: Lab) -> dict[str, Any]:
    shapes = [*sizes.b4, *([sizes.b4_flat] if sizes.b4_flat else [])]
    log(f"B4: peak RSS of a first load, {', '.join(s.key for s in shapes)}")
    results: dict[str, Any] = {}
    for shape in shapes:
        runs, reused = lab.first_load_runs(shape, f"b4-{shape.key}")
        out = summary(runs)
        out.update(
            syncs=shape.syncs,
            executions_per_sync=shape.per_sync,
            total=shape.total,
            reused=reused,
            cpu_ms_per_execution=1000 * out["cpu_s"] / max(1, out["executions"]),
        )
        results[shape.key] = out
    return {
        "shapes": [s.key for s in sizes.b4],
        "flat": sizes.b4_flat.key if sizes.b4_flat else None,
        "by_shape": results,
    }


# -- B5 ---------------------------------------------------------------------------------------


def bench_b5(sizes: Sizes, lab: Lab) -> dict[str, Any]:
    """Idle at scale: a first load over many syncs with a small history each, then idle
    runs with no latency and with `b5_latency_ms` added to every request."""
    shape, latency = sizes.b5, sizes.b5_latency_ms
    reps, reps_latency = lab.reps(shape.reps), lab.reps(sizes.b5_latency_reps)
    concurrency, source = lab.concurrency()
    log(f"B5: idle at scale, {shape.key}, idle runs: {reps} at 0 ms, {reps_latency} at {latency:g}")
    idle: dict[str, Any] = {}
    with SandboxProcess(shape.syncs, shape.per_sync) as sb:
        workdir = lab.workdir("b5")
        first = lab.run(PRODUCT, sb, workdir)
        log(f"  first load {fmt_run(first)}")
        for ms, n in ((0.0, reps), (latency, reps_latency)):
            if ms:
                sb.set_latency(ms)
            runs = []
            for rep in range(n):
                run = lab.run(PRODUCT, sb, workdir, expect="idle")
                runs.append(run)
                log(f"  idle +{ms:g} ms rep {rep + 1} {fmt_run(run)}")
            out = _idle_summary(runs, shape.syncs)
            out["latency_ms"] = ms
            out["allowed_requests"] = 2 * shape.syncs + out["sync_list_pages"]
            out["bound_s"] = out["requests"] * ms / 1000 / concurrency
            idle[f"{ms:g}"] = out
        shutil.rmtree(workdir, ignore_errors=True)
    return {
        "syncs": shape.syncs,
        "executions_per_sync": shape.per_sync,
        "latency_ms": latency,
        "concurrency": concurrency,
        "concurrency_source": source,
        "first_load": summary([first]),
        "idle": idle,
        "latencies": list(idle),
    }


BENCHES: dict[str, Callable[[Sizes, Lab], dict[str, Any]]] = {
    "B1": bench_b1,
    "B2": bench_b2,
    "B3": bench_b3,
    "B4": bench_b4,
    "B5": bench_b5,
}
