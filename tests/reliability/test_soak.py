"""Years of cron in a minute: consecutive incremental runs with random changes in between.

After every run the warehouse equals the truth for the live syncs, deleted syncs keep the
history that was loaded, and the dlt state stays small: bounded in size and not growing
with the number of runs.
"""

from __future__ import annotations

import json
import random
from datetime import timedelta

import pytest

from pipelines.sandbox import SandboxConflict, SyncPlan
from tests.conftest import assert_matches_truth
from tests.reliability.helpers import destination_state, local_state, pipeline_dir, sync_states

STATE_BOUND = 200_000  # bytes, the whole pipeline state
PER_SYNC_BOUND = 20_000  # bytes, one sync's record in it


def _change(sb, rng: random.Random, log: list[str]) -> None:
    """One batch of the changes a real org sees between two cron runs."""
    sb.advance(rng.uniform(60, 4 * 3600))
    live = sb.sync_ids()
    for sync_id in rng.sample(live, k=rng.randint(1, len(live))):
        action = rng.choice(["new", "new", "finish", "start", "reupdate", "late", "queue"])
        try:
            if action == "new":
                sb.add_executions(sync_id, n=rng.randint(1, 40))
            elif action == "finish":
                sb.finish_inflight(sync_id, status=rng.choice(["completed", "failed", "errors"]))
            elif action == "start":
                sb.start_execution(sync_id, "running")
            elif action == "queue":
                sb.start_execution(sync_id, "scheduled")
            elif action == "reupdate":
                for _ in range(rng.randint(1, 3)):
                    sb.reupdate(sync_id, keep_schemas=rng.randint(1, 2))
            elif action == "late":
                sb.add_late_commit(sync_id, behind_seconds=rng.uniform(5, 300))
        except (SandboxConflict, LookupError, ValueError) as exc:  # no running/terminal row
            action += f" (skipped: {type(exc).__name__})"
        log.append(f"{action} {sync_id[:8]}")
    if rng.random() < 0.15:  # many executions sharing one updated_at (a bulk re-stamp)
        sync_id = rng.choice(live)
        stamp = sb.now() - timedelta(seconds=1)
        sb.add_executions(sync_id, n=rng.randint(20, 150), updated_at=stamp, completed_at=stamp)
        log.append(f"tied-batch {sync_id[:8]}")
    if rng.random() < 0.15:
        log.append(f"add-sync {sb.add_sync(executions=rng.randint(0, 150))[:8]}")
    if rng.random() < 0.1 and len(live) > 3:
        gone = rng.choice(live[1:])  # sync 0 lives throughout: its state size is tracked
        sb.delete_sync(gone)
        log.append(f"delete-sync {gone[:8]}")
    if rng.random() < 0.2:
        style = rng.choice(["keyset", "offset"])
        sb.configure(token_style=style)
        log.append(f"token-style {style}")


def _state_sizes(etl, tracked: str) -> tuple[int, int, int]:
    state = local_state(etl)
    whole = (pipeline_dir(etl) / "state.json").stat().st_size
    committed = len(json.dumps(destination_state(etl)))
    one = len(json.dumps(sync_states(state).get(tracked, {})))
    return whole, committed, one


def _soak(make_sandbox, make_etl, runs: int, seed: int) -> dict[str, object]:
    rng = random.Random(seed)
    plans = [SyncPlan(executions=rng.randint(50, 250), inflight=("running",)) for _ in range(4)]
    sb = make_sandbox(seed=seed, plans=plans)
    tracked = sb.sync_ids()[0]
    etl = make_etl(sb, CHECKPOINT_PAGES="2")
    kept: dict[str, set[str]] = {}  # history of deleted syncs, as loaded before deletion
    sizes: list[tuple[int, int, int]] = []
    changes: list[str] = []
    for number in range(1, runs + 1):
        if number > 1:
            before = set(sb.sync_ids(include_deleted=True)) - set(sb.sync_ids())
            _change(sb, rng, changes)
            loaded = etl.executions()
            for sync_id in set(sb.sync_ids(include_deleted=True)) - set(sb.sync_ids()) - before:
                kept[sync_id] = {i for i, r in loaded.items() if r["bulk_sync_id"] == sync_id}
        summary = etl.run()
        assert summary["failed_syncs"] == [], (number, changes[-5:])
        live = set(sb.sync_ids())
        assert_matches_truth(etl, sync_ids=live)
        loaded = etl.executions()
        for sync_id, ids in kept.items():
            assert ids <= set(loaded), f"run {number}: deleted sync {sync_id} lost history"
        sizes.append(_state_sizes(etl, tracked))
        whole, committed, one = sizes[-1]
        assert whole <= STATE_BOUND and committed <= STATE_BOUND, (number, sizes[-1])
        assert one <= PER_SYNC_BOUND, (number, one)
    early = max(s[2] for s in sizes[: max(3, runs // 5)])
    late = max(s[2] for s in sizes[-max(3, runs // 5) :])
    # one long-lived sync's state does not grow with the number of runs
    assert late <= 2 * early + 2_000, (early, late)
    return {
        "runs": runs,
        "syncs_added": sum(c.startswith("add-sync") for c in changes),
        "syncs_deleted": len(kept),
        "tied_batches": sum(c.startswith("tied-batch") for c in changes),
        "token_switches": sum(c.startswith("token-style") for c in changes),
        "max_state_bytes": max(s[0] for s in sizes),
        "tracked_sync_state_bytes": (early, late),
    }


def test_five_incremental_runs_with_random_changes_each_equal_the_truth(make_sandbox, make_etl):
    figures = _soak(make_sandbox, make_etl, runs=5, seed=2026)
    print(f"soak figures: {figures}")


@pytest.mark.soak
def test_fifty_incremental_runs_with_random_changes_each_equal_the_truth(make_sandbox, make_etl):
    figures = _soak(make_sandbox, make_etl, runs=50, seed=5050)
    print(f"soak figures: {figures}")
    assert figures["syncs_added"] and figures["syncs_deleted"] and figures["token_switches"]


def test_state_does_not_grow_with_the_number_of_executions_sharing_one_timestamp(
    make_sandbox, make_etl
):
    sb = make_sandbox(seed=121, syncs=1, executions=30)
    sync_id = sb.sync_ids()[0]
    etl = make_etl(sb)
    etl.run()
    small = len(json.dumps(sync_states(local_state(etl))[sync_id]))
    sb.advance(3600)
    stamp = sb.now() - timedelta(seconds=1)
    sb.add_executions(sync_id, n=1200, updated_at=stamp, completed_at=stamp)
    etl.run()
    assert_matches_truth(etl)
    big = len(json.dumps(sync_states(local_state(etl))[sync_id]))
    print(f"one sync's state: {small} bytes before, {big} bytes after 1200 tied executions")
    assert big <= small + 20_000
