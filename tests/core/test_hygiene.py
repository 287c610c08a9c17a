"""Trust part 2: runs that stop for good or never stop, and hygiene. One named test each."""

from __future__ import annotations

import json
from typing import Any

import pytest

from pipelines.sandbox import Fault, SyncPlan
from tests.conftest import Etl, assert_matches_truth


def _columns(etl: Etl, table: str) -> dict[str, str]:
    rows = etl.query(
        "SELECT column_name, data_type FROM information_schema.columns "
        f"WHERE table_schema = 'polytomic' AND table_name = '{table}'"
    )
    return dict(rows)


def _state(etl: Etl) -> dict[str, Any]:
    from tests.reliability.helpers import local_state

    resources = local_state(etl)["sources"]["polytomic"]["resources"]
    return resources["bulk_sync_executions"]


# 1 ------------------------------------------------------------------------------------


def test_a_field_whose_json_type_varies_between_pages_and_runs_never_stops_a_load(
    make_sandbox, make_etl
):
    values = (3, "high", {"level": 2}, [1, 2], True, 2.5)

    def priority(index: int) -> dict[str, Any]:
        return {"extra_fields": {"priority": values[(index // 60) % len(values)]}}

    sb = make_sandbox(seed=201, plans=[SyncPlan(executions=400, overrides=priority)])
    etl = make_etl(sb)
    etl.run()
    assert_matches_truth(etl)
    sync_id = sb.sync_ids()[0]
    sb.advance(3600)
    sb.add_executions(sync_id, n=3, extra_fields={"priority": {"nested": ["x"]}})
    etl.run()
    assert_matches_truth(etl)
    assert _columns(etl, "bulk_sync_executions")["priority"] == "VARCHAR"
    stored = {r[0] for r in etl.query("SELECT priority FROM polytomic.bulk_sync_executions")}
    assert {"3", "high", '{"level": 2}', '{"nested": ["x"]}'} <= stored


def test_new_fields_whose_normalised_names_collide_never_stop_a_load(make_sandbox, make_etl):
    def colliding(index: int) -> dict[str, Any]:
        return {"extra_fields": {"recordCount": "many", "Status": index, "fooBar": 1}}

    sb = make_sandbox(seed=202, plans=[SyncPlan(executions=150, overrides=colliding)])
    sb.add_executions(sb.sync_ids()[0], n=2, extra_fields={"foo_bar": "x"})
    etl = make_etl(sb)
    etl.run()
    assert_matches_truth(etl)  # record_count and status keep the API's real values
    columns = _columns(etl, "bulk_sync_executions")
    assert columns["record_count"] == "BIGINT" and columns["status"] == "VARCHAR"
    assert {"record_count_2", "status_2", "foo_bar"} <= set(columns)


# 2 ------------------------------------------------------------------------------------


def test_an_empty_page_mid_list_with_rows_after_it_loses_nothing(make_sandbox, make_etl):
    sb = make_sandbox(seed=203, syncs=2, executions=350, mid_empty_pages=2)
    etl = make_etl(sb)
    summary = etl.run()
    assert summary["failed_syncs"] == []
    assert_matches_truth(etl)


@pytest.mark.parametrize("style", ["fresh", "same"])
def test_endless_empty_pages_end_the_walk_with_a_warning_and_do_not_rewalk(
    make_sandbox, make_etl, style
):
    sb = make_sandbox(seed=204, syncs=2, executions=250, endless_empty=style)
    etl = make_etl(sb)
    code, _, err = etl.cli("run", "--json")
    assert code == 0, err
    assert "empty page" in err
    assert_matches_truth(etl)
    first = sb.count(kind="list_executions")
    assert first <= 2 * (3 + 4) + 2 * (3 + 4)  # both walks: 3 pages each, then 4 empty ones
    sb.reset_log()
    etl.run()
    for sync_id in sb.sync_ids():  # the next run resumes; it does not walk history again
        assert sb.count(kind="list_executions", sync_id=sync_id, page_token=None) <= 1
        assert sb.count(kind="list_executions", sync_id=sync_id) <= 2 + 2 * 4


# 3 ------------------------------------------------------------------------------------


def test_an_unfinished_full_reload_continues_on_rerun_and_starts_over_after_a_run(
    make_sandbox, make_etl
):
    sb = make_sandbox(seed=205, syncs=2, executions=60)
    good, bad = sb.sync_ids()
    etl = make_etl(sb, MAX_ATTEMPTS="1")
    etl.run()

    def full_that_fails() -> set[str]:
        before = _load_ids(etl, good)
        sb.inject(Fault("500", times=None, kind_filter="list_executions", sync_id=bad))
        code, _, _ = etl.cli("backfill", "--full", "--yes")
        sb.clear_faults()
        assert code == 1
        reloaded = _load_ids(etl, good)
        assert reloaded != before  # it dropped and reloaded the good sync
        return reloaded

    reloaded = full_that_fails()
    code, _, err = etl.cli("backfill", "--full", "--yes")
    assert code == 0, err
    assert _load_ids(etl, good) == reloaded  # re-running it continued; it did not drop again
    assert_matches_truth(etl)

    reloaded = full_that_fails()
    etl.run()  # a finished run: the unfinished --full is over
    code, _, err = etl.cli("backfill", "--full", "--yes")
    assert code == 0, err
    assert _load_ids(etl, good) != reloaded  # a new --full starts over; it is never skipped
    assert_matches_truth(etl)


def _load_ids(etl: Etl, sync_id: str) -> set[str]:
    rows = etl.query(
        f"SELECT _dlt_load_id FROM polytomic.bulk_sync_executions WHERE bulk_sync_id = '{sync_id}'"
    )
    return {r[0] for r in rows}


# 4 ------------------------------------------------------------------------------------


def test_an_inflight_execution_deleted_upstream_gets_deleted_at_and_stays(make_sandbox, make_etl):
    sb = make_sandbox(seed=206, plans=[SyncPlan(executions=40, inflight=())])
    sync_id = sb.sync_ids()[0]
    queued = sb.start_execution(sync_id, "scheduled")
    etl = make_etl(sb)
    etl.run()
    assert etl.executions()[queued]["status"] == "scheduled"
    sb.delete_execution(sync_id, queued)
    etl.run()
    assert etl.executions()[queued]["deleted_at"] is None  # one 404 is not proof
    etl.run()
    row = etl.executions()[queued]
    assert row["deleted_at"] is not None and row["status"] == "scheduled"  # kept as history
    assert_matches_truth(etl, exclude={queued})


# 5 ------------------------------------------------------------------------------------


def test_the_same_rejected_record_is_one_row_however_often_it_is_seen(make_sandbox, make_etl):
    from tests.conftest import first_walk_page

    sb = make_sandbox(seed=207, syncs=1, executions=30)
    sync_id = sb.sync_ids()[0]
    page = first_walk_page(sb, sync_id)
    page["data"].append({"id": None, "status": "completed", "note": "no id"})
    sb.inject(
        Fault(
            "body",
            body=page,
            kind_filter="list_executions",
            sync_id=sync_id,
            times=None,
            with_token=False,
        )
    )
    etl = make_etl(sb)
    seen = []
    for _ in range(3):  # a backfill walks from the first page every time
        code, _, err = etl.cli("backfill", "--since", "2000-01-01")
        assert code == 0, err
        seen.append(etl.query("SELECT last_seen_at FROM polytomic.rejected_records"))
    assert [len(s) for s in seen] == [1, 1, 1]
    assert seen[0][0][0] < seen[2][0][0]  # last_seen_at moves


# 6 ------------------------------------------------------------------------------------


def test_checkpoints_of_backfill_windows_that_never_finish_are_capped(make_sandbox, make_etl):
    sb = make_sandbox(seed=208, syncs=2, executions=50)
    _, bad = sb.sync_ids()
    sb.inject(Fault("500", times=None, kind_filter="list_executions", sync_id=bad))
    etl = make_etl(sb, MAX_ATTEMPTS="1")
    errors = ""
    for day in range(1, 9):
        code, _, err = etl.cli("backfill", "--since", f"2026-10-0{day}")
        assert code == 1
        errors += err
    windows = list(_state(etl)["backfills"])
    assert len(windows) == 5
    assert all("2026-10-0" in w for w in windows)
    assert "2026-10-01" in errors and "re-run that window" in errors


# 7 ------------------------------------------------------------------------------------


def test_a_sync_id_that_changes_case_is_one_row_and_is_not_walked_again(make_sandbox, make_etl):
    sb = make_sandbox(seed=209, syncs=2, executions=300, sync_id_case="upper")
    etl = make_etl(sb)
    etl.run()
    sb.configure(sync_id_case="lower")
    sb.reset_log()
    etl.run()
    sb.configure(sync_id_case="upper")
    etl.run("--bulk-sync-id", sb.sync_ids()[0].upper())
    for sync_id in sb.sync_ids():
        assert sb.count(kind="list_executions", sync_id=sync_id, page_token=None) <= 2
    ids = etl.query("SELECT id FROM polytomic.bulk_syncs")
    assert sorted(i for (i,) in ids) == sorted(sb.sync_ids())
    for table in ("bulk_sync_executions", "bulk_sync_executions__schemas"):
        stored = {i for (i,) in etl.query(f"SELECT DISTINCT bulk_sync_id FROM polytomic.{table}")}
        assert stored == set(sb.sync_ids())
    assert set(_state(etl)["syncs"]) == set(sb.sync_ids())
    assert_matches_truth(etl)
    assert json.dumps(_state(etl)).upper() != json.dumps(_state(etl))  # ids stayed lowercase
