"""Each API quirk the sandbox can switch on is survived with nothing lost."""

from __future__ import annotations

import pytest

from tests.conftest import assert_matches_truth


@pytest.mark.parametrize("schemas", [False, "null"])
def test_list_items_without_schemas_are_hydrated_from_the_detail_endpoint(
    make_sandbox, make_etl, schemas
):
    sb = make_sandbox(seed=11, syncs=2, executions=60, list_includes_schemas=schemas)
    etl = make_etl(sb)
    etl.run()
    assert_matches_truth(etl)
    hydrated = sb.count(kind="get_execution")
    assert hydrated == len(sb.truth_executions())
    sb.reset_log()
    etl.run()  # nothing new: no execution is fetched twice at the same updated_at
    assert sb.count(kind="get_execution") == 0


def test_a_paginated_bulk_sync_list_is_followed_to_the_end(make_sandbox, make_etl):
    sb = make_sandbox(seed=12, syncs=55, executions=3, paginate_syncs=True)
    etl = make_etl(sb)
    summary = etl.run()
    assert summary["syncs"] == 55
    assert etl.query("SELECT count(*) FROM polytomic.bulk_syncs") == [(55,)]
    assert sb.count(kind="list_syncs") >= 2
    assert_matches_truth(etl)


@pytest.mark.parametrize(
    "last_page", ["no_pagination_key", "null_token", "empty_string", "extra_empty_page"]
)
@pytest.mark.parametrize("empty_data", ["list", "null"])
def test_every_last_page_shape_ends_the_walk_without_loss(
    make_sandbox, make_etl, last_page, empty_data
):
    sb = make_sandbox(seed=13, syncs=2, executions=230, last_page=last_page, empty_data=empty_data)
    etl = make_etl(sb)
    etl.run()
    assert_matches_truth(etl)
    sb.reset_log()
    etl.run()
    assert all(sb.count(kind="list_executions", sync_id=s) <= 3 for s in sb.sync_ids())


def test_a_sync_with_no_executions_loads_its_row_and_no_history(make_sandbox, make_etl):
    sb = make_sandbox(seed=14, syncs=1, executions=20)
    empty = sb.add_sync(name="empty", executions=0)
    etl = make_etl(sb)
    etl.run()
    assert etl.query(f"SELECT count(*) FROM polytomic.bulk_syncs WHERE id = '{empty}'") == [(1,)]
    assert_matches_truth(etl)


def test_tie_order_among_equal_timestamps_does_not_matter(make_sandbox, make_etl):
    sb = make_sandbox(seed=15, syncs=1, executions=150, tie_order="id_desc")
    etl = make_etl(sb)
    etl.run()
    sync_id = sb.sync_ids()[0]
    sb.advance(30)
    sb.add_executions(sync_id, n=3)
    etl.run()
    assert_matches_truth(etl)


def test_documented_only_terminal_set_still_loads_errors_and_interrupted(make_sandbox, make_etl):
    sb = make_sandbox(seed=16, syncs=1, executions=60, terminal_statuses="documented")
    sync_id = sb.sync_ids()[0]
    sb.advance(60)
    odd = sb.add_executions(sync_id, n=1, status="errors")
    odd += sb.add_executions(sync_id, n=1, status="interrupted")
    etl = make_etl(sb)
    etl.run()
    loaded = etl.executions()
    assert {loaded[i]["status"] for i in odd} == {"errors", "interrupted"}


def test_a_bad_stored_page_token_falls_back_without_skipping(make_sandbox, make_etl):
    sb = make_sandbox(seed=17, syncs=1, executions=400)
    etl = make_etl(sb)
    etl.run()
    sync_id = sb.sync_ids()[0]
    sb.advance(60)
    sb.add_executions(sync_id, n=2)
    sb.inject(
        _fault(
            "body",
            kind_filter="list_executions",
            status=400,
            body={"status": 400, "message": "invalid page token"},
        )
    )
    summary = etl.run()
    assert summary["failed_syncs"] == []
    assert_matches_truth(etl)


def test_a_resumed_page_that_skips_ahead_falls_back_to_a_full_walk(make_sandbox, make_etl):
    sb = make_sandbox(seed=18, syncs=1, executions=400, token_style="offset")
    etl = make_etl(sb)
    etl.run()
    sync_id = sb.sync_ids()[0]
    # Many old rows re-updated between runs shift every offset by far more than a page.
    for _ in range(150):
        sb.advance(1)
        sb.reupdate(sync_id, keep_schemas=1)
    etl.run()
    assert_matches_truth(etl)


def _fault(kind, **kw):
    from pipelines.sandbox import Fault

    return Fault(kind, **kw)
