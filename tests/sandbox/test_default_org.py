"""The default organisation is a healthy one; problems are planted explicitly.

``Sandbox(syncs=..., executions=...)`` stands for a real organisation: 1 to 2 % of its runs
do not complete, whatever is in flight started minutes ago, every history ends at now and
volumes are steady.  ``failure_rate``, ``SyncPlan(ends_before_now=..., inflight=...)`` and
the overrides still plant failures, stalls and stuck runs (see pipelines/demo.py).
"""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

import pytest

from pipelines.sandbox import Sandbox, SyncPlan

from .conftest import PINNED_NOW, us

TERMINAL = {"completed", "failed", "canceled", "errors", "interrupted"}
PERIOD = {"hourly": 3600, "daily": 86_400, "weekly": 604_800}
NOW_US = us(PINNED_NOW.isoformat())


@pytest.fixture(scope="module")
def org() -> Sandbox:
    return Sandbox(seed=3, syncs=10, executions=400, now=PINNED_NOW)


def run_at(execution: dict) -> int:
    return us(execution["started_at"] or execution["created_at"])


def test_one_to_two_percent_of_runs_do_not_complete(org: Sandbox) -> None:
    statuses = Counter(e["status"] for e in org.truth_executions() if e["status"] in TERMINAL)
    share = 1 - statuses["completed"] / sum(statuses.values())
    assert 0.01 <= share <= 0.02, statuses
    assert {"failed", "errors", "canceled"} <= set(statuses)


def test_what_is_in_flight_started_minutes_ago(org: Sandbox) -> None:
    flight = [e for e in org.truth_executions() if e["status"] not in TERMINAL]
    kinds = {e["status"] for e in flight}
    assert len(flight) >= 3 and "running" in kinds, kinds  # sync 0 always has one running
    for execution in flight:
        age_s = (NOW_US - run_at(execution)) / 1e6
        assert 0 < age_s <= 11 * 60, (execution["status"], age_s)


def test_every_scheduled_history_ends_within_its_interval(org: Sandbox) -> None:
    rows = org.truth_executions()
    for sync in org.truth_syncs():
        frequency = sync["default_schedule"]["frequency"]
        if frequency not in PERIOD:
            continue
        done = [e for e in rows if e["bulk_sync_id"] == sync["id"] and e["status"] in TERMINAL]
        newest = max(us(e["updated_at"]) for e in done)
        # the newest run started within one interval (plus the run in flight's minutes)
        assert (NOW_US - newest) / 1e6 <= PERIOD[frequency] + 11 * 60, sync["name"]


def test_planted_problems_are_explicit_switches() -> None:
    failing = Sandbox(seed=3, syncs=2, executions=400, failure_rate=0.1, now=PINNED_NOW)
    statuses = Counter(e["status"] for e in failing.truth_executions())
    assert statuses["completed"] / sum(statuses.values()) < 0.95

    stalled = SyncPlan(
        frequency="daily", executions=10, inflight=("running",), ends_before_now=5 * 3600
    )
    sandbox = Sandbox(seed=3, plans=[stalled], now=PINNED_NOW)
    (running,) = [e for e in sandbox.truth_executions() if e["status"] == "running"]
    age = timedelta(microseconds=NOW_US - run_at(running))
    assert timedelta(hours=5) < age <= timedelta(hours=5, minutes=11)
