"""Definitions on small hand-made histories: what is left out, and where windows end.

Each test loads its own rows (``load``, see conftest.py), with the views pinned to NOW =
Wednesday 2025-03-12 12:00 UTC, and runs on DuckDB and on PostgreSQL.
"""

from __future__ import annotations

import pytest

from pipelines.reports.report import build_report
from pipelines.reports.views import VIEWS, view_sql
from tests.reports.history import NOW, H, History, M, at

approx = pytest.approx


def one(rows: list[dict]) -> dict:
    assert len(rows) == 1, rows
    return rows[0]


def test_deleted_executions_are_left_out_of_every_view(load):
    h = History()
    h.sync("s_gone", "daily")
    kept = h.run("s_gone", NOW - 2 * H, "completed", 60, schemas={"a": ("completed", 10)})
    gone = NOW - 10 * M
    deleted = [
        # a success with a volume of its own: would count and set a baseline
        h.run("s_gone", NOW - 3 * H, "completed", 300, records=999, deleted_at=gone),
        # the latest terminal run, failed with a failed schema: would make the sync broken
        h.run(
            "s_gone",
            NOW - 1 * H,
            "failed",
            60,
            message="deleted upstream",
            schemas={"a": "failed"},
            deleted_at=gone,
        ),
        # queued 7 h: over the fixed 6 h threshold, so it would be stuck
        h.run("s_gone", None, "scheduled", None, created=NOW - 7 * H, deleted_at=gone),
    ]
    wh = load(h)

    for name in VIEWS:
        rows = wh.view(name)
        assert not [r for r in rows if r.get("execution_id") in deleted], name
    assert [r["execution_id"] for r in wh.view("execution_outcomes")] == [kept]
    assert [(r["execution_id"], r["schema"]) for r in wh.view("schema_outcomes")] == [(kept, "a")]
    assert wh.view("stuck_executions") == []
    health = one(wh.view("sync_health"))
    assert (health["health"], health["last_status"], health["failure_streak"]) == (
        "healthy",
        "completed",
        0,
    )
    assert (health["executions"], health["in_flight_runs"]) == (1, 0)
    assert (health["runs_24h"], health["success_rate_24h"], health["runs_30d"]) == (1, 1.0, 1)
    assert health["max_duration_s"] == approx(60)
    today = one(wh.view("daily_executions", f"day = date '{NOW.date()}'"))
    assert (today["runs"], today["success_runs"], today["failed_runs"]) == (1, 1, 0)
    assert (today["in_flight_runs"], today["records"], today["runtime_s"]) == (0, 10, 60)
    schema = one(wh.view("schema_health"))
    assert (schema["runs_30d"], schema["failed_30d"], schema["latest_error_message"]) == (
        1,
        0,
        None,
    )
    assert wh.view("incidents") == []
    assert one(wh.view("recovery"))["incidents"] == 0
    assert one(wh.view("flapping"))["sequence"] == "S"
    assert [r["execution_id"] for r in wh.view("execution_durations")] == [kept]
    volume = wh.view("volume_anomalies")
    assert sorted((r["level"], r["record_count"], r["baseline_runs"]) for r in volume) == [
        ("execution", 10, 0),
        ("schema", 10, 0),
    ]


def test_tombstone_schema_rows_are_not_counted(load):
    h = History()
    h.sync("s_tomb", "daily")
    # a merge deletes the tombstone with the rows it replaces; these hand-made rows keep it
    with_schema = h.run(
        "s_tomb", at(-1, 6), "completed", schemas={"a": ("completed", 10)}, tombstone=True
    )
    emptied = h.run("s_tomb", at(0, 6), "completed", tombstone=True)
    assert sum(1 for r in h.schemas if r["_tombstone"]) == 2
    wh = load(h)

    outcomes = {r["execution_id"]: r for r in wh.view("execution_outcomes")}
    assert [
        (outcomes[e]["schemas"], outcomes[e]["failed_schemas"]) for e in (with_schema, emptied)
    ] == [
        (1, 0),
        (0, 0),
    ]
    assert {r["outcome"] for r in outcomes.values()} == {"success"}
    assert [(r["execution_id"], r["schema"]) for r in wh.view("schema_outcomes")] == [
        (with_schema, "a")
    ]
    schema = one(wh.view("schema_health"))
    assert (schema["schema"], schema["runs_30d"], schema["latest_status"]) == ("a", 1, "completed")
    volume = wh.view("volume_anomalies", "level = 'schema'")
    assert [(r["schema"], r["record_count"]) for r in volume] == [("a", 10)]


def test_future_dated_runs_are_in_no_window(load):
    h = History()
    h.sync("s_skew", "hourly")
    h.run("s_skew", NOW - 2 * H, "completed", 60, schemas={"a": ("completed", 10)})
    running = h.run("s_skew", NOW - 30 * M, "running", None)
    # started an hour from now (e.g. a skewed clock upstream)
    h.run("s_skew", NOW + 1 * H, "failed", 60, schemas={"a": "failed"})
    # started before now, but its outcome is only known 50 minutes from now
    h.run("s_skew", NOW - 10 * M, "completed", 3600, schemas={"a": ("completed", 500)})
    wh = load(h)

    health = one(wh.view("sync_health"))
    for window in ("24h", "7d", "30d"):
        assert health[f"runs_{window}"] == 1, window
        assert health[f"success_rate_{window}"] == 1.0, window
        assert health[f"failed_rate_{window}"] == 0.0, window
    assert (health["p50_duration_s"], health["max_duration_s"]) == (60, 60)
    schema = one(wh.view("schema_health"))
    assert (schema["runs_30d"], schema["failed_30d"], schema["median_records_30d"]) == (1, 0, 10)
    # the history median is the 60 s run alone: max(120, 60 + 900) s
    stuck = one(wh.view("stuck_executions"))
    assert (stuck["execution_id"], stuck["history_runs"], stuck["median_duration_s"]) == (
        running,
        1,
        60,
    )
    assert (stuck["threshold_s"], stuck["running_s"]) == (960, 1800)
    today = one(wh.view("daily_executions", f"day = date '{NOW.date()}'"))
    assert (today["runs"], today["success_runs"], today["failed_runs"]) == (2, 1, 0)
    assert (today["in_flight_runs"], today["records"], today["runtime_s"]) == (1, 20, 60)

    report = build_report(wh.backend.query, wh.dataset)
    assert [r["run_at"] for r in report.runs] == [NOW - 2 * H, NOW - 30 * M]
    durations = one(report.durations)
    assert (durations["runs"], durations["p50_s"], durations["max_s"]) == (1, 60, 60)


def test_last_success_at_is_the_ended_at_of_the_latest_success(load):
    h = History()
    h.sync("s_ended", "hourly")
    h.run("s_ended", NOW - 3 * H, "completed", 60)
    # no completed_at: the outcome is known at updated_at
    h.run("s_ended", NOW - 2 * H, "completed", None, updated=NOW - 90 * M)
    h.run("s_ended", NOW - 1 * H, "failed", 60)
    wh = load(h)

    health = one(wh.view("sync_health"))
    assert health["last_success_at"] == NOW - 90 * M
    assert health["staleness_s"] == 5400
    header = view_sql("sync_health", wh.dialect).split("create view")[0]
    assert "last_success_at = ended_at of the latest success" in header
    assert "completed_at of the latest success" not in header
