"""A load gathers at most `max_rows_per_load` rows, shared fairly across the syncs.

The budget counts execution rows plus schema rows of one load, all syncs together. Syncs take
turns a page at a time; a sync left out of one load goes first in the next. Checkpoints keep
their meaning: a kill loses at most the load in flight, and state never runs ahead of data.
"""

from __future__ import annotations

import math
from collections import defaultdict

from tests.conftest import assert_matches_truth
from tests.reliability.helpers import (
    assert_state_not_ahead_of_data,
    crash_env,
    finish,
    pending_packages,
    spawn,
)

BUDGET = 1_000
PAGE = 100  # executions per page of the walk


def _largest_page(sandbox) -> int:
    """The most rows (executions plus schema rows) one page of any sync's walk can hold."""
    schemas: dict[str, int] = defaultdict(int)
    for row in sandbox.truth_schemas():
        schemas[row["execution_id"]] += 1
    largest = 0
    for sync_id in sandbox.sync_ids():
        ordered = sorted(
            (e for e in sandbox.truth_executions() if e["bulk_sync_id"] == sync_id),
            key=lambda e: e["updated_at"],
        )
        for start in range(0, len(ordered), PAGE):
            page = ordered[start : start + PAGE]
            largest = max(largest, len(page) + sum(max(1, schemas[e["id"]]) for e in page))
    return largest


def _rows_per_load(etl) -> dict[str, int]:
    rows: dict[str, int] = defaultdict(int)
    for table in ("bulk_sync_executions", "bulk_sync_executions__schemas"):
        for load_id, count in etl.query(
            f"SELECT _dlt_load_id, count(*) FROM polytomic.{table} GROUP BY 1"
        ):
            rows[load_id] += count
    return dict(rows)


def _loads_of_each_sync(etl) -> dict[str, list[str]]:
    pairs = etl.query(
        "SELECT DISTINCT bulk_sync_id, _dlt_load_id FROM polytomic.bulk_sync_executions"
    )
    loads: dict[str, list[str]] = defaultdict(list)
    for sync_id, load_id in sorted(pairs, key=lambda p: p[1]):
        loads[sync_id].append(load_id)
    return loads


def test_a_first_load_over_many_syncs_takes_several_loads_none_over_budget_by_a_page(
    make_sandbox, make_etl
):
    sb = make_sandbox(seed=11, syncs=6, executions=210, schemas=(1, 3))
    etl = make_etl(sb, MAX_ROWS_PER_LOAD=str(BUDGET))
    summary = etl.run()

    assert_matches_truth(etl)
    per_load, page = _rows_per_load(etl), _largest_page(sb)
    total = sum(per_load.values())
    assert total > 2 * (BUDGET + page)  # so that one or two loads cannot hold it
    assert summary["loads"] >= math.ceil(total / (BUDGET + page)) >= 3
    over = {k: n for k, n in per_load.items() if n > BUDGET + page}
    assert not over, f"loads over the budget by more than one page: {over}"


def test_syncs_take_turns_so_every_sync_starts_before_any_takes_a_second_load(
    make_sandbox, make_etl
):
    sb = make_sandbox(seed=12, syncs=8, executions=210, schemas=(1, 2))
    etl = make_etl(sb, MAX_ROWS_PER_LOAD="900")
    etl.run()

    loads = _loads_of_each_sync(etl)
    assert set(loads) == set(sb.sync_ids())
    last_first_turn = max(ids[0] for ids in loads.values())
    earliest_second_turn = min(ids[1] for ids in loads.values() if len(ids) > 1)
    # Round-robin: no sync is back for more before the last one had its first page.
    assert last_first_turn <= earliest_second_turn
    assert_matches_truth(etl)


def test_checkpoint_pages_still_caps_one_sync_within_the_budget(make_sandbox, make_etl):
    sb = make_sandbox(seed=13, syncs=1, executions=450, schemas=(1, 1))
    etl = make_etl(sb, MAX_ROWS_PER_LOAD="100000", CHECKPOINT_PAGES="2")
    summary = etl.run()
    assert summary["loads"] == 3  # 5 pages, 2 per load
    assert_matches_truth(etl)


def test_a_kill_between_loads_loses_nothing_and_state_never_runs_ahead(make_sandbox, make_etl):
    sb = make_sandbox(seed=14, syncs=6, executions=220, schemas=(1, 3))
    etl = make_etl(sb, MAX_ROWS_PER_LOAD=str(BUDGET))
    killed = finish(spawn(etl, env=crash_env(etl, "after-package-archived", nth=2)))
    assert killed.code == -9, killed.err  # after the second load was archived
    assert_state_not_ahead_of_data(etl)
    loaded_before = sum(_rows_per_load(etl).values())
    assert 0 < loaded_before

    summary = etl.run()
    assert summary["loads"] >= 2 and pending_packages(etl) == []
    assert_matches_truth(etl)
    assert_state_not_ahead_of_data(etl)
