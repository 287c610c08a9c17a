"""build_report, render_terminal and render_html on the known history (both backends)."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from datetime import date, timedelta

import pytest

from pipelines.reports.report import build_report, render_html, render_terminal
from tests.reports.history import NOW

CHARTS = (
    "data-run-strips",
    "data-daily-runs",
    "data-durations",
    "data-failure-calendar",
    "data-schema-grid",
)


@pytest.fixture(scope="module")
def report(warehouse):
    return build_report(warehouse.backend.query, warehouse.dataset)


def data_blocks(page: str) -> dict[str, object]:
    blocks = re.findall(r'<script type="application/json" id="([^"]+)">(.*?)</script>', page, re.S)
    return {block_id: json.loads(text) for block_id, text in blocks}


def test_report_contents(report, warehouse):
    assert (report.now, report.since, report.sync) == (NOW, NOW - timedelta(days=30), None)
    assert report.health_counts() == {
        "broken": 1,
        "degraded": 1,
        "late": 1,
        "never_run": 2,
        "healthy": 6,
        "inactive": 2,
    }
    assert [r["bulk_sync_id"] for r in report.syncs[:3]] == ["s_broken", "s_degraded", "s_late"]
    assert [r["bulk_sync_id"] for r in report.flapping] == ["s_flap"]  # s_chronic: 5 flips
    assert [(r["bulk_sync_id"], r["schema"]) for r in report.chronic] == [("s_chronic", "flaky")]
    assert sorted(r["bulk_sync_id"] for r in report.stuck) == ["s_first", "s_stuck"]
    assert len(report.anomalies) == 2
    assert [r["bulk_sync_id"] for r in report.incidents if r["state"] == "open"] == ["s_broken"]
    # the s_healthy incident started 20 days ago: in the 30-day period
    assert len(report.incidents) == 8
    assert [d["day"] for d in report.daily] == [
        date(2025, 2, 10) + timedelta(days=i) for i in range(31)
    ]
    per_sync = {}
    for run in report.runs:
        per_sync.setdefault(run["bulk_sync_id"], []).append(run)
    assert max(len(runs) for runs in per_sync.values()) == 20
    assert per_sync["s_flap"][-1]["run_at"] == NOW - timedelta(hours=1)  # oldest first
    # over the default 30-day period the duration chart matches sync_health
    health = {r["bulk_sync_id"]: r for r in report.syncs}
    for row in report.durations:
        expected = health[row["bulk_sync_id"]]
        assert row["p50_s"] == pytest.approx(expected["p50_duration_s"])
        assert row["p95_s"] == pytest.approx(expected["p95_duration_s"])
    assert report.worst_syncs == ["s_chronic", "s_degraded"]
    assert {c["bulk_sync_id"] for c in report.schema_grid} == {"s_chronic", "s_degraded"}


def test_since_and_sync_narrow_the_report(warehouse):
    recent = build_report(warehouse.backend.query, warehouse.dataset, since=NOW - timedelta(days=2))
    assert [d["day"] for d in recent.daily] == [
        date(2025, 3, 10),
        date(2025, 3, 11),
        date(2025, 3, 12),
    ]
    assert len(recent.syncs) == 13  # sync_health keeps its own windows
    assert all(r["run_at"] >= NOW - timedelta(days=2) for r in recent.runs)
    assert all(
        r["state"] == "open" or r["started_at"] >= NOW - timedelta(days=2) for r in recent.incidents
    )
    focused = build_report(warehouse.backend.query, warehouse.dataset, sync="s-broken")
    assert [r["bulk_sync_id"] for r in focused.syncs] == ["s_broken"]
    assert {r["bulk_sync_id"] for r in focused.runs} == {"s_broken"}
    assert {r["bulk_sync_id"] for r in focused.incidents} == {"s_broken"}
    assert focused.anomalies == [] and focused.stuck == []
    assert sum(d["runs"] for d in focused.daily) == 7
    by_id = build_report(warehouse.backend.query, warehouse.dataset, sync="s_broken")
    assert [r["name"] for r in by_id.syncs] == ["s-broken"]
    with pytest.raises(ValueError, match="no sync named"):
        build_report(warehouse.backend.query, warehouse.dataset, sync="nope")


def test_terminal_digest_then_table(report):
    text = render_terminal(report)
    lines = text.splitlines()
    assert max(len(line) for line in lines) <= 100
    assert (
        lines[1]
        == "13 syncs: 1 broken · 1 degraded · 1 late · 2 never run · 6 healthy · 2 inactive"
    )
    order = [
        "Broken",
        "Degraded",
        "Late",
        "Flapping",
        "Chronic schemas",
        "Stuck runs",
        "Open incidents",
        "Volume anomalies",
        "Sync health",
    ]
    titles = [line.split(" since ")[0] for line in lines]  # "Volume anomalies since <start>"
    assert [title for title in titles if title in order] == order
    assert "Volume anomalies since 2025-02-10 12:00 UTC" in lines  # the period's start
    assert "  s-broken  latest run failed (3 failure(s) in a row): Connection refused" in lines
    assert "  s-late  last success 3.0 h ago, 2.98x the hourly interval" in lines
    assert any(line.startswith("  s-flap ") and "SSFSSSPSFFSSSSSSSSSS" in line for line in lines)
    assert any("s-chronic / flaky" in line and "3 of its last 5" in line for line in lines)
    table = lines[lines.index("Sync health") + 1 :]
    assert table[0].startswith("SYNC") and "HEALTH" in table[0]
    assert len(table) == 1 + 13
    assert table[1].split()[:2] == ["s-broken", "broken"]
    narrow = render_terminal(report, width=72)
    assert max(len(line) for line in narrow.splitlines()) <= 72


def test_html_is_written_and_carries_each_charts_data(report, warehouse, tmp_path):
    path = tmp_path / "report.html"
    path.write_text(render_html(report), encoding="utf-8")
    page = path.read_text(encoding="utf-8")
    blocks = data_blocks(page)
    assert set(blocks) == {"data-digest", *CHARTS}

    digest = blocks["data-digest"]
    assert digest["health_counts"]["broken"] == 1
    assert [i["name"] for i in digest["sections"]["Late"]] == ["s-late"]
    assert [i["name"] for i in digest["sections"]["Flapping"]] == ["s-flap"]

    strips = {s["bulk_sync_id"]: s for s in blocks["data-run-strips"]}
    assert len(strips) == 13 and strips["s_never"]["runs"] == []
    assert len(strips["s_flap"]["runs"]) == 20
    assert [r["outcome"] for r in strips["s_broken"]["runs"]] == [
        "success",
        "failed",
        "success",
        "failed",
        "failed",
        "failed",
        "canceled",
    ]

    daily = blocks["data-daily-runs"]
    assert len(daily) == 31
    totals = warehouse.query(
        "select sum(failed_runs) as failed, sum(success_runs) as success from {ds}.daily_executions"
        " where day >= date '2025-02-10'"
    )[0]
    assert sum(d["failed"] for d in daily) == totals["failed"]
    assert sum(d["success"] for d in daily) == totals["success"]

    durations = {d["bulk_sync_id"]: d for d in blocks["data-durations"]}
    assert durations["s_regress"]["p50_s"] == pytest.approx(775)
    assert durations["s_regress"]["p95_s"] == pytest.approx(2300)
    assert durations["s_regress"]["regressed_runs"] == 2

    calendar = {d["day"]: d for d in blocks["data-failure-calendar"]}
    assert calendar["2025-03-07"]["failed"] == 1  # s_broken
    assert calendar["2025-03-04"]["failed"] == 0

    grid = blocks["data-schema-grid"]
    assert [g["bulk_sync_id"] for g in grid] == ["s_chronic", "s_degraded"]
    assert grid[0]["schemas"] == ["flaky", "good", "meh"]
    assert len(grid[0]["executions"]) == 7 and len(grid[0]["cells"]) == 21
    flaky = [c["status"] for c in grid[0]["cells"] if c["schema"] == "flaky"]
    assert flaky.count("failed") == 4


def test_html_is_self_contained(report):
    page = render_html(report)
    assert page.startswith("<!doctype html>")
    for forbidden in ("<script src", "<link", "@import", "url(", "https://"):
        assert forbidden not in page
    assert set(re.findall(r"http://[^\"' >]+", page)) == {"http://www.w3.org/2000/svg"}
    svgs = re.findall(r"<svg .*?</svg>", page, re.S)
    assert len(svgs) >= 5
    for svg in svgs:
        ET.fromstring(svg)  # well-formed
    scripts = re.findall(r"<script([^>]*)>", page)
    assert all('type="application/json"' in attrs for attrs in scripts)


def test_html_escapes_data():
    from pipelines.reports.model import to_json

    assert "</script>" not in to_json({"message": "</script><b>"})
