"""The suite at a tiny size, so it cannot rot: every figure is produced and is a positive
number, every contestant loaded what the sandbox serves, and the one table has a row for
every case. Nothing here looks at how fast anything was."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from tests.benchmarks import suite
from tests.benchmarks.goals import COLUMNS

TINY = suite.TINY


def _positive(value: Any, where: str) -> None:
    assert isinstance(value, int | float) and not isinstance(value, bool), where
    assert math.isfinite(value) and value > 0, f"{where} = {value!r}"


def _measured(figures: dict[str, Any], where: str) -> None:
    for metric in (*suite.METRICS, "user_s", "requests"):
        _positive(figures[metric], f"{where} {metric}")
    assert figures["rows_ok"], f"{where}: did not load what the sandbox serves"
    _positive(figures["executions"], f"{where} executions")
    _positive(figures["schema_rows"], f"{where} schema rows")


def test_tiny_suite_produces_every_figure(tmp_path: Path) -> None:
    out, markdown = tmp_path / "bench-results.json", tmp_path / "bench.md"
    suite.run_suite(TINY, out=out, quiet=True, markdown=markdown)
    results = json.loads(out.read_text())

    assert results["meta"]["sizes"]["name"] == "tiny"
    assert results["meta"]["code_fingerprint"]
    assert set(suite.BENCHES) <= set(results)

    b1 = results["B1"]
    assert b1["order"] == [s.key for s in TINY.b1]
    for key in b1["order"]:
        case = b1["cases"][key]
        assert set(case["contestants"]) == set(suite.CONTESTANTS)
        for name, figures in case["contestants"].items():
            _measured(figures, f"B1 {key} {name}")
        for metric in suite.METRICS:
            for a in suite.CONTESTANTS:
                for b in suite.CONTESTANTS:
                    _positive(case["ratios"][metric][a][b], f"B1 {key} ratio {metric} {a}/{b}")

    b2 = results["B2"]
    assert [int(h) for h in b2["by_history"]] == list(TINY.b2_histories)
    for history, figures in b2["by_history"].items():
        _measured(figures, f"B2 {history} idle")
        _positive(figures["requests_per_sync"], f"B2 {history} requests per sync")
        for metric in (*suite.METRICS, "requests"):
            _positive(figures["first_load"][metric], f"B2 {history} first load {metric}")
        assert figures["rows_reloaded"] >= 0
    for key in ("wall_ratio_largest_to_smallest", "requests_per_sync_max"):
        _positive(b2[key], f"B2 {key}")
    _positive(b2["requests_ratio_largest_to_smallest"], "B2 requests ratio")

    b3 = results["B3"]
    _measured(b3[suite.PRODUCT], "B3")
    for key in ("concurrency", "bound_s", "wall_over_bound", "run_seconds_in_process"):
        _positive(b3[key], f"B3 {key}")
    assert b3["startup"]["measured_by"] == "B2"  # B2 ran first: its idle run is reused
    for metric in suite.METRICS:
        _positive(b3["startup"][metric], f"B3 start-up {metric}")

    b4 = results["B4"]
    assert TINY.b4_flat is not None
    assert b4["shapes"] == [s.key for s in TINY.b4] and b4["flat"] == TINY.b4_flat.key
    for key in [*b4["shapes"], b4["flat"]]:
        figures = b4["by_shape"][key]
        _measured(figures, f"B4 {key}")
        _positive(figures["cpu_ms_per_execution"], f"B4 {key} CPU per execution")
    assert b4["by_shape"][TINY.b1[-1].key]["reused"]  # B1's runs, not measured again

    b5 = results["B5"]
    _measured(b5["first_load"], "B5 first load")
    assert b5["first_load"]["executions"] >= TINY.b5.syncs
    assert b5["latencies"] == ["0", f"{TINY.b5_latency_ms:g}"]
    for key in b5["latencies"]:
        idle = b5["idle"][key]
        _measured(idle, f"B5 idle +{key} ms")
        for figure in ("sync_list_pages", "requests_per_sync", "allowed_requests"):
            _positive(idle[figure], f"B5 idle +{key} ms {figure}")
    _positive(b5["idle"][b5["latencies"][1]]["bound_s"], "B5 latency bound")

    # The one table: a row for every case and contestant, each with its figures.
    rows = results["rows"]
    cases = {(r["bench"], r["case"], r["contestant"]) for r in rows}
    assert len(cases) == len(rows), "two rows for the same case"
    per_bench = {b: sum(r["bench"] == b for r in rows) for b in suite.BENCHES}
    b2_rows = len(TINY.b2_histories) + 3  # per history, requests, flat requests, flat wall
    assert per_bench == {
        "B1": 3 * len(TINY.b1),
        "B2": b2_rows,
        "B3": 1,
        "B4": len(TINY.b4) + 2,  # each shape, the flat case, the per-sync overhead
        "B5": 3,  # first load, idle at 0 ms, idle with latency
    }
    for row in rows:
        where = f"{row['bench']} {row['case']} {row['contestant']}"
        if row["wall_s"] is not None:
            for metric in suite.METRICS:
                _positive(row[metric], f"row {where} {metric}")
        else:
            _positive(row["ratio"], f"row {where} ratio")  # a derived row
    goals = results["goals"]
    assert len(goals) == 4 + 4 + 1 + 4 + 1
    for goal in goals:
        assert isinstance(goal["met"], bool), goal
        _positive(goal["measured"], f"goal {goal['goal']}")
        _positive(goal["limit"], f"goal {goal['goal']}")
    assert sum(g["required"] for g in goals) == 2  # B4's peak RSS at the largest total

    text = markdown.read_text()
    assert text == suite.tables(results)
    header = "| " + " | ".join(COLUMNS) + " |"
    assert text.count(header) == 1
    assert sum(line.startswith("| B") for line in text.splitlines()) == len(rows)
