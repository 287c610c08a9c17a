"""Every view's numbers against hand-computed expectations on the history in history.py.

Each test runs on DuckDB and on PostgreSQL (see conftest.py).  Times below are relative to
NOW = Wednesday 2025-03-12 12:00 UTC; "day -3" means 2025-03-09.
"""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from tests.reports.history import NOW, H, M, at

approx = pytest.approx


def by_sync(rows: list[dict]) -> dict[str, dict]:
    return {r["bulk_sync_id"]: r for r in rows}


def test_clock_is_pinned(warehouse):
    assert warehouse.view("report_clock")[0]["now_ts"] == NOW


def test_execution_outcomes(warehouse):
    rows = {r["execution_id"]: r for r in warehouse.view("execution_outcomes")}
    degraded = sorted(
        (r for r in rows.values() if r["bulk_sync_id"] == "s_degraded"), key=lambda r: r["run_at"]
    )
    # `errors` without failures is still partial; `errors` with a failed schema is partial
    assert [(r["status"], r["outcome"], r["failed_schemas"]) for r in degraded] == [
        ("errors", "partial", 0),
        ("completed", "success", 0),
        ("errors", "partial", 1),
    ]
    healthy = [r for r in rows.values() if r["bulk_sync_id"] == "s_healthy"]
    assert len(healthy) == 10  # the is_test execution is left out
    outcome = {r["status"]: r["outcome"] for r in healthy}
    assert outcome["paused_by_future_api"] == "unknown"
    assert outcome["canceled"] == "canceled"
    assert outcome["running"] == "in_flight"
    assert outcome["interrupted"] == "failed"
    unknown = next(r for r in healthy if r["status"] == "paused_by_future_api")
    assert unknown["is_terminal"] is False
    never_finished = next(r for r in healthy if r["status"] == "interrupted")
    assert never_finished["duration_s"] is None  # never counted as zero
    assert never_finished["ended_at"] == NOW - 20 * 24 * H + 30 * M
    assert all(r["queue_s"] == approx(30) for r in rows.values() if r["started_at"])


EXPECTED_HEALTH = {
    "s_paused": ("inactive", "paused (active = false)"),
    "s_deleted": ("inactive", "deleted from Polytomic"),
    "s_never": ("never_run", "no executions loaded"),
    "s_first": ("never_run", "no finished run yet: 2 in flight, 1 canceled"),
    "s_broken": ("broken", "latest run failed (3 failure(s) in a row): Connection refused"),
    "s_degraded": ("degraded", "latest run errors: 1 failed schema(s), 3 error(s)"),
    "s_late": ("late", "last success 3.0 h ago, 2.98x the hourly interval"),
    "s_healthy": ("healthy", "last success 1.0 h ago, 0.97x the hourly interval"),
    "s_flap": ("healthy", "latest run succeeded; lateness not judged (frequency manual)"),
    "s_volume": ("healthy", "last success 6.0 h ago, 0.04x the weekly interval"),
    "s_regress": ("healthy", "last success 7.8 h ago, 0.32x the daily interval"),
    "s_stuck": ("healthy", "last success 22.8 h ago, 0.95x the daily interval"),
    "s_chronic": ("healthy", "last success 22.8 h ago, 0.95x the daily interval"),
}


def test_sync_health_rules_and_reasons(warehouse):
    rows = by_sync(warehouse.view("sync_health"))
    assert {k: (r["health"], r["health_reason"]) for k, r in rows.items()} == EXPECTED_HEALTH


def test_sync_health_rates_durations_and_streaks(warehouse):
    rows = by_sync(warehouse.view("sync_health"))
    healthy = rows["s_healthy"]
    # terminal runs: S -40d, F -20d (never finished), F -10d, P -3d, S -30h, S -2h, S -1h;
    # the canceled, unknown, in-flight and test runs are not in any rate
    assert (healthy["runs_24h"], healthy["success_rate_24h"]) == (2, 1.0)
    assert healthy["runs_7d"] == 4
    assert (healthy["success_rate_7d"], healthy["partial_rate_7d"]) == (0.75, 0.25)
    assert healthy["failed_rate_7d"] == 0.0
    assert healthy["runs_30d"] == 6
    assert healthy["success_rate_30d"] == approx(3 / 6)
    assert healthy["partial_rate_30d"] == approx(1 / 6)
    assert healthy["failed_rate_30d"] == approx(2 / 6)
    # completed runs in 30 d: 120, 180, 240, 300 s
    assert healthy["p50_duration_s"] == approx(210)
    assert healthy["p95_duration_s"] == approx(291)  # 240 + 0.85 * 60
    assert healthy["max_duration_s"] == approx(300)
    assert (healthy["last_status"], healthy["last_outcome"]) == ("running", "success")
    assert healthy["staleness_s"] == approx(3480)
    assert healthy["lateness_ratio"] == approx(3480 / 3600)
    assert healthy["in_flight_runs"] == 1
    # 500, 600, 600, 700, 850, 950, 1000, 3000: the failed 300 s run is left out
    regress = rows["s_regress"]
    assert regress["p50_duration_s"] == approx(775)
    assert regress["p95_duration_s"] == approx(2300)  # 1000 + 0.65 * 2000
    assert regress["max_duration_s"] == approx(3000)
    assert rows["s_broken"]["failure_streak"] == 3
    assert rows["s_broken"]["last_status"] == "canceled"  # latest run of any kind
    assert rows["s_broken"]["last_outcome"] == "failed"  # latest terminal run
    assert rows["s_late"]["staleness_s"] == approx(10740)
    assert rows["s_late"]["lateness_ratio"] == approx(10740 / 3600)
    # grace: max(15 min, p95); s_late's runs take 60 s, s_regress's p95 is 2300 s
    assert (rows["s_late"]["late_grace_s"], rows["s_late"]["late_after_s"]) == (900, 4500)
    assert regress["late_grace_s"] == approx(2300)
    assert regress["late_after_s"] == approx(86400 + 2300)
    assert rows["s_flap"]["lateness_ratio"] is None
    assert rows["s_flap"]["late_after_s"] is None
    never = rows["s_never"]
    assert (never["executions"], never["runs_30d"], never["failure_streak"]) == (0, 0, 0)
    assert never["success_rate_30d"] is None and never["last_success_at"] is None


def test_daily_executions_is_zero_filled(warehouse):
    rows = warehouse.view("daily_executions")
    broken = {r["day"]: r for r in rows if r["bulk_sync_id"] == "s_broken"}
    # created on day -10, so the spine runs from day -10 to today
    assert sorted(broken) == [date(2025, 3, 2) + timedelta(days=i) for i in range(11)]
    assert sum(r["runs"] for r in broken.values()) == 7
    quiet = broken[date(2025, 3, 4)]
    assert (quiet["runs"], quiet["records"], quiet["runtime_s"]) == (0, 0, 0)
    failed_day = broken[date(2025, 3, 7)]
    assert (failed_day["runs"], failed_day["failed_runs"], failed_day["success_runs"]) == (1, 1, 0)
    assert failed_day["runtime_s"] == approx(600)
    assert broken[date(2025, 3, 12)]["canceled_runs"] == 1
    never = sorted((r for r in rows if r["bulk_sync_id"] == "s_never"), key=lambda r: r["day"])
    assert [(r["day"], r["runs"]) for r in never] == [
        (date(2025, 3, 11), 0),
        (date(2025, 3, 12), 0),
    ]
    today = next(r for r in rows if r["bulk_sync_id"] == "s_healthy" and r["day"] == NOW.date())
    # S, S, canceled, unknown, running (the test run is left out); runtime of finished runs
    assert (today["runs"], today["success_runs"], today["canceled_runs"]) == (5, 2, 1)
    assert (today["in_flight_runs"], today["failed_runs"], today["records"]) == (1, 0, 50)
    assert today["runtime_s"] == approx(120 + 180 + 30)
    healthy_days = [r["day"] for r in rows if r["bulk_sync_id"] == "s_healthy"]
    assert min(healthy_days) == date(2025, 1, 29)  # the dataset's first run day (s_volume)
    assert len(healthy_days) == 43


def test_execution_durations_and_regressed(warehouse):
    rows = warehouse.view("execution_durations", "bulk_sync_id = 's_regress'")
    got = sorted(
        (r["run_at"], r["duration_s"], r["baseline_s"], r["baseline_days"], r["regressed"])
        for r in rows
    )
    assert got == [
        (at(-28, 2), 600, None, 0, False),
        (at(-21, 2), 600, None, 1, False),
        (at(-14, 2), 500, None, 2, False),  # 2 days of history: not judged
        (at(-14, 3), 700, None, 2, False),
        (at(-7, 2), 950, 600, 3, True),  # 950 > 1.5 x 600
        (at(-6, 2), 3000, None, 0, False),  # a Thursday: no history
        (at(0, 0, 10), 300, 600, 4, False),  # failed: never regressed
        (at(0, 2), 1000, 600, 4, True),  # median of 600, 600, 600, 950
        (at(0, 4), 850, 600, 4, False),  # near: 850 < 900
    ]
    resync = warehouse.view("execution_durations", "bulk_sync_id = 's_volume' and is_resync")
    assert [(r["duration_s"], r["regressed"]) for r in resync] == [(600, False)]


def test_schema_health_and_chronic(warehouse):
    rows = {(r["bulk_sync_id"], r["schema"]): r for r in warehouse.view("schema_health")}
    flaky = rows[("s_chronic", "flaky")]
    assert (flaky["runs_30d"], flaky["failed_30d"]) == (7, 4)
    assert flaky["fail_rate_30d"] == approx(4 / 7)
    assert flaky["last_success_at"] == at(-1, 13, 10)
    assert flaky["median_records_30d"] == approx(20)  # 10, 20, 30
    assert flaky["latest_error_message"] == "flaky: timeout"
    assert flaky["latest_error_at"] == at(-2, 13, 10)
    # the failure on day -7 was inside a failed execution: not in the chronic window
    assert (flaky["chronic_window_runs"], flaky["chronic_failures"], flaky["chronic"]) == (
        5,
        3,
        True,
    )
    meh = rows[("s_chronic", "meh")]
    assert (meh["chronic_failures"], meh["chronic"]) == (2, False)
    assert meh["median_records_30d"] == approx(15)  # 0, 10, 20, 30
    assert rows[("s_degraded", "x")]["fail_rate_30d"] == approx(1 / 3)
    assert rows[("s_degraded", "x")]["latest_status"] == "failed"
    assert [k for k, r in rows.items() if r["chronic"]] == [("s_chronic", "flaky")]


def test_incidents_open_and_resolved(warehouse):
    rows = warehouse.view("incidents")
    assert len(rows) == 8
    broken = sorted(
        (r for r in rows if r["bulk_sync_id"] == "s_broken"), key=lambda r: r["started_at"]
    )
    assert [(r["started_at"], r["ended_at"], r["length_runs"], r["state"]) for r in broken] == [
        (at(-5, 3, 10), at(-4, 3, 10), 1, "resolved"),
        (at(-3, 3, 10), None, 3, "open"),
    ]
    assert broken[0]["length_hours"] == approx(24)
    assert broken[1]["length_hours"] == approx(80 + 50 / 60)  # open: until NOW
    assert broken[1]["first_error_message"] == "Connection refused"
    (healthy,) = [r for r in rows if r["bulk_sync_id"] == "s_healthy"]
    # F (never finished, known at updated_at), F, P: ended by the success 30 h ago
    assert (healthy["length_runs"], healthy["failed_runs"], healthy["state"]) == (3, 2, "resolved")
    assert healthy["started_at"] == NOW - 20 * 24 * H + 30 * M
    assert healthy["ended_at"] == NOW - 30 * H + 5 * M
    assert healthy["length_hours"] == approx(450 - 25 / 60)


def test_recovery(warehouse):
    rows = by_sync(warehouse.view("recovery"))
    broken = rows["s_broken"]
    assert (broken["incidents"], broken["resolved_incidents"]) == (2, 1)
    assert broken["median_ttr_hours"] == approx(24)
    assert broken["p90_ttr_hours"] == approx(24)
    assert broken["open_incident_age_hours"] == approx(80 + 50 / 60)
    assert broken["mtbi_hours"] == approx(48)
    flap = rows["s_flap"]  # TTRs 2 h, 1 h, 2 h; starts 0 h, 4 h, 10 h
    assert (flap["incidents"], flap["median_ttr_hours"], flap["p90_ttr_hours"]) == (3, 2, 2)
    assert flap["mtbi_hours"] == approx(5)
    assert rows["s_healthy"]["mtbi_hours"] is None
    never = rows["s_never"]
    assert (never["incidents"], never["median_ttr_hours"], never["open_incident_age_hours"]) == (
        0,
        None,
        None,
    )


def test_flapping(warehouse):
    rows = by_sync(warehouse.view("flapping"))
    flap = rows["s_flap"]  # the two older failures fall outside the 20-run window
    assert flap["sequence"] == "SSFSSSPSFFSSSSSSSSSS"
    # three separate episodes (F, P, FF): 6 flips, exactly the default threshold
    assert (flap["terminal_runs"], flap["flips"], flap["flapping"]) == (20, 6, True)
    assert flap["flip_rate"] == approx(6 / 19)
    healthy = rows["s_healthy"]  # 3 flips
    assert (healthy["sequence"], healthy["flips"], healthy["flapping"]) == ("SFFPSSS", 3, False)
    chronic = rows["s_chronic"]  # near: 5 flips, one short of the threshold
    assert (chronic["sequence"], chronic["flips"], chronic["flapping"]) == ("FSPSPPS", 5, False)
    never = rows["s_never"]
    assert (never["terminal_runs"], never["flips"], never["sequence"]) == (0, 0, "")
    assert never["flip_rate"] is None and never["flapping"] is False
    assert sorted(k for k, r in rows.items() if r["flapping"]) == ["s_flap"]


def test_volume_anomalies(warehouse):
    rows = warehouse.view("volume_anomalies")
    flagged = sorted((r["level"], r["schema"] or "", r["run_at"]) for r in rows if r["is_anomaly"])
    assert flagged == [("execution", "", at(0, 6)), ("schema", "events", at(0, 6))]
    today = {
        (r["level"], r["schema"]): r
        for r in rows
        if r["bulk_sync_id"] == "s_volume" and r["run_at"] == at(0, 6)
    }
    run = today[("execution", None)]  # baseline 1000, 1010, 990, 1005, 995, 1000
    assert (run["baseline_runs"], run["baseline_median"], run["baseline_mad"]) == (6, 1000, 5)
    assert run["pct_change"] == approx(-0.4)
    assert run["robust_z"] == approx(400 / (1.4826 * 5))
    events = today[("schema", "events")]  # zero after non-zero, though z is only 1.05
    assert (events["baseline_median"], events["baseline_mad"]) == (21, 13.5)
    assert events["robust_z"] == approx(21 / (1.4826 * 13.5))
    assert events["zero_after_nonzero"] is True
    orders = today[("schema", "orders")]  # near: z = 17 but only +25 % (inside the 30 % band)
    assert orders["robust_z"] == approx(25 / 1.4826)
    assert (orders["outside_band"], orders["is_anomaly"]) == (False, False)
    customers = today[("schema", "customers")]  # near: +40 % but z = 0.67 (noisy baseline)
    assert customers["baseline_mad"] == 40
    assert customers["robust_z"] == approx(40 / (1.4826 * 40))
    assert (customers["outside_band"], customers["is_anomaly"]) == (True, False)
    early_zero = next(r for r in rows if r["schema"] == "refunds" and r["record_count"] == 0)
    assert (early_zero["baseline_runs"], early_zero["zero_after_nonzero"]) == (3, True)
    assert early_zero["is_anomaly"] is False  # needs 4 baseline runs
    resync = [r for r in rows if r["bulk_sync_id"] == "s_volume" and r["record_count"] == 50000]
    assert resync == []


def test_stuck_executions(warehouse):
    rows = by_sync(warehouse.view("stuck_executions"))
    assert sorted(rows) == ["s_first", "s_stuck"]
    stuck = rows["s_stuck"]  # p95 of 500, 600, 700 s is 690 s: max(3 x 690, 1800) s
    assert (stuck["status"], stuck["started"], stuck["threshold_basis"]) == (
        "running",
        True,
        "history",
    )
    assert (stuck["running_s"], stuck["median_duration_s"], stuck["history_runs"]) == (
        2400,
        600,
        3,
    )
    assert stuck["p95_duration_s"] == approx(690)
    assert stuck["threshold_s"] == approx(2070)
    assert stuck["exceeded_by_s"] == approx(330)
    queued = rows["s_first"]  # never started, no history: the fixed 6 h threshold
    assert (queued["status"], queued["started"], queued["threshold_basis"]) == (
        "scheduled",
        False,
        "fixed",
    )
    assert (queued["running_s"], queued["threshold_s"]) == (7 * 3600, 6 * 3600)
