"""SIGKILL at any moment of a first load: re-runs resume from checkpoints and lose nothing.

Three kinds of kill point:
* from the sandbox: on the n-th API request, so the process dies mid-HTTP-exchange;
* at a dlt step boundary: the process kills itself right after a named dlt internal returns
  (a `sitecustomize` shim in the subprocess only), which pins the windows between extract,
  normalize, the warehouse commit and the archive of a package;
* seeded random delays (soak), which land anywhere in extract, normalize or load.
"""

from __future__ import annotations

import math
import random

import pytest

from tests.conftest import assert_matches_truth
from tests.reliability.helpers import (
    TERMINAL,
    Killer,
    assert_state_not_ahead_of_data,
    crash_env,
    duckdb_opens,
    finish,
    pending_packages,
    spawn,
)


def _killed_series(etl, plan, killer):
    """Run the CLI as a subprocess under each kill point of `plan`, then until it completes.

    Returns where each kill landed and how many runs it took.
    """
    landed: list[str] = []
    runs = 0
    for mode, arg in plan:
        proc = spawn(etl)
        killer.arm(proc, mode, arg)
        outcome = finish(proc)
        runs += 1
        if outcome.code == 0:  # it finished before the kill point came
            break
        assert outcome.code == -9 and killer.fired, outcome.err
        landed.append(killer.where)
        if etl.db_path.exists():
            assert duckdb_opens(etl.db_path)
        assert_state_not_ahead_of_data(etl)
    killer.arm(None, "none")
    code, _, err = etl.cli("run")  # the run that completes (in-process: no kill needed)
    runs += 1
    assert code == 0, err
    assert pending_packages(etl) == []
    return landed, runs


def _uninterrupted_requests(sb, make_etl, **env):
    sb.reset_log()
    make_etl(sb, name="uninterrupted", **env).run()
    total, listing = len(sb.requests), sb.count(kind="list_executions")
    sb.reset_log()
    return total, listing


def _uninterrupted_list_requests(sb, checkpoint: int) -> int:
    """What one uninterrupted first load asks of the executions list, per the issue-3 budget:
    every terminal page once, one overlap page per later checkpoint, one in-flight snapshot."""
    total = 0
    for sync_id in sb.sync_ids():
        terminal = sum(
            e["bulk_sync_id"] == sync_id and e["status"] in TERMINAL for e in sb.truth_executions()
        )
        pages = max(1, math.ceil(terminal / 100))
        total += pages + (math.ceil(pages / checkpoint) - 1) + 1
    return total


def test_a_first_load_killed_mid_request_three_times_resumes_and_ends_equal_to_the_truth(
    make_sandbox, make_etl
):
    sb = make_sandbox(seed=71, syncs=2, executions=230)
    etl = make_etl(sb, CHECKPOINT_PAGES="1", CONCURRENCY="2")
    killer = Killer(sb, pipeline_root=etl.tmp / "pl")
    plan = [("request", 3), ("request", 6), ("request", 5)]
    landed, runs = _killed_series(etl, plan, killer)
    print(f"kill points survived: {len(landed)} ({'; '.join(landed)}), runs: {runs}")
    assert len(landed) == 3
    assert duckdb_opens(etl.db_path)
    assert_matches_truth(etl)
    # Each restart costs at most one checkpoint per sync, its overlap page and its snapshot.
    syncs, checkpoint = len(sb.sync_ids()), 1
    baseline = _uninterrupted_list_requests(sb, checkpoint)
    budget = baseline + len(landed) * (syncs * (checkpoint + 2) + 2)
    made = sb.count(kind="list_executions")
    print(f"list_executions: uninterrupted {baseline}, killed series {made}, budget {budget}")
    assert made <= budget


# load job files are named after their table: `<table>.<hash>.<n>.<format>`
EXECUTIONS_FILE, SCHEMAS_FILE = "bulk_sync_executions.", "bulk_sync_executions__schemas."

DLT_BOUNDARIES = [
    pytest.param("after-extract-commit", "", id="after-extract-commit", marks=pytest.mark.soak),
    pytest.param(
        "after-normalize-commit",
        "",
        id="after-normalize-commit",
    ),
    pytest.param(
        "after-first-copy-job",
        EXECUTIONS_FILE,
        id="after-executions-copied-to-staging",
        marks=pytest.mark.soak,
    ),
    pytest.param(
        "after-first-copy-job",
        SCHEMAS_FILE,
        id="after-schema-rows-copied-to-staging",
    ),
    pytest.param(
        "after-destination-commit", "", id="after-destination-commit", marks=pytest.mark.soak
    ),
    pytest.param("after-package-archived", "", id="after-package-archived", marks=pytest.mark.soak),
]


@pytest.mark.parametrize(("point", "match"), DLT_BOUNDARIES)
def test_a_kill_at_each_dlt_step_boundary_is_recovered_by_the_next_run(
    make_sandbox, make_etl, point, match
):
    sb = make_sandbox(seed=72, syncs=2, executions=30)
    etl = make_etl(sb)
    crashed = finish(spawn(etl, env=crash_env(etl, point, nth=1, match=match)))
    assert crashed.code == -9, f"the crash point was not reached: {crashed.err[-1000:]}"
    assert_state_not_ahead_of_data(etl)
    code, _, err = etl.cli("run")
    assert code == 0, err
    assert pending_packages(etl) == []
    assert duckdb_opens(etl.db_path)
    assert_matches_truth(etl)


@pytest.mark.soak
def test_a_first_load_survives_fifteen_random_kills_with_at_most_twice_the_requests(
    make_sandbox, make_etl
):
    rng = random.Random(7707)
    # Big enough that the load outlasts the kills: a faster product must not finish early.
    sb = make_sandbox(seed=77, syncs=4, executions=4000)
    env = {"CHECKPOINT_PAGES": "1"}
    baseline, _ = _uninterrupted_requests(sb, make_etl, **env)
    etl = make_etl(sb, **env)
    killer = Killer(sb, pipeline_root=etl.tmp / "pl")
    plan = []
    for _ in range(24):
        mode = rng.choice(["time", "time", "time", "request", "load"])
        arg = rng.uniform(0.0, 2.0) if mode == "time" else rng.randint(1, 25)
        plan.append((mode, arg))
    landed, runs = _killed_series(etl, plan, killer)
    phases = {p: sum(w.startswith(p) for w in landed) for p in ("extract", "normalize", "load")}
    print(f"kill points survived: {len(landed)} {phases}, runs: {runs}")
    assert len(landed) >= 15
    assert phases["load"] >= 1 and phases["extract"] >= 1
    assert duckdb_opens(etl.db_path)
    assert_matches_truth(etl)
    made = len(sb.requests)
    print(f"API requests: uninterrupted {baseline}, killed series {made}")
    assert made <= 2 * baseline
