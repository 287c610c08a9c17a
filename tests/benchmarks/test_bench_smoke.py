"""The suite at a tiny size, so it cannot rot: every figure is produced and is a positive
number. Nothing here looks at how fast anything was."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from tests.benchmarks import suite


def _positive(value: Any, where: str) -> None:
    assert isinstance(value, int | float) and not isinstance(value, bool), where
    assert math.isfinite(value) and value > 0, f"{where} = {value!r}"


def test_tiny_suite_produces_every_figure(tmp_path: Path) -> None:
    out = tmp_path / "bench-results.json"
    suite.run_suite(suite.TINY, out=out, quiet=True)
    results = json.loads(out.read_text())

    assert results["meta"]["sizes"]["name"] == "tiny"
    assert results["meta"]["code_fingerprint"]
    assert set(suite.BENCHES) <= set(results)

    b1 = results["B1"]
    assert set(b1["contestants"]) == set(suite.CONTESTANTS)
    for name, figures in b1["contestants"].items():
        for metric in (*suite.METRICS, "user_s", "requests"):
            _positive(figures[metric], f"B1 {name} {metric}")
        assert figures["rows_ok"], f"B1 {name} did not load what the sandbox serves"
        _positive(figures["executions"], f"B1 {name} executions")
        _positive(figures["schema_rows"], f"B1 {name} schema rows")
    for metric in suite.METRICS:
        for a in suite.CONTESTANTS:
            for b in suite.CONTESTANTS:
                _positive(b1["ratios"][metric][a][b], f"B1 ratio {metric} {a}/{b}")

    b2 = results["B2"]
    assert [int(h) for h in b2["by_history"]] == list(suite.TINY.b2_histories)
    for history, figures in b2["by_history"].items():
        for metric in ("wall_s", "cpu_s", "peak_rss_mb", "requests", "requests_per_sync"):
            _positive(figures[metric], f"B2 {history} {metric}")
        for metric in (*suite.METRICS, "requests"):
            _positive(figures["first_load"][metric], f"B2 {history} first load {metric}")
        assert figures["rows_reloaded"] >= 0
    _positive(b2["wall_ratio_largest_to_smallest"], "B2 wall ratio")
    _positive(b2["requests_per_sync_max"], "B2 requests per sync")

    b3 = results["B3"]
    for metric in (*suite.METRICS, "requests"):
        _positive(b3["polytomic-etl"][metric], f"B3 {metric}")
    for key in ("concurrency", "bound_s", "wall_over_bound", "run_seconds_in_process"):
        _positive(b3[key], f"B3 {key}")

    b4 = results["B4"]
    assert len(b4["executions"]) == 2
    for total in b4["executions"]:
        for metric in suite.METRICS:
            _positive(b4["by_executions"][str(total)][metric], f"B4 {total} {metric}")
    _positive(b4["rss_growth"], "B4 RSS growth")
    assert math.isfinite(b4["rss_scaling_exponent"])

    assert len(results["goals"]) == 8
    for goal in results["goals"]:
        assert isinstance(goal["met"], bool)
        assert isinstance(goal["measured"], int | float), goal
    assert "### B1" in suite.tables(results)
