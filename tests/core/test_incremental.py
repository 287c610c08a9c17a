"""The incremental contract, proved against the sandbox's ground truth over real HTTP."""

from __future__ import annotations

import math

from tests.conftest import assert_matches_truth


def test_first_load_equals_the_truth_row_by_row(make_sandbox, make_etl):
    sb = make_sandbox(seed=1, syncs=3, executions=250)
    etl = make_etl(sb)
    summary = etl.run()
    assert_matches_truth(etl)
    assert summary["executions"] == len(sb.truth_executions())
    assert summary["schema_rows"] == len(sb.truth_schemas())
    assert summary["syncs"] == 3 and summary["failed_syncs"] == []


def test_timestamps_are_typed_with_time_zone(make_sandbox, make_etl):
    etl = make_etl(make_sandbox(seed=2, syncs=1, executions=20))
    etl.run()
    types = dict(
        etl.query(
            "SELECT table_name || '.' || column_name, data_type FROM information_schema.columns "
            "WHERE table_schema = 'polytomic' AND column_name LIKE '%_at'"
        )
    )
    for table in ("bulk_sync_executions", "bulk_sync_executions__schemas"):
        for column in ("created_at", "started_at", "completed_at", "updated_at"):
            assert types[f"{table}.{column}"] == "TIMESTAMP WITH TIME ZONE"
    assert types["bulk_syncs.last_seen_at"] == "TIMESTAMP WITH TIME ZONE"


def test_idle_run_adds_nothing_and_makes_at_most_two_list_requests_per_sync(make_sandbox, make_etl):
    sb = make_sandbox(seed=3, syncs=2, executions=1200)
    etl = make_etl(sb)
    etl.run()
    before = etl.executions()
    children = sorted(etl.schema_rows())
    sb.reset_log()
    summary = etl.run()
    assert summary["executions"] == 0 and summary["schema_rows"] == 0
    assert etl.executions() == before  # same rows, same values, same load ids
    assert sorted(etl.schema_rows()) == children
    for sync_id in sb.sync_ids():
        assert sb.count(kind="list_executions", sync_id=sync_id) <= 2


def test_new_executions_cost_ceil_new_over_100_extra_requests(make_sandbox, make_etl):
    sb = make_sandbox(seed=4, syncs=1, executions=500)
    etl = make_etl(sb)
    etl.run()
    sync_id = sb.sync_ids()[0]
    sb.advance(3600)
    sb.add_executions(sync_id, n=230)
    sb.reset_log()
    summary = etl.run()
    assert summary["executions"] >= 230
    assert sb.count(kind="list_executions", sync_id=sync_id) <= 2 + math.ceil(230 / 100)
    assert_matches_truth(etl)


def test_interleaved_syncs_keep_their_own_cursors(make_sandbox, make_etl):
    sb = make_sandbox(seed=5, syncs=2, executions=120)
    etl = make_etl(sb, CHECKPOINT_PAGES="1")
    etl.run()
    sync_a, sync_b = sb.sync_ids()
    added: list[str] = []

    def while_b_is_walked(sandbox, record):
        if record.kind == "list_executions" and record.sync_id == sync_b and not added:
            added.extend(sandbox.add_executions(sync_a, n=1))
            sandbox.advance(120)
            sandbox.add_executions(sync_b, n=1)  # B's newest updated_at is later than A's

    sb.advance(600)
    sb.add_hook(while_b_is_walked)
    etl.run()
    sb.clear_hooks()
    etl.run()
    assert added and added[0] in etl.executions()
    assert_matches_truth(etl)


def test_late_commit_sixty_seconds_behind_the_cursor_is_loaded(make_sandbox, make_etl):
    sb = make_sandbox(seed=6, syncs=1, executions=150)
    etl = make_etl(sb)
    etl.run()
    late = sb.add_late_commit(sb.sync_ids()[0], behind_seconds=60)
    etl.run()
    assert late in etl.executions()
    assert_matches_truth(etl)


def test_execution_updated_after_load_replaces_its_schema_rows(make_sandbox, make_etl):
    sb = make_sandbox(seed=7, syncs=1, executions=80, schemas=(3, 5))
    etl = make_etl(sb)
    etl.run()
    sync_id = sb.sync_ids()[0]
    sb.advance(60)
    exec_id = sb.reupdate(sync_id, keep_schemas=1)
    etl.run()
    rows = [r for r in etl.schema_rows() if r[0] == exec_id]
    assert len(rows) == 1
    assert_matches_truth(etl)


def test_in_flight_execution_appears_then_ends_with_its_final_status(make_sandbox, make_etl):
    sb = make_sandbox(seed=8, syncs=1, executions=40)
    etl = make_etl(sb)
    etl.run()
    sync_id = sb.sync_ids()[0]
    sb.finish_inflight(sync_id)
    sb.advance(60)
    running = sb.start_execution(sync_id, status="running")
    etl.run()
    assert etl.executions()[running]["status"] == "running"
    assert etl.executions()[running]["completed_at"] is None
    sb.advance(300)
    sb.finish_inflight(sync_id, status="failed")
    etl.run()
    assert etl.executions()[running]["status"] == "failed"
    assert_matches_truth(etl)


def test_offset_tokens_with_a_mid_walk_update_lose_nothing(make_sandbox, make_etl):
    sb = make_sandbox(seed=9, syncs=1, executions=450, token_style="offset")
    etl = make_etl(sb)
    sync_id = sb.sync_ids()[0]
    moved: list[str] = []
    first_page_ids: list[str] = []

    def update_a_walked_row(sandbox, record):
        if record.kind != "list_executions" or record.params.get("only_terminal") != "true":
            return
        walked = [r for r in sandbox.requests if r.kind == "list_executions"]
        if len(walked) == 2 and not moved:
            oldest = sorted(sandbox.truth_executions(), key=lambda e: e["updated_at"])
            first_page_ids.extend(e["id"] for e in oldest[:100])
            sandbox.advance(1)
            moved.append(sandbox.reupdate(sync_id, exec_id=first_page_ids[5], keep_schemas=1))

    sb.add_hook(update_a_walked_row)
    etl.run()
    sb.clear_hooks()
    assert moved
    etl.run()
    assert_matches_truth(etl)


def test_go_timestamps_of_every_fraction_width_load_exactly(make_sandbox, make_etl):
    sb = make_sandbox(seed=10, syncs=2, executions=200)
    raw = [e["updated_at"] for e in sb.truth_executions()]
    widths = {len(v.split(".")[1]) - 1 if "." in v else 0 for v in raw}
    assert 0 in widths and len(widths) >= 3
    etl = make_etl(sb)
    etl.run()
    assert_matches_truth(etl)
