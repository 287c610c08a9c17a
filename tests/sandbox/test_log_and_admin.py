"""The request log, counting helpers and the /_sandbox admin endpoints."""

from __future__ import annotations

import requests

from pipelines.sandbox import Sandbox

from .conftest import Client


def test_every_api_request_is_logged_with_its_details(sb: Sandbox, client: Client) -> None:
    sync_id = sb.sync_ids()[0]
    exec_id = sb.execution_ids(sync_id)[0]
    sb.reset_log()
    client.get("/api/bulk/syncs")
    client.get(f"/api/bulk/syncs/{sync_id}")
    client.get(f"/api/bulk/syncs/{sync_id}/executions", limit=5, only_terminal=True)
    client.get(f"/api/bulk/syncs/{sync_id}/executions/{exec_id}")
    client.get("/api/whatever")
    records = sb.requests
    assert [r.n for r in records] == [1, 2, 3, 4, 5]
    assert [r.kind for r in records] == [
        "list_syncs",
        "get_sync",
        "list_executions",
        "get_execution",
        "other",
    ]
    assert [r.status for r in records] == [200, 200, 200, 200, 404]
    listing = records[2]
    assert listing.method == "GET"
    assert listing.path == f"/api/bulk/syncs/{sync_id}/executions"
    assert listing.sync_id == sync_id and records[3].exec_id == exec_id
    assert listing.params == {"limit": "5", "only_terminal": "true"}
    assert listing.auth_ok and listing.version_header == "2025-09-18"
    assert listing["kind"] == "list_executions"  # records also read like dicts


def test_count_filters_by_kind_sync_and_params(sb: Sandbox, client: Client) -> None:
    a, b = sb.sync_ids()[:2]
    sb.reset_log()
    client.walk(a, limit=50)
    client.walk(b, limit=100, only_terminal=True)
    assert sb.count() == 3 + 2
    assert sb.count("list_executions", a) == 3
    assert sb.count(kind="list_executions", sync_id=b, only_terminal=True) == 2
    assert sb.count(limit=50) == 3
    assert sb.count(page_token=None) == 2  # first pages only
    assert sb.count(kind="get_sync") == 0
    sb.reset_log()
    assert sb.count() == 0 and sb.requests == []


def test_admin_stats_reset_and_configure_work_without_auth(sb: Sandbox, client: Client) -> None:
    sb.reset_log()
    client.get("/api/bulk/syncs")
    client.get(f"/api/bulk/syncs/{sb.sync_ids()[0]}/executions")
    requests.get(sb.base_url + "/api/bulk/syncs", timeout=10)  # unauthenticated
    stats = requests.get(sb.base_url + "/_sandbox/stats", timeout=10).json()
    assert stats["total"] == 3
    assert stats["by_kind"] == {"list_syncs": 2, "list_executions": 1}
    assert stats["by_status"] == {"200": 2, "401": 1}
    assert stats["unauthorized"] == 1
    assert sb.count() == 3  # admin calls are not logged

    reply = requests.post(
        sb.base_url + "/_sandbox/configure",
        json={"token_style": "offset", "terminal_statuses": ["completed"], "latency_ms": 0},
        timeout=10,
    )
    assert reply.status_code == 200
    assert reply.json()["token_style"] == "offset"
    assert sb.options.token_style == "offset"
    assert sb.options.terminal_statuses == frozenset({"completed"})
    options = requests.get(sb.base_url + "/_sandbox/options", timeout=10).json()
    assert options["terminal_statuses"] == ["completed"]

    bad = requests.post(sb.base_url + "/_sandbox/configure", json={"nope": 1}, timeout=10)
    assert bad.status_code == 400
    assert (
        requests.post(sb.base_url + "/_sandbox/configure", data="[1]", timeout=10).status_code
        == 400
    )

    assert requests.post(sb.base_url + "/_sandbox/reset", timeout=10).json() == {"ok": True}
    assert sb.count() == 0
    assert requests.get(sb.base_url + "/_sandbox/unknown", timeout=10).status_code == 404


def test_configure_validates_options(sb: Sandbox) -> None:
    import pytest

    for bad in (
        {"token_style": "cursor"},
        {"last_page": "maybe"},
        {"empty_data": "none"},
        {"terminal_statuses": []},
        {"terminal_statuses": "some"},
        {"unknown_option": True},
    ):
        with pytest.raises(ValueError):
            sb.configure(**bad)
    assert sb.configure(terminal_statuses="documented").terminal_statuses == frozenset(
        {"completed", "failed", "canceled"}
    )


def test_keep_alive_connections_are_reused(sb: Sandbox, client: Client) -> None:
    for _ in range(20):
        client.get("/api/bulk/syncs")
    pool = client.http.get_adapter(sb.base_url).poolmanager
    pools = list(pool.pools._container.values())
    assert pools and pools[0].num_connections == 1


def test_the_sandbox_restarts_and_stop_is_idempotent() -> None:
    sb = Sandbox(seed=1, syncs=1, executions=3)
    sb.stop()
    with sb:
        assert requests.get(sb.base_url + "/_sandbox/stats", timeout=5).ok
    sb.stop()
    with sb:
        assert sb.running
        assert requests.get(sb.base_url + "/_sandbox/stats", timeout=5).ok
    assert not sb.running
