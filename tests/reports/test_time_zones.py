"""Every view gives the same rows in any session time zone, across daylight-saving changes.

The views compute in UTC: windows are exact hours, differences subtract UTC timestamps, and
days are UTC days.  A session in America/Los_Angeles must therefore read exactly what a UTC
session reads, also when the windows, durations and incidents cross a DST change (a window
of "30 days" in local time would be 719 or 721 hours long there).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from pipelines.reports.report import build_report
from pipelines.reports.views import VIEWS
from tests.reports.history import H, History, M, build

ZONE = "America/Los_Angeles"
# Los Angeles springs forward at 2025-03-09 10:00 UTC and falls back at 2025-11-02 09:00 UTC.
SHIFTS = {
    "spring": datetime(2025, 3, 9, 10, tzinfo=UTC),
    "fall": datetime(2025, 11, 2, 9, tzinfo=UTC),
}


def dst_history(shift: datetime) -> History:
    """Runs on both sides of ``shift``, with the clock pinned 10 h after it.

    Every window (24 h, 7 d, 30 d) then starts before the change and ends after it.
    """
    h = History(now=shift + 10 * H)
    now = h.now
    # half an hour inside and half an hour outside the start of each window
    h.sync("s_edges", "hourly", created_days=-40)
    for hours in (24, 168, 720):
        for edge in (-30 * M, 30 * M):
            start = now - hours * H + edge
            h.run("s_edges", start, "completed", 60, schemas={"a": ("completed", 10)})
    # queued and running across the change
    h.sync("s_across", "daily", created_days=-40)
    h.run("s_across", shift + 30 * M, "completed", 4 * 3600, created=shift - 30 * M)
    # the last success and the open incident both began before the change
    h.sync("s_stale", "hourly", created_days=-40)
    h.run("s_stale", shift - 5 * H, "completed", 60)
    h.run("s_stale", shift - 3 * H, "failed", 60, message="boom")
    # an incident that spans the change, and another after it: MTBI spans it too
    h.sync("s_incidents", "hourly", created_days=-40)
    for hours, status in ((-6, "failed"), (2, "completed"), (4, "failed")):
        h.run("s_incidents", shift + hours * H, status, 60)
    # running since before the change, without history: the fixed threshold
    h.sync("s_stuck", "daily", created_days=-40)
    h.run("s_stuck", shift - 1 * H, "running", None)
    # weekly at 03:00 UTC (the evening before in Los Angeles): UTC days, weekdays, baselines
    h.sync("s_days", "weekly", created_days=-40)
    weeks = [(100, 600), (110, 610), (90, 590), (105, 620), (95, 580), (40, 1000)]
    for back, (records, duration) in zip(range(5, -1, -1), weeks, strict=True):
        start = h.day(-7 * back) + 3 * H
        schemas = {"b": ("completed", 50)}
        h.run("s_days", start, "completed", duration, records=records, schemas=schemas)
    return h


def in_utc(value: Any) -> Any:
    return value.astimezone(UTC) if isinstance(value, datetime) else value


def read(warehouse: Any, name: str) -> list[dict[str, Any]]:
    """The view's rows in a stable order, timestamps shown in UTC (the same instants)."""
    rows = [{k: in_utc(v) for k, v in r.items()} for r in warehouse.view(name)]
    return sorted(rows, key=repr)


@pytest.mark.parametrize("case", ["spring", "fall", "known"])
def test_every_view_is_the_same_in_any_session_time_zone(load, case):
    wh = load(build() if case == "known" else dst_history(SHIFTS[case]))
    utc = {name: read(wh, name) for name in VIEWS}
    with wh.backend.time_zone(ZONE):
        local = {name: read(wh, name) for name in VIEWS}
        local_report = build_report(wh.backend.query, wh.dataset)

    for name in VIEWS:
        assert len(local[name]) == len(utc[name]), name
        for got, expected in zip(local[name], utc[name], strict=True):
            assert got == expected, name
    assert local_report == build_report(wh.backend.query, wh.dataset)


@pytest.mark.parametrize("case", ["spring", "fall"])
def test_the_numbers_across_the_change(load, case):
    """The figures the comparison above relies on, by hand, read in Los Angeles."""
    history = dst_history(SHIFTS[case])
    wh = load(history)
    with wh.backend.time_zone(ZONE):
        health = {r["bulk_sync_id"]: r for r in wh.view("sync_health")}
        edges = health["s_edges"]  # 23.5 h, 167.5 h and 719.5 h ago are just inside
        assert (edges["runs_24h"], edges["runs_7d"], edges["runs_30d"]) == (1, 3, 5)
        (across,) = wh.view("execution_outcomes", "bulk_sync_id = 's_across'")
        assert (across["queue_s"], across["duration_s"]) == (3600, 4 * 3600)
        assert health["s_stale"]["staleness_s"] == 15 * 3600 - 60
        (recovery,) = wh.view("recovery", "bulk_sync_id = 's_incidents'")
        assert (recovery["median_ttr_hours"], recovery["mtbi_hours"]) == (8, 10)
        (stale,) = wh.view("incidents", "bulk_sync_id = 's_stale'")
        assert stale["length_hours"] == pytest.approx(13 - 1 / 60)
        (stuck,) = wh.view("stuck_executions")
        assert (stuck["bulk_sync_id"], stuck["running_s"]) == ("s_stuck", 11 * 3600)
        days = wh.view("execution_durations", "bulk_sync_id = 's_days'")
        today = max(days, key=lambda r: r["run_at"])
        assert today["run_day"] == history.now.date()  # a Sunday, in UTC
        # days -7, -14, -21, -28: 580, 620, 590, 610 s (day -35 is outside the 28 days)
        assert (today["weekday"], today["baseline_days"], today["baseline_s"]) == (0, 4, 600)
        assert today["regressed"] is True
        (anomaly,) = wh.view("volume_anomalies", "is_anomaly")  # 40 vs 100 +/- 5
        assert (anomaly["level"], anomaly["record_count"], anomaly["baseline_runs"]) == (
            "execution",
            40,
            5,
        )
