"""Speed guards: full pages must not pay Nagle/delayed-ACK stalls (~40 ms each), and deep
keyset pages of a long history must cost the same as the first page."""

from __future__ import annotations

import time

from pipelines.sandbox import Sandbox, SyncPlan

from .conftest import PINNED_NOW, Client


def _pages_per_second(client: Client, sync_id: str, seconds: float, **params: object) -> float:
    pages = 0
    started = time.perf_counter()
    while time.perf_counter() - started < seconds:
        response = client.get(f"/api/bulk/syncs/{sync_id}/executions", limit=100, **params)
        assert response.status_code == 200 and len(response.content) > 10_000
        pages += 1
    return pages / (time.perf_counter() - started)


def test_full_hundred_execution_pages_are_served_at_hundreds_per_second() -> None:
    plan = SyncPlan(executions=300, schemas=(3, 5))
    with Sandbox(seed=1, plans=[plan], now=PINNED_NOW) as sb:
        sb.warm()
        client = Client(sb)
        rate = _pages_per_second(client, sb.sync_ids()[0], 0.3)
    assert rate > 60, f"only {rate:.0f} pages/s: is TCP_NODELAY / single-write lost?"


def test_deep_keyset_pages_of_a_long_history_are_as_cheap_as_the_first() -> None:
    with Sandbox(seed=1, plans=[SyncPlan(executions=3_000)], now=PINNED_NOW) as sb:
        sb.warm()
        client = Client(sb)
        sync_id = sb.sync_ids()[0]
        started = time.perf_counter()
        rows = client.walk(sync_id, limit=100, only_terminal=True)
        elapsed = time.perf_counter() - started
    assert len(rows) == len({r["id"] for r in rows}) >= 2_990
    assert elapsed / 30 < 0.05, f"{elapsed / 30 * 1000:.1f} ms per page"
