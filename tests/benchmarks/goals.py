"""The goals of issue 13, read from a results dict, and the one table `make bench` prints.

Every row is a measurement (medians of its repetitions) or a figure derived from several;
a row with a goal says what the goal reads, its limit, and whether it was met. Built from the
results file alone, so a saved `bench-results.json` renders again (`suite --render FILE`).
Nothing here enforces a goal.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from .measure import PRODUCT

B1_VS_REST_API = 0.5  # polytomic-etl wall <= 0.5 x rest_api_source
B1_VS_RAW_FLOOR = 1.5  # polytomic-etl wall <= 1.5 x the raw floor
STARTUP_CPU_S = 1.5  # idle run of one sync (reported, not required)
B2_FLAT_WALL = 1.25  # issue 6: idle wall at the largest history within 25 % of the smallest
B2_REQUESTS_PER_SYNC = 2  # issue 6: requests per idle sync
B3_FACTOR = 1.5  # wall <= 1.5 x (requests x latency / concurrency) + idle start-up wall
B4_PEAK_RSS_MB = 300.0  # required: first load of 200k, over 20 and over 1,000 syncs
B4_FLAT = 1.10  # 1M peak within 10 % of the 200k (over 1,000 syncs) figure
B4_PER_SYNC_CPU = 1.2  # CPU per execution, many syncs / few syncs, at 200k
B5_LIST_PER_SYNC = 2  # idle at scale: list requests per sync, plus the sync-list pages

COLUMNS = (
    "bench",
    "case",
    "contestant",
    "median wall s",
    "CPU s",
    "peak RSS MB",
    "ratio",
    "goal",
    "met",
    "foreign CPU s",
)


@dataclass
class Row:
    bench: str
    case: str
    contestant: str = PRODUCT
    wall_s: float | None = None
    cpu_s: float | None = None
    peak_rss_mb: float | None = None
    foreign_cpu_s: float | None = None
    ratio: float | None = None
    ratio_text: str = ""  # the ratio cell, when it needs a unit or a word
    goal: str = ""
    measured: float | None = None
    limit: float | None = None
    required: bool = False
    met: bool | None = None

    def check(self) -> Row:
        if self.goal:
            self.met = self.measured is not None and self.measured <= self.limit  # type: ignore[operator]
        return self


def _row(bench: str, case: str, figures: dict[str, Any], contestant: str = PRODUCT) -> Row:
    return Row(
        bench=bench,
        case=case,
        contestant=contestant,
        wall_s=figures["wall_s"],
        cpu_s=figures["cpu_s"],
        peak_rss_mb=figures["peak_rss_mb"],
        foreign_cpu_s=figures.get("foreign_cpu_s"),
    )


def _k(n: int) -> str:
    return f"{n / 1000:g}k" if n >= 1000 else str(n)


def _reps(n: int) -> str:
    return f"{n} rep" + ("" if n == 1 else "s")


def rows(results: dict[str, Any]) -> list[Row]:
    out: list[Row] = []
    for name, build in (("B1", _b1), ("B2", _b2), ("B3", _b3), ("B4", _b4), ("B5", _b5)):
        if name in results:
            out += build(results[name])
    return [r.check() for r in out]


def _b1(b1: dict[str, Any]) -> list[Row]:
    out: list[Row] = []
    for key in b1["order"]:
        c = b1["cases"][key]
        case = (
            f"first load, {c['syncs']} x {c['executions_per_sync']:,} = "
            f"{_k(c['executions'])}, {_reps(c['reps'])}"
        )
        med = c["contestants"]
        out.append(_row("B1", case, med[PRODUCT]))
        for other, limit in (("rest_api", B1_VS_REST_API), ("raw_floor", B1_VS_RAW_FLOOR)):
            ratio = c["ratios"]["wall_s"][PRODUCT][other]
            row = _row("B1", case, med[other], other)
            row.ratio, row.measured, row.limit = ratio, ratio, limit
            row.ratio_text = f"{ratio:.2f} = {PRODUCT} ÷ this"
            row.goal = f"{PRODUCT} wall ≤ {limit:g} x this"
            out.append(row)
    return out


def _b2(b2: dict[str, Any]) -> list[Row]:
    out: list[Row] = []
    for history in b2["histories"]:
        h = b2["by_history"][str(history)]
        case = f"idle run, 1 sync, {history:,} history, {_reps(h['reps'])}"
        row = _row("B2", case, h)
        row.ratio_text = f"{h['requests_per_sync']:g} req/sync"
        if history == b2.get("startup_history"):
            row.goal = f"start-up: CPU ≤ {STARTUP_CPU_S:g} s (not required)"
            row.measured, row.limit = h["cpu_s"], STARTUP_CPU_S
        out.append(row)
    first, last = b2["histories"][0], b2["histories"][-1]
    span = f"{_k(last)} ÷ {_k(first)} history"
    per_sync = b2["requests_per_sync_max"]
    out.append(
        Row(
            "B2",
            "idle requests per sync (all but the sync list), largest of the histories",
            ratio=per_sync,
            ratio_text=f"{per_sync:g} req/sync",
            goal=f"≤ {B2_REQUESTS_PER_SYNC} requests per idle sync",
            measured=per_sync,
            limit=B2_REQUESTS_PER_SYNC,
        )
    )
    flat = b2["requests_ratio_largest_to_smallest"]
    out.append(
        Row(
            "B2",
            f"idle requests per sync, {span}",
            ratio=flat,
            goal="flat: ≤ 1",
            measured=flat,
            limit=1.0,
        )
    )
    wall = b2["wall_ratio_largest_to_smallest"]
    out.append(
        Row(
            "B2",
            f"idle wall, {span}",
            ratio=wall,
            goal=f"flat: ≤ {B2_FLAT_WALL:g}",
            measured=wall,
            limit=B2_FLAT_WALL,
        )
    )
    return out


def _b3(b3: dict[str, Any]) -> list[Row]:
    out: list[Row] = []
    s = b3["startup"]
    startup = f"idle start-up, 1 sync, {s['history']:,} history, 0 ms, {_reps(s['reps'])}"
    if s.get("measured_by") == "B3":
        out.append(_row("B3", startup, s))
        where = "above"
    else:
        where = f"B2 at {_k(s['history'])}"
    p = b3[PRODUCT]
    lat, conc = b3["latency_ms"], b3["concurrency"]
    case = (
        f"first load, {b3['syncs']} x {b3['executions_per_sync']:,}, +{lat:g} ms per request, "
        f"{_reps(b3['reps'])}"
    )
    limit = B3_FACTOR * b3["bound_s"] + s["wall_s"]
    row = _row("B3", case, p)
    row.ratio = b3["wall_over_bound"]
    row.ratio_text = f"{row.ratio:.2f} x bound"
    row.goal = (
        f"wall ≤ {B3_FACTOR:g} x bound {b3['bound_s']:.2f} s ({p['requests']} req x {lat:g} ms "
        f"÷ {conc}) + idle start-up {s['wall_s']:.2f} s ({where}) = {limit:.2f} s"
    )
    row.measured, row.limit = p["wall_s"], limit
    out.append(row)
    return out


def _b4(b4: dict[str, Any]) -> list[Row]:
    out: list[Row] = []
    by = b4["by_shape"]
    shapes = [by[k] for k in b4["shapes"]]
    top = max(s["total"] for s in shapes)
    at_top = sorted((s for s in shapes if s["total"] == top), key=lambda s: s["syncs"])
    few, many = at_top[0], at_top[-1]
    for key in [*b4["shapes"], *([b4["flat"]] if b4.get("flat") else [])]:
        s = by[key]
        case = (
            f"first load, {s['syncs']:,} x {s['executions_per_sync']:,} = {_k(s['total'])}, "
            f"{_reps(s['reps'])}" + (" (B1's)" if s.get("reused") else "")
        )
        row = _row("B4", case, s)
        row.ratio_text = f"{s['cpu_ms_per_execution']:.3g} ms CPU/exec"
        if s["total"] == top:
            row.goal = f"peak RSS ≤ {B4_PEAK_RSS_MB:g} MB (required)"
            row.measured, row.limit, row.required = s["peak_rss_mb"], B4_PEAK_RSS_MB, True
        elif key == b4.get("flat"):
            row.ratio = s["peak_rss_mb"] / many["peak_rss_mb"]
            row.ratio_text = f"{row.ratio:.2f}"
            row.goal = f"flat: peak RSS ≤ {B4_FLAT:.2f} x {_k(top)} over {many['syncs']:,} syncs"
            row.measured, row.limit = row.ratio, B4_FLAT
        out.append(row)
    if many is not few:
        ratio = many["cpu_ms_per_execution"] / few["cpu_ms_per_execution"]
        out.append(
            Row(
                "B4",
                f"per-sync overhead: CPU per execution, {_k(top)} over {many['syncs']:,} "
                f"÷ over {few['syncs']:,} syncs",
                ratio=ratio,
                goal=f"≤ {B4_PER_SYNC_CPU:g}",
                measured=ratio,
                limit=B4_PER_SYNC_CPU,
            )
        )
    return out


def _b5(b5: dict[str, Any]) -> list[Row]:
    syncs = b5["syncs"]
    shape = f"{syncs:,} x {b5['executions_per_sync']:,}"
    out = [_row("B5", f"idle at scale: first load, {shape}", b5["first_load"])]
    for key in b5["latencies"]:
        idle = b5["idle"][key]
        case = f"idle at scale: idle run, {shape}, +{key} ms, {_reps(idle['reps'])}"
        row = _row("B5", case, idle)
        spread = ", ".join(
            f"{n} sync{'' if n == 1 else 's'} made {k}"
            for k, n in idle.get("sync_request_counts", {}).items()
        )
        row.ratio_text = f"{idle['requests_per_sync']:.3g} req/sync ({spread})"
        if idle["latency_ms"] == 0:
            row.goal = (
                f"requests ≤ {B5_LIST_PER_SYNC} x {syncs:,} syncs + "
                f"{idle['sync_list_pages']} sync-list page(s) = {idle['allowed_requests']:,}"
                f" (measured {idle['requests_max']:,})"
            )
            row.measured, row.limit = idle["requests_max"], idle["allowed_requests"]
        elif idle["bound_s"] > 0:
            row.ratio = idle["wall_s"] / idle["bound_s"]
            row.ratio_text += f"; {row.ratio:.2f} x bound {idle['bound_s']:.1f} s"
        out.append(row)
    return out


# -- the table ------------------------------------------------------------------------------


def _num(value: float | None, digits: int) -> str:
    return "" if value is None else f"{value:,.{digits}f}"


def _cells(r: Row) -> list[str]:
    ratio = r.ratio_text or ("" if r.ratio is None else f"{r.ratio:.2f}")
    met = "" if r.met is None else ("yes" if r.met else "**NO**")
    return [
        r.bench,
        r.case,
        r.contestant,
        _num(r.wall_s, 2),
        _num(r.cpu_s, 2),
        _num(r.peak_rss_mb, 0),
        ratio,
        r.goal,
        met,
        _num(r.foreign_cpu_s, 1),
    ]


def table(results: dict[str, Any], table_rows: list[Row] | None = None) -> str:
    """The one Markdown table, with a line on what was measured where and a goal count."""
    table_rows = rows(results) if table_rows is None else table_rows
    meta = results.get("meta", {})
    sizes = meta.get("sizes", {})
    head = (
        f"### Benchmarks ({sizes.get('name', '?')} sizes), {meta.get('date', '')}, "
        f"git {meta.get('git')}, {meta.get('cpus')} CPUs, load average "
        f"{' '.join(meta.get('loadavg_at_start', []))} at start"
    )
    lines = [head, ""]
    if meta.get("env"):
        env = ", ".join(f"{k}={v}" for k, v in meta["env"].items())
        lines += [f"polytomic-etl runs with {env}.", ""]
    lines += [
        "| " + " | ".join(COLUMNS) + " |",
        "|---|---|---|---:|---:|---:|---|---|---|---:|",
    ]
    lines += ["| " + " | ".join(_cells(r)) + " |" for r in table_rows]
    with_goal = [r for r in table_rows if r.goal]
    required = [r for r in with_goal if r.required]
    lines += [
        "",
        f"Goals met: {sum(bool(r.met) for r in with_goal)} of {len(with_goal)}; required "
        f"goals met: {sum(bool(r.met) for r in required)} of {len(required)}. Walls, CPU and "
        "RSS are medians of the repetitions; CPU and RSS are the loader's own (its largest "
        "process). Foreign CPU is other work on the machine during the run (median): near "
        "one wall's worth on 2 cores means the run shared the machine.",
    ]
    if sizes.get("name") == "tiny":
        lines.append("Tiny sizes: the goals are evaluated but not comparable.")
    if meta.get("code_changed_during"):
        changed = ", ".join(meta["code_changed_during"])
        lines.append(f"WARNING: the code under test changed during {changed}: re-run those.")
    if meta.get("suite_seconds"):
        lines.append(f"The suite took {meta['suite_seconds']:.0f} s.")
    return "\n".join(lines) + "\n"


def goals(table_rows: list[Row]) -> list[dict[str, Any]]:
    """The rows with a goal, as they go into the results file."""
    return [asdict(r) for r in table_rows if r.goal]
