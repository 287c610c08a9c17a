"""Fixtures for the sandbox's own tests: real HTTP against a pinned-clock sandbox."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
import requests

from pipelines.sandbox import Sandbox

PINNED_NOW = datetime(2026, 5, 2, 12, 0, 0, tzinfo=UTC)


class Client:
    """A tiny API client for the tests: Bearer auth, keep-alive, token walking."""

    def __init__(self, sb: Sandbox) -> None:
        self.sb = sb
        self.http = requests.Session()
        self.http.headers["Authorization"] = f"Bearer {sb.api_key}"
        self.http.headers["X-Polytomic-Version"] = "2025-09-18"

    def get(self, path: str, **params: Any) -> requests.Response:
        clean = {k: _q(v) for k, v in params.items() if v is not None}
        return self.http.get(self.sb.base_url + path, params=clean, timeout=10)

    def json(self, path: str, **params: Any) -> Any:
        response = self.get(path, **params)
        assert response.status_code == 200, response.text
        return response.json()

    def executions_page(self, sync_id: str, **params: Any) -> dict[str, Any]:
        return self.json(f"/api/bulk/syncs/{sync_id}/executions", **params)

    def walk(self, sync_id: str, max_pages: int = 10_000, **params: Any) -> list[dict[str, Any]]:
        """Follow ``next_page_token`` until it is falsy; returns every row served."""
        rows: list[dict[str, Any]] = []
        token = None
        for _ in range(max_pages):
            page = self.executions_page(sync_id, page_token=token, **params)
            rows.extend(page["data"] or [])
            token = (page.get("pagination") or {}).get("next_page_token")
            if not token:
                return rows
        raise AssertionError("pagination did not terminate")


def _q(value: Any) -> Any:
    if isinstance(value, bool):
        return "true" if value else "false"
    return value


@pytest.fixture
def sb() -> Iterator[Sandbox]:
    with Sandbox(seed=7, syncs=3, executions=120, now=PINNED_NOW) as sandbox:
        yield sandbox


@pytest.fixture
def client(sb: Sandbox) -> Client:
    return Client(sb)


def us(stamp: str | None) -> int:
    """Microseconds since the epoch of an RFC 3339 timestamp (wire order, not string order)."""
    assert stamp is not None
    moment = datetime.fromisoformat(stamp)
    return int(moment.timestamp()) * 1_000_000 + moment.microsecond


def expected_order(
    truth: list[dict[str, Any]],
    sync_id: str,
    only_terminal: bool = False,
    ascending: bool = False,
    terminal: frozenset[str] = frozenset(
        {"completed", "failed", "canceled", "errors", "interrupted"}
    ),
) -> list[str]:
    """The documented ordering, computed independently from the ground truth."""
    rows = [e for e in truth if e["bulk_sync_id"] == sync_id]
    if only_terminal:
        rows = [e for e in rows if e["status"] in terminal]
    sign = 1 if ascending else -1

    def key(e: dict[str, Any]) -> tuple[int, str]:
        stamp = e["updated_at"] if only_terminal else (e["started_at"] or e["created_at"])
        return (sign * us(stamp), e["id"])

    return [e["id"] for e in sorted(rows, key=key)]
