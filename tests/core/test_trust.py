"""The seven silent losses of trust part 1, one named test each, plus the verification.

Each test states the loss it guards against; each failed on the main of 2026-11-29.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from pipelines.sandbox import Fault, Sandbox, SyncPlan
from tests.conftest import Etl, assert_matches_truth, ts

VERIFY_ON = {"VERIFY_PAGES_PER_RUN": "20"}


def _ids_by_sync(etl: Etl) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for row in etl.executions().values():
        out.setdefault(row["bulk_sync_id"], set()).add(row["id"])
    return out


def _on_nth_walk_request(sync_id: str, n: int, action: Any) -> Any:
    """A hook that runs `action(sb)` once, just before the n-th terminal-walk request."""
    seen: list[int] = []

    def hook(sb: Sandbox, record: Any) -> None:
        if record.kind != "list_executions" or record.sync_id != sync_id:
            return
        if record.params.get("only_terminal") != "true":
            return
        seen.append(record.n)
        if len(seen) == n:
            action(sb)

    return hook


# 1 ------------------------------------------------------------------------------------


def test_full_reload_of_one_shard_keeps_every_other_shards_rows(make_sandbox, make_etl):
    sb = make_sandbox(seed=101, syncs=6, executions=40)
    etl = make_etl(sb)
    for shard in ("0/2", "1/2"):
        etl.run("--shard", shard)
    before = _ids_by_sync(etl)
    code, _, err = etl.cli("backfill", "--full", "--shard", "0/2", "--yes")
    assert code == 0, err
    assert _ids_by_sync(etl) == before  # the other shard's rows were never touched
    assert_matches_truth(etl)


def test_full_reload_by_id_reloads_only_that_sync(make_sandbox, make_etl):
    sb = make_sandbox(seed=102, syncs=4, executions=30)
    etl = make_etl(sb)
    etl.run()
    target = sb.sync_ids()[0]
    before = _load_ids(etl)
    code, _, err = etl.cli("backfill", "--full", "--bulk-sync-id", target, "--yes")
    assert code == 0, err
    after = _load_ids(etl)
    assert {sync for sync in before if before[sync] != after[sync]} == {target}
    assert_matches_truth(etl)


def _load_ids(etl: Etl) -> dict[str, set[str]]:
    rows = etl.query("SELECT bulk_sync_id, _dlt_load_id FROM polytomic.bulk_sync_executions")
    out: dict[str, set[str]] = {}
    for sync_id, load_id in rows:
        out.setdefault(sync_id, set()).add(load_id)
    return out


# 2 ------------------------------------------------------------------------------------


def test_a_row_stamped_by_a_fast_clock_does_not_hide_rows_committed_after_it(
    make_sandbox, make_etl
):
    sb = make_sandbox(seed=103, syncs=1, executions=60)
    etl = make_etl(sb)
    sync_id = sb.sync_ids()[0]
    etl.run()
    skewed = sb.add_skewed(sync_id, ahead_seconds=3600)
    etl.run()
    assert skewed in etl.executions()  # the skewed row itself is loaded
    sb.advance(300)
    later = sb.add_executions(sync_id, n=3)
    etl.run()
    assert set(later) <= set(etl.executions())
    assert_matches_truth(etl)
    cursor = _sync_state(etl, sync_id)["cursor"]
    assert ts(cursor) <= sb.now() + timedelta(seconds=60)  # never ahead of the present


def _sync_state(etl: Etl, sync_id: str) -> dict[str, Any]:
    from tests.reliability.helpers import local_state, sync_states

    return sync_states(local_state(etl))[sync_id]


# 3 ------------------------------------------------------------------------------------


def _offset_sandbox(make_sandbox: Any, seed: int) -> tuple[Sandbox, str]:
    sb = make_sandbox(seed=seed, plans=[SyncPlan(executions=300, inflight=())])
    sb.configure(token_style="offset")
    return sb, sb.sync_ids()[0]


def test_offset_tokens_an_old_row_reupdated_mid_walk_is_healed_by_verification(
    make_sandbox, make_etl
):
    sb, sync_id = _offset_sandbox(make_sandbox, 104)
    etl = make_etl(sb, **VERIFY_ON)
    etl.run()
    oldest = sb.execution_ids(sync_id)[3]
    sb.advance(3600)
    sb.add_executions(sync_id, n=250)
    sb.add_hook(_on_nth_walk_request(sync_id, 2, lambda s: s.reupdate(sync_id, oldest)))
    etl.run()
    sb.clear_hooks()
    assert_matches_truth(etl)


def test_offset_tokens_a_row_deleted_mid_walk_is_healed_and_marked_deleted(make_sandbox, make_etl):
    sb, sync_id = _offset_sandbox(make_sandbox, 105)
    etl = make_etl(sb, **VERIFY_ON)
    etl.run()
    victim = sb.execution_ids(sync_id)[3]
    sb.advance(3600)
    sb.add_executions(sync_id, n=250)
    sb.add_hook(_on_nth_walk_request(sync_id, 2, lambda s: s.delete_execution(sync_id, victim)))
    etl.run()
    sb.clear_hooks()
    assert_matches_truth_live(etl)
    etl.run()  # the second 404, on another run, confirms the deletion
    assert etl.query(
        f"SELECT deleted_at IS NOT NULL FROM polytomic.bulk_sync_executions WHERE id = '{victim}'"
    ) == [(True,)]
    assert_matches_truth_live(etl)


def assert_matches_truth_live(etl: Etl) -> None:
    """Truth equals the rows not marked deleted; deleted ones stay as history."""
    deleted = etl.sandbox.deleted_execution_ids()
    live = {i for i, row in etl.executions().items() if row.get("deleted_at") is None}
    truth = {e["id"] for e in etl.sandbox.truth_executions()}
    assert truth <= set(etl.executions())
    assert live - truth <= deleted
    assert_matches_truth(etl, exclude=deleted)


def test_offset_tokens_a_row_that_moves_into_a_later_checkpoint_loses_nothing(
    make_sandbox, make_etl
):
    sb, sync_id = _offset_sandbox(make_sandbox, 106)
    etl = make_etl(sb, CHECKPOINT_PAGES="2")
    ids = sb.execution_ids(sync_id)

    def move_a_walked_row(s: Sandbox) -> None:
        s.advance(1)
        s.reupdate(sync_id, ids[5])  # read on page 1; it reappears in the next checkpoint

    # Page 2 of the first checkpoint is served after the shift: its boundary row is skipped.
    sb.add_hook(_on_nth_walk_request(sync_id, 2, move_a_walked_row))
    etl.run()
    sb.clear_hooks()
    assert_matches_truth(etl)


# 4 ------------------------------------------------------------------------------------


def test_errors_and_interrupted_load_when_only_terminal_returns_the_documented_set(
    make_sandbox, make_etl
):
    def odd_statuses(index: int) -> dict[str, Any] | None:
        return {"status": ("errors", "interrupted")[index % 2]} if index % 37 == 5 else None

    sb = make_sandbox(
        seed=107, plans=[SyncPlan(executions=400, inflight=(), overrides=odd_statuses)]
    )
    sb.configure(terminal_statuses="documented")
    sync_id = sb.sync_ids()[0]
    odd = [e for e in sb.truth_executions() if e["status"] in ("errors", "interrupted")]
    assert len(odd) >= 8
    etl = make_etl(sb)
    etl.run()
    assert_matches_truth(etl)  # all history, not only the newest 100
    sb.advance(3600)
    first = sb.add_executions(sync_id, n=1, status="errors")
    sb.add_executions(sync_id, n=150)  # more than a page of newer runs above it
    etl.run()
    assert set(first) <= set(etl.executions())
    assert_matches_truth(etl)


# 5 ------------------------------------------------------------------------------------


def test_a_backfill_window_before_initial_since_is_loaded(make_sandbox, make_etl):
    sb = make_sandbox(seed=108, syncs=1, executions=200)
    times = sorted(ts(e["updated_at"]) for e in sb.truth_executions())
    cut = times[150]
    etl = make_etl(sb, INITIAL_SINCE=cut.isoformat())
    etl.run()
    assert len(etl.executions()) < 100
    code, _, err = etl.cli("backfill", "--since", times[0].date().isoformat())
    assert code == 0, err
    assert_matches_truth(etl)


# 6 ------------------------------------------------------------------------------------


@pytest.mark.parametrize("status", [404, 500])
def test_a_failed_detail_request_keeps_schema_rows_and_is_retried(make_sandbox, make_etl, status):
    sb = make_sandbox(seed=109, plans=[SyncPlan(executions=80, inflight=())])
    sb.configure(list_includes_schemas=False)
    sync_id = sb.sync_ids()[0]
    etl = make_etl(sb, MAX_ATTEMPTS="1")
    etl.run()
    changed = sb.reupdate(sync_id, keep_schemas=1)
    old_rows = sorted(r for r in etl.schema_rows() if r[0] == changed)
    assert old_rows
    sb.inject(
        Fault(
            "body",
            status=status,
            body={"status": status, "message": "try later"},
            kind_filter="get_execution",
            times=10,
        )
    )
    etl.run()
    assert sorted(r for r in etl.schema_rows() if r[0] == changed) == old_rows  # untouched
    sb.clear_faults()
    etl.run()
    assert_matches_truth(etl)


def test_an_empty_schemas_list_from_a_successful_detail_is_an_answer(make_sandbox, make_etl):
    sb = make_sandbox(seed=110, plans=[SyncPlan(executions=30, inflight=())])
    sb.configure(list_includes_schemas=False)
    etl = make_etl(sb)
    etl.run()
    sync_id = sb.sync_ids()[0]
    changed = sb.reupdate(sync_id, keep_schemas=1)
    sb.inject(
        Fault(
            "body",
            status=200,
            body={"data": {**sb.truth_execution(sync_id, changed), "schemas": []}},
            kind_filter="get_execution",
            times=1,
        )
    )
    etl.run()
    assert [r for r in etl.schema_rows() if r[0] == changed] == []


# 7 ------------------------------------------------------------------------------------


@pytest.mark.parametrize("status", [400, 404, 410])
def test_a_failing_stored_token_walks_afresh_and_keeps_the_sync(make_sandbox, make_etl, status):
    sb = make_sandbox(seed=111, syncs=2, executions=250)
    etl = make_etl(sb)
    etl.run()
    sync_id = sb.sync_ids()[0]
    sb.advance(3600)
    new = sb.add_executions(sync_id, n=5)
    body = {"status": status, "message": "page token expired", "key": "bad_token", "metadata": {}}
    sb.inject(
        Fault(
            "body",
            status=status,
            body=body,
            kind_filter="list_executions",
            sync_id=sync_id,
            with_token=True,
            times=1,
        )
    )
    summary = etl.run()
    assert summary["failed_syncs"] == []
    assert set(new) <= set(etl.executions())
    sb.add_executions(sync_id, n=2)
    etl.run()  # the sync is still walked on later runs
    assert_matches_truth(etl)


# The verification ------------------------------------------------------------------------


def test_idle_run_with_verification_costs_two_requests_per_sync_plus_the_budget(
    make_sandbox, make_etl
):
    sb = make_sandbox(seed=112, syncs=3, executions=900)
    etl = make_etl(sb, **VERIFY_ON)
    etl.run()
    sb.reset_log()
    summary = etl.run()
    assert summary["executions"] == 0
    lists = sb.count(kind="list_executions")
    assert lists <= 2 * 3 + 20
    assert lists > 2 * 3  # the budget is spent
    assert sb.count(kind="get_execution") == 0


def test_verification_covers_every_sync_over_successive_runs(make_sandbox, make_etl):
    sb = make_sandbox(seed=113, syncs=3, executions=400, token_style="offset")
    etl = make_etl(sb, VERIFY_PAGES_PER_RUN="3")
    etl.run()
    # Lose rows behind the tool's back: delete them from the warehouse directly.
    import duckdb

    # An old row, and the newest: the next walk re-reads the newest page and only *sees*
    # it, so the verification must still compare it with the warehouse.
    victims = [sb.execution_ids(s)[i] for s in sb.sync_ids() for i in (7, -1)]
    with duckdb.connect(str(etl.db_path)) as con:
        for victim in victims:
            con.execute("DELETE FROM polytomic.bulk_sync_executions WHERE id = ?", [victim])
    for _ in range(6):  # 3 syncs x 4 pages, 3 pages a run
        etl.run()
    assert_matches_truth(etl)
