"""Definitions on small hand-made histories: what is left out, and where windows end.

Each test loads its own rows (``load``, see conftest.py), with the views pinned to NOW =
Wednesday 2025-03-12 12:00 UTC, and runs on DuckDB and on PostgreSQL.
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from pipelines.reports.report import build_report
from pipelines.reports.views import VIEWS, view_sql
from tests.reports.history import NOW, H, History, M, S, at

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
    running = h.run("s_skew", NOW - 40 * M, "running", None)
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
    # the history is the 60 s run alone: max(3 x 60 s, 30 min)
    stuck = one(wh.view("stuck_executions"))
    assert (stuck["execution_id"], stuck["history_runs"], stuck["p95_duration_s"]) == (
        running,
        1,
        60,
    )
    assert (stuck["threshold_s"], stuck["running_s"]) == (1800, 2400)
    today = one(wh.view("daily_executions", f"day = date '{NOW.date()}'"))
    assert (today["runs"], today["success_runs"], today["failed_runs"]) == (2, 1, 0)
    assert (today["in_flight_runs"], today["records"], today["runtime_s"]) == (1, 20, 60)

    report = build_report(wh.backend.query, wh.dataset)
    assert [r["run_at"] for r in report.runs] == [NOW - 2 * H, NOW - 40 * M]
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


def test_late_means_the_interval_plus_a_grace_of_max_15_min_and_the_p95(load):
    h = History()

    def runs(sid: str, duration: int, last_ended: int) -> None:
        """Three runs an hour apart; the latest ends ``last_ended`` seconds before NOW."""
        h.sync(sid, "hourly")
        for k in (2, 1, 0):
            end = NOW - (last_ended + k * 3600) * S
            h.run(sid, end - duration * S, "completed", duration)

    runs("s_edge", 60, 3600 + 900)  # exactly interval + 15 min: not yet late
    runs("s_over", 60, 3600 + 901)
    runs("s_slow", 1800, 3600 + 1700)  # p95 30 min: the grace is 30 min
    runs("s_slow_over", 1800, 3600 + 1801)
    runs("s_fresh", 60, 1800)
    wh = load(h)

    rows = {r["bulk_sync_id"]: r for r in wh.view("sync_health")}
    assert {k: r["health"] for k, r in rows.items()} == {
        "s_edge": "healthy",
        "s_over": "late",
        "s_slow": "healthy",
        "s_slow_over": "late",
        "s_fresh": "healthy",
    }
    assert (rows["s_edge"]["late_grace_s"], rows["s_edge"]["late_after_s"]) == (900, 4500)
    assert (rows["s_slow"]["late_grace_s"], rows["s_slow"]["late_after_s"]) == (1800, 5400)
    assert rows["s_edge"]["health_reason"] == (
        "last success 1.3 h ago, 1.25x the hourly interval, within the 15.0 min grace"
    )
    assert rows["s_slow"]["health_reason"].endswith(", within the 30.0 min grace")
    assert rows["s_over"]["health_reason"] == "last success 1.3 h ago, 1.25x the hourly interval"
    assert rows["s_fresh"]["health_reason"] == "last success 0.5 h ago, 0.50x the hourly interval"


def test_flapping_needs_three_separate_failure_episodes(load):
    h = History()
    for sid, sequence in (
        ("s_two", "SSSSFSSSSSSSSSFSSSSS"),  # two isolated failures: 4 flips
        ("s_three", "SSSSFSSSSFSSSSSFSSSS"),  # three: 6 flips
        ("s_streak", "SSSSFFFFFFSSSSSSSSSS"),  # one long episode: 2 flips
    ):
        h.sync(sid, "manual")
        for i, outcome in enumerate(sequence):
            status = "failed" if outcome == "F" else "completed"
            h.run(sid, NOW - (20 - i) * H, status, 60)
    wh = load(h)

    rows = {r["bulk_sync_id"]: r for r in wh.view("flapping")}
    assert {k: (r["flips"], r["flapping"]) for k, r in rows.items()} == {
        "s_two": (4, False),
        "s_three": (6, True),
        "s_streak": (2, False),
    }


def test_canceling_has_its_own_threshold(load):
    h = History()

    def sync(sid: str, duration: int, status: str | None, age: timedelta) -> None:
        h.sync(sid, "daily")
        for day in (-3, -2, -1):
            h.run(sid, at(day, 6), "completed", duration)
        if status:
            h.run(sid, NOW - age, status, None)

    sync("s_canceling", 1000, "canceling", 40 * M)  # max(30 min, p95 1000 s) = 30 min
    sync("s_running", 1000, "running", 40 * M)  # max(3 x 1000 s, 30 min) = 50 min
    sync("s_long_cancel", 2400, "canceling", 40 * M)  # max(30 min, 40 min): just inside
    sync("s_queued", 1000, "created", 45 * M)  # not started: aged from created_at
    h.sync("s_new", "daily", created_days=-1)  # no history: a run has the fixed 6 h...
    h.run("s_new", NOW - 5 * H, "running", None)
    h.sync("s_new_cancel", "daily", created_days=-1)  # ...a cancel still 30 min
    h.run("s_new_cancel", NOW - 5 * H, "canceling", None)
    wh = load(h)

    rows = {r["bulk_sync_id"]: r for r in wh.view("stuck_executions")}
    assert sorted(rows) == ["s_canceling", "s_new_cancel"]
    new = rows["s_new_cancel"]
    assert (new["threshold_basis"], new["threshold_s"], new["history_runs"]) == (
        "canceling",
        1800,
        0,
    )
    stuck = rows["s_canceling"]
    assert (stuck["status"], stuck["threshold_basis"], stuck["threshold_s"]) == (
        "canceling",
        "canceling",
        1800,
    )
    assert (stuck["running_s"], stuck["p95_duration_s"], stuck["exceeded_by_s"]) == (
        2400,
        1000,
        600,
    )


def test_a_run_of_fewer_schemas_is_judged_against_runs_of_the_same_schemas(load):
    h = History()
    h.sync("s_sub", "weekly")
    both = {"a": ("completed", 600), "b": ("completed", 400)}
    for w in range(5, 0, -1):
        h.run("s_sub", at(-7 * w, 6), "completed", 60, records=1000, schemas=both)
    only_a = h.run(
        "s_sub", at(0, 6), "completed", 60, records=600, schemas={"a": ("completed", 600)}
    )
    full = h.run("s_sub", at(0, 8), "completed", 60, records=300, schemas=both)
    wh = load(h)

    rows = {(r["execution_id"], r["schema"]): r for r in wh.view("volume_anomalies")}
    subset = rows[(only_a, None)]  # no earlier run synced only `a`: not judged
    assert (subset["baseline_runs"], subset["is_anomaly"]) == (0, False)
    assert (rows[(only_a, "a")]["baseline_runs"], rows[(only_a, "a")]["is_anomaly"]) == (5, False)
    dropped = rows[(full, None)]  # judged against the five full runs, not the subset
    assert (dropped["baseline_runs"], dropped["baseline_median"]) == (5, 1000)
    assert dropped["is_anomaly"] is True
