"""Warehouse faults: a DuckDB file held by another process, a Postgres that is down."""

from __future__ import annotations

import pytest

from tests.conftest import assert_matches_truth
from tests.reliability.conftest import PgEtl
from tests.reliability.helpers import (
    TcpForwarder,
    assert_state_not_ahead_of_data,
    duckdb_held,
    local_state,
    pending_packages,
    sync_states,
)


def test_a_warehouse_locked_mid_run_fails_the_load_loses_nothing_and_the_next_run_loads_it_first(
    make_sandbox, make_etl
):
    sb = make_sandbox(seed=81, syncs=2, executions=60)
    etl = make_etl(sb, CHECKPOINT_PAGES="1", POLYTOMIC_ETL__LOCK_WAIT_SECONDS="0")
    etl.run()
    loads_before = {r[0] for r in etl.query("SELECT load_id FROM polytomic._dlt_loads")}
    sync_a, sync_b = sb.sync_ids()
    sb.advance(3600)
    sb.add_executions(sync_a, n=70)
    sb.add_executions(sync_b, n=20)
    holders = []

    def grab_the_file_during_extract(sandbox, record):
        # The run checked the warehouse before extracting; a user's SQL client opens the
        # file read-write while the API is being walked, so the load step meets the lock.
        if record.kind == "list_executions" and not holders:
            context = duckdb_held(etl.db_path)
            holders.append((context, context.__enter__()))

    sb.add_hook(grab_the_file_during_extract)
    code, out, err = etl.cli("run", "--json")
    sb.clear_hooks()
    context, holder = holders[0]
    lines = err.strip().splitlines()
    assert code == 1, err
    assert '"ok": false' in out
    assert len(lines) == 1 and "Traceback" not in err, err
    assert (
        f"warehouse file {etl.db_path} is locked by another process (pid {holder.pid})"
        in (lines[0])
    )
    print(f"locked mid-run: {lines[0]}")
    pending = pending_packages(etl)
    assert len(pending) == 1, pending
    local_cursors = {k: v["cursor"] for k, v in sync_states(local_state(etl)).items()}
    context.__exit__(None, None, None)

    # The warehouse's own state matches its rows: nothing committed past the failed load.
    assert assert_state_not_ahead_of_data(etl) == 2
    assert etl.query(
        f"SELECT count(*) FROM polytomic._dlt_loads WHERE load_id = '{pending[0]}'"
    ) == [(0,)]

    code, _, err = etl.cli("run", "--verbose")
    assert code == 0, err
    assert "loading 1 pending package(s) first" in err
    loads = etl.query("SELECT load_id FROM polytomic._dlt_loads ORDER BY inserted_at")
    new_loads = [r[0] for r in loads if r[0] not in loads_before]
    assert new_loads[0] == pending[0]  # the failed package went in before any new extract
    assert pending_packages(etl) == []
    assert_matches_truth(etl)
    assert all(local_cursors.values())


def test_a_locked_warehouse_is_named_with_the_holder_pid_in_one_line(make_sandbox, make_etl):
    sb = make_sandbox(seed=82, syncs=1, executions=10)
    etl = make_etl(sb, POLYTOMIC_ETL__LOCK_WAIT_SECONDS="0")
    with duckdb_held(etl.db_path) as holder:  # a user's SQL client has it open before cron
        code, _, err = etl.cli("run")
    assert code == 1
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("polytomic-etl: ")
    assert (
        f"warehouse file {etl.db_path} is locked by another process (pid {holder.pid})"
        in (lines[0])
    )


@pytest.mark.postgres
def test_postgres_down_fails_cleanly_and_the_next_run_after_it_is_back_loads_everything(
    make_sandbox, tmp_path, postgres_dataset
):
    sb = make_sandbox(seed=83, syncs=2, executions=60)
    forwarder = TcpForwarder(("127.0.0.1", 5432))
    password = "pw-d0wn-s3cret"
    etl = PgEtl(
        sandbox=sb,
        tmp=tmp_path,
        db_path=tmp_path / "unused.duckdb",
        dataset=postgres_dataset,
        credentials=f"postgresql://postgres:{password}@127.0.0.1:{forwarder.port}/test",
    )
    code, out, err = etl.cli("run")
    assert code == 1, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    assert "127.0.0.1" in lines[0] and str(forwarder.port) in lines[0]
    assert password not in err + out
    print(f"postgres down: {lines[0]}")
    assert sb.count(kind="list_executions") == 0  # nothing extracted into a dead warehouse

    forwarder.start()  # the database is back, same credentials
    try:
        summary = etl.run()
    finally:
        forwarder.stop()
    assert summary["failed_syncs"] == []
    assert_matches_truth(etl)
