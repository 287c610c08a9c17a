"""Deleting executions, restoring syncs, rows stamped by a clock running ahead, and the
``errors``/``interrupted`` statuses the documentation does not call terminal."""

from __future__ import annotations

import pytest

from pipelines.sandbox import Sandbox

from .conftest import PINNED_NOW, Client, expected_order, us


def _listed(client: Client, sync_id: str, **params: object) -> list[str]:
    return [e["id"] for e in client.walk(sync_id, limit=100, **params)]


def test_delete_execution_removes_it_from_listings_detail_and_truth(
    sb: Sandbox, client: Client
) -> None:
    sync_id = sb.sync_ids()[1]
    terminal = _listed(client, sync_id, only_terminal=True)
    gone = terminal[len(terminal) // 2]
    sb.delete_execution(sync_id, gone)
    assert sb.deleted_execution_ids() == {gone}
    for only_terminal in (False, True):
        for ascending in (False, True):
            served = _listed(client, sync_id, only_terminal=only_terminal, ascending=ascending)
            assert gone not in served
            assert served == expected_order(
                sb.truth_executions(), sync_id, only_terminal, ascending
            )
    detail = client.get(f"/api/bulk/syncs/{sync_id}/executions/{gone}")
    assert detail.status_code == 404 and detail.json()["key"] == "not_found"
    assert gone not in {e["id"] for e in sb.truth_executions(include_deleted_syncs=True)}
    assert gone not in {s["execution_id"] for s in sb.truth_schemas()}
    assert gone not in sb.execution_ids(sync_id)
    with pytest.raises(KeyError):
        sb.delete_execution(sync_id, gone)
    with pytest.raises(KeyError):
        sb.truth_execution(sync_id, gone)


@pytest.mark.parametrize(("style", "lost"), [("offset", 1), ("keyset", 0)])
def test_deleting_a_served_row_shifts_offset_tokens(
    sb: Sandbox, client: Client, style: str, lost: int
) -> None:
    sb.configure(token_style=style)
    sync_id = sb.sync_ids()[1]
    order = expected_order(sb.truth_executions(), sync_id)
    first = client.executions_page(sync_id, limit=10)
    sb.delete_execution(sync_id, order[3])
    token = first["pagination"]["next_page_token"]
    second = client.executions_page(sync_id, limit=10, page_token=token)
    assert [e["id"] for e in second["data"]] == order[10 + lost : 20 + lost]


def test_restore_sync_brings_back_the_same_id_and_history(sb: Sandbox, client: Client) -> None:
    sync_id = sb.sync_ids()[1]
    history = _listed(client, sync_id)
    truth = [e for e in sb.truth_executions() if e["bulk_sync_id"] == sync_id]
    sb.delete_sync(sync_id)
    assert client.get(f"/api/bulk/syncs/{sync_id}").status_code == 404
    sb.restore_sync(sync_id)
    assert sync_id in sb.sync_ids() and sync_id in {s["id"] for s in sb.truth_syncs()}
    assert sync_id in {s["id"] for s in client.json("/api/bulk/syncs")["data"]}
    assert client.json(f"/api/bulk/syncs/{sync_id}")["data"]["id"] == sync_id
    assert _listed(client, sync_id) == history
    assert [e for e in sb.truth_executions() if e["bulk_sync_id"] == sync_id] == truth
    with pytest.raises(ValueError):
        sb.restore_sync(sync_id)  # not deleted
    with pytest.raises(KeyError):
        sb.restore_sync("00000000-0000-4000-8000-000000000000")


def test_add_skewed_stamps_ahead_without_dragging_later_stamps_along(
    sb: Sandbox, client: Client
) -> None:
    sync_id = sb.sync_ids()[1]
    skewed = sb.add_skewed(sync_id, ahead_seconds=600)
    row = sb.truth_execution(sync_id, skewed)
    ahead = us(PINNED_NOW.isoformat()) + 600 * 1_000_000
    assert row["status"] == "completed"
    assert us(row["updated_at"]) == us(row["completed_at"]) == ahead
    assert us(row["created_at"]) <= us(row["started_at"]) <= ahead
    later = sb.add_executions(sync_id, n=2)
    for exec_id in later:
        stamp = us(sb.truth_execution(sync_id, exec_id)["updated_at"])
        assert 0 <= stamp - us(PINNED_NOW.isoformat()) < 1_000_000  # near the real now
    walked = _listed(client, sync_id, only_terminal=True, ascending=True)
    assert walked[-3:] == [*later, skewed]
    failed = sb.add_skewed(sync_id, 30, status="failed")
    assert sb.truth_execution(sync_id, failed)["status"] == "failed"
    with pytest.raises(ValueError):
        sb.add_skewed(sync_id, 30, status="running")


@pytest.mark.parametrize("status", ["errors", "interrupted"])
def test_errors_and_interrupted_are_terminal_but_undocumented(
    sb: Sandbox, client: Client, status: str
) -> None:
    sync_id = sb.sync_ids()[1]
    ids = sb.add_executions(sync_id, n=2, status=status)
    for exec_id in ids:
        row = client.json(f"/api/bulk/syncs/{sync_id}/executions/{exec_id}")["data"]
        assert row["status"] == status and row["completed_at"] == row["updated_at"]
        assert row["record_count"] == sum(s["record_count"] for s in row["schemas"])
        assert status != "errors" or row["error_count"] > 0
    assert set(ids) <= set(_listed(client, sync_id, only_terminal=True))
    sb.configure(terminal_statuses="documented")
    terminal = _listed(client, sync_id, only_terminal=True)
    assert not set(ids) & set(terminal)
    assert {e["status"] for e in client.walk(sync_id, only_terminal=True, limit=100)} <= {
        "completed",
        "failed",
        "canceled",
    }
    assert set(ids) <= set(_listed(client, sync_id))  # the default listing keeps them
    for exec_id in ids:
        detail = client.json(f"/api/bulk/syncs/{sync_id}/executions/{exec_id}")["data"]
        assert detail["status"] == status
