"""Scenario mutations, hooks and per-execution plan overrides."""

from __future__ import annotations

import threading

import pytest

from pipelines.sandbox import Sandbox, SandboxConflict, SyncPlan

from .conftest import PINNED_NOW, Client, us

RUNNING = {"running", "exporting", "processing", "canceling"}


def _rows(sb: Sandbox, sync_id: str) -> list[dict]:
    return [e for e in sb.truth_executions() if e["bulk_sync_id"] == sync_id]


def test_the_clock_is_pinned_and_only_moves_when_advanced(sb: Sandbox) -> None:
    assert sb.now() == PINNED_NOW
    assert (sb.advance(90) - PINNED_NOW).total_seconds() == 90
    assert sb.now() == sb.now()
    with pytest.raises(ValueError):
        sb.advance(-1)


def test_add_executions_appends_terminal_rows_with_increasing_updated_at(
    sb: Sandbox, client: Client
) -> None:
    sync_id = sb.sync_ids()[1]
    before = {e["id"] for e in _rows(sb, sync_id)}
    ids = sb.add_executions(sync_id, n=3, status="failed")
    rows = {e["id"]: e for e in _rows(sb, sync_id)}
    assert set(rows) == before | set(ids)
    stamps = [us(rows[i]["updated_at"]) for i in ids]
    assert stamps == sorted(stamps) and len(set(stamps)) == 3
    assert stamps[0] >= us(PINNED_NOW.isoformat())
    assert all(rows[i]["status"] == "failed" and rows[i]["error_count"] > 0 for i in ids)
    top = client.executions_page(sync_id, only_terminal=True, limit=3)["data"]
    assert [e["id"] for e in top] == ids[::-1]


def test_add_executions_accepts_field_overrides(sb: Sandbox) -> None:
    sync_id = sb.sync_ids()[1]
    [exec_id] = sb.add_executions(
        sync_id, record_count=1234, type="api", is_test=True, status_message="hello"
    )
    row = sb.truth_execution(sync_id, exec_id)
    assert row["record_count"] == 1234 == sum(s["record_count"] for s in row["schemas"])
    assert (row["type"], row["is_test"], row["status_message"]) == ("api", True, "hello")
    with pytest.raises(ValueError):
        sb.add_executions(sync_id, status="running")
    with pytest.raises(ValueError):
        sb.add_executions(sync_id, no_such_field=1)


def test_start_execution_refuses_a_second_running_one_like_the_api_409(sb: Sandbox) -> None:
    busy, idle = sb.sync_ids()[0], sb.add_sync(executions=5)
    with pytest.raises(SandboxConflict):
        sb.start_execution(busy)
    queued = sb.start_execution(busy, status="scheduled")
    row = sb.truth_execution(busy, queued)
    assert row["started_at"] is None and row["completed_at"] is None
    new = sb.start_execution(idle)
    row = sb.truth_execution(idle, new)
    assert row["status"] == "running" and row["completed_at"] is None and row["started_at"]


def test_finish_inflight_ends_every_open_execution(sb: Sandbox, client: Client) -> None:
    sync_id = sb.sync_ids()[0]
    sb.start_execution(sync_id, status="created")
    open_ids = {e["id"] for e in _rows(sb, sync_id) if e["completed_at"] is None}
    assert len(open_ids) == 2
    sb.advance(600)
    done = sb.finish_inflight(sync_id, status="completed")
    assert set(done) == open_ids
    for exec_id in done:
        row = client.json(f"/api/bulk/syncs/{sync_id}/executions/{exec_id}")["data"]
        assert row["status"] == "completed" and row["completed_at"] == row["updated_at"]
        assert all(s["status"] == "completed" for s in row["schemas"])
        assert row["record_count"] == sum(s["record_count"] for s in row["schemas"])
    assert not any(e["completed_at"] is None for e in _rows(sb, sync_id))
    sb.finish_inflight()  # all syncs
    assert all(e["completed_at"] for e in sb.truth_executions())


def test_reupdate_moves_an_old_execution_to_the_top_of_only_terminal(
    sb: Sandbox, client: Client
) -> None:
    sync_id = sb.sync_ids()[1]
    old = next(e for e in _rows(sb, sync_id) if len(e["schemas"]) > 1)
    sb.advance(5)
    assert sb.reupdate(sync_id, old["id"], keep_schemas=1) == old["id"]
    new = sb.truth_execution(sync_id, old["id"])
    assert us(new["updated_at"]) >= us(sb.now().isoformat())
    assert len(new["schemas"]) == 1 < len(old["schemas"])
    assert new["record_count"] != old["record_count"]
    assert new["record_count"] == new["schemas"][0]["record_count"]
    assert new["started_at"] == old["started_at"]  # default ordering unaffected
    top = client.executions_page(sync_id, only_terminal=True, limit=1)["data"][0]
    assert top["id"] == old["id"]
    picked = sb.reupdate(sync_id)  # the sandbox picks an old terminal execution itself
    assert picked in {e["id"] for e in _rows(sb, sync_id)}


def test_add_late_commit_lands_behind_rows_already_served(sb: Sandbox, client: Client) -> None:
    sync_id = sb.sync_ids()[1]
    sb.add_executions(sync_id, n=2)
    served = client.executions_page(sync_id, only_terminal=True, limit=2)["data"]
    late = sb.add_late_commit(sync_id, behind_seconds=60)
    row = sb.truth_execution(sync_id, late)
    assert row["status"] == "completed"
    assert us(row["updated_at"]) < min(us(e["updated_at"]) for e in served)
    ordered = [e["id"] for e in client.walk(sync_id, only_terminal=True, limit=100)]
    assert ordered.index(late) >= 2


def test_add_sync_and_delete_sync(sb: Sandbox, client: Client) -> None:
    new = sb.add_sync(name="Fresh", executions=12, frequency="daily")
    listed = {s["id"]: s for s in client.json("/api/bulk/syncs")["data"]}
    assert listed[new]["name"] == "Fresh"
    assert listed[new]["default_schedule"]["frequency"] == "daily"
    assert len(client.walk(new, limit=5)) == 12
    sb.delete_sync(new)
    assert new not in sb.sync_ids() and new in sb.sync_ids(include_deleted=True)
    assert new not in {e["bulk_sync_id"] for e in sb.truth_executions()}
    assert new in {e["bulk_sync_id"] for e in sb.truth_executions(include_deleted_syncs=True)}
    assert new not in {s["id"] for s in sb.truth_syncs()}


def test_a_hook_can_mutate_data_in_the_middle_of_a_walk(sb: Sandbox, client: Client) -> None:
    sync_id = sb.sync_ids()[1]
    added: list[str] = []
    seen_status: list[object] = []

    def on_second_page(sandbox: Sandbox, record: object) -> None:
        seen_status.append(record.status)  # type: ignore[attr-defined]
        if record.kind == "list_executions" and "page_token" in record.params:  # type: ignore[attr-defined]
            if not added:
                added.extend(sandbox.add_executions(sync_id, n=1))

    sb.add_hook(on_second_page)
    rows = client.walk(sync_id, only_terminal=True, ascending=True, limit=40)
    assert added and rows[-1]["id"] == added[0]  # keyset walk picks the new row up at the end
    assert set(seen_status) == {None}  # hooks run before the response exists
    sb.clear_hooks()
    client.walk(sync_id, limit=100)
    assert len(added) == 1


def test_a_failing_hook_turns_into_a_500_and_is_kept(sb: Sandbox, client: Client) -> None:
    def boom(sandbox: Sandbox, record: object) -> None:
        raise RuntimeError("hook exploded")

    sb.add_hook(boom)
    response = client.get("/api/bulk/syncs")
    assert response.status_code == 500
    assert isinstance(sb.hook_errors[-1], RuntimeError)


def test_scenario_calls_are_thread_safe(sb: Sandbox, client: Client) -> None:
    sync_id = sb.sync_ids()[1]
    errors: list[BaseException] = []

    def writer() -> None:
        try:
            for _ in range(30):
                sb.add_executions(sync_id)
                sb.reupdate(sync_id)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=writer) for _ in range(3)]
    for thread in threads:
        thread.start()
    for _ in range(10):
        client.walk(sync_id, limit=100)
    for thread in threads:
        thread.join()
    assert not errors
    assert len(client.walk(sync_id, limit=100)) == len(_rows(sb, sync_id))


def test_plan_overrides_shape_individual_executions() -> None:
    plan = SyncPlan(
        name="Demo",
        frequency="hourly",
        executions=20,
        schemas=("Account", "Contact", "Opportunity"),
        failure_rate=0.0,
        overrides={
            3: {"status": "failed", "status_message": "boom"},
            5: {"schema_status": {"Opportunity": "failed"}},
            7: {"skip": True},
            9: {"record_count": 0},
            -1: {"record_scale": 0.01, "start_delay": 1800},
        },
    )
    sb = Sandbox(seed=1, plans=[plan], now=PINNED_NOW)
    rows = sb.truth_executions()
    assert len(rows) == 19  # one slot skipped
    assert rows[3]["status"] == "failed" and rows[3]["status_message"] == "boom"
    errored = {s["schema"]: s for s in rows[5]["schemas"]}
    assert rows[5]["status"] == "errors" and errored["Opportunity"]["status"] == "failed"
    assert errored["Opportunity"]["error_count"] > 0
    assert rows[8]["record_count"] == 0  # index 9 is the 9th row once 7 is skipped
    assert rows[-1]["record_count"] < rows[-2]["record_count"] * 0.2
    gap_s = (us(rows[-1]["started_at"]) - us(rows[-2]["started_at"])) / 1_000_000
    assert 3600 + 1800 - 30 <= gap_s <= 3600 + 1800  # the newest run started 30 min late


def test_plan_overrides_can_be_a_callable() -> None:
    def volume_drop(index: int) -> dict | None:
        return {"record_scale": 0.05} if index >= 15 else None

    plan = SyncPlan(executions=20, failure_rate=0.0, schemas=2, overrides=volume_drop)
    rows = Sandbox(seed=2, plans=[plan], now=PINNED_NOW).truth_executions()
    before = sum(e["record_count"] for e in rows[:15]) / 15
    after = sum(e["record_count"] for e in rows[15:]) / 5
    assert after < before * 0.2


def test_plans_reject_impossible_histories() -> None:
    with pytest.raises(ValueError):
        SyncPlan(inflight=("running", "exporting"))
    with pytest.raises(ValueError):
        SyncPlan(inflight=("completed",))
    with pytest.raises(ValueError):
        SyncPlan(frequency="yearly")
    bad = SyncPlan(executions=5, inflight=("running",), overrides={0: {"status": "running"}})
    with pytest.raises(ValueError):
        Sandbox(plans=[bad], now=PINNED_NOW)
