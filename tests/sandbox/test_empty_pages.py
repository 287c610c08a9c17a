"""Empty pages that still carry a token: detours in the middle and endless tails."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from pipelines.sandbox import Sandbox

from .conftest import Client, expected_order


def _pages(
    client: Client, sync_id: str, max_pages: int, **params: Any
) -> list[tuple[list[dict[str, Any]] | None, str | None]]:
    """``(data, next_page_token)`` per page until the token is falsy or ``max_pages``."""
    pages: list[tuple[list[dict[str, Any]] | None, str | None]] = []
    token = None
    for _ in range(max_pages):
        page = client.executions_page(sync_id, page_token=token, **params)
        token = page["pagination"]["next_page_token"]
        pages.append((page["data"], token))
        if not token:
            break
    return pages


def _ids(pages: list[tuple[list[dict[str, Any]] | None, str | None]]) -> list[str]:
    return [e["id"] for data, _ in pages for e in data or []]


@pytest.mark.parametrize("style", ["keyset", "offset"])
@pytest.mark.parametrize("only_terminal", [False, True])
def test_mid_empty_pages_detour_then_continue_exactly_where_the_walk_was(
    sb: Sandbox, client: Client, style: str, only_terminal: bool
) -> None:
    sb.configure(token_style=style, mid_empty_pages=2)
    sync_id = sb.sync_ids()[1]
    expected = expected_order(sb.truth_executions(), sync_id, only_terminal)
    pages = _pages(client, sync_id, 1000, limit=25, only_terminal=only_terminal)
    assert _ids(pages) == expected  # no row lost or repeated
    sizes = [len(data or []) for data, _ in pages]
    chunks = [min(25, len(expected) - i) for i in range(0, len(expected), 25)]
    assert sizes == [n for size in chunks[:-1] for n in (size, 0, 0)] + chunks[-1:]
    tokens = [token for _, token in pages[:-1]]
    assert all(tokens) and len(set(tokens)) == len(tokens)  # every empty page: a fresh token
    assert pages[-1][1] is None


def test_mid_empty_pages_honour_empty_data_null(sb: Sandbox, client: Client) -> None:
    sb.configure(mid_empty_pages=1, empty_data="null")
    sync_id = sb.sync_ids()[1]
    pages = _pages(client, sync_id, 1000, limit=50)
    assert [data is None for data, _ in pages][:3] == [False, True, False]
    assert _ids(pages) == expected_order(sb.truth_executions(), sync_id)


def test_an_empty_page_token_is_mac_protected(sb: Sandbox, client: Client) -> None:
    sb.configure(mid_empty_pages=1)
    sync_id = sb.sync_ids()[1]
    token = client.executions_page(sync_id, limit=10)["pagination"]["next_page_token"]
    blob = base64.urlsafe_b64decode(token)
    assert b'"e":1' in blob
    forged = base64.urlsafe_b64encode(blob.replace(b'"e":1', b'"e":9')).decode()
    response = client.get(f"/api/bulk/syncs/{sync_id}/executions", page_token=forged)
    assert response.status_code == 400


@pytest.mark.parametrize("style", ["keyset", "offset"])
def test_endless_empty_fresh_never_ends_and_every_token_differs(
    sb: Sandbox, client: Client, style: str
) -> None:
    sb.configure(token_style=style, endless_empty="fresh")
    sync_id = sb.sync_ids()[1]
    pages = _pages(client, sync_id, 40, limit=50)
    assert len(pages) == 40 and all(token for _, token in pages)  # it never ends
    assert _ids(pages) == expected_order(sb.truth_executions(), sync_id)
    assert [len(data) for data, _ in pages[:4]] == [50, 50, 20, 0]
    assert all(data == [] for data, _ in pages[3:])
    tokens = [token for _, token in pages]
    assert len(set(tokens)) == len(tokens)


def test_endless_empty_same_hands_back_the_identical_token(sb: Sandbox, client: Client) -> None:
    sb.configure(endless_empty="same")
    sync_id = sb.sync_ids()[1]
    pages = _pages(client, sync_id, 3, limit=100)
    assert [len(data) for data, _ in pages] == [100, 20, 0]
    tail = pages[1][1]
    assert tail and pages[2][1] == tail
    for _ in range(5):
        page = client.executions_page(sync_id, page_token=tail, limit=100)
        assert page == {"data": [], "pagination": {"next_page_token": tail}}


def test_endless_empty_starts_at_once_on_a_sync_without_executions(
    sb: Sandbox, client: Client
) -> None:
    sb.configure(endless_empty="fresh", mid_empty_pages=3)
    empty = sb.add_sync("nothing yet")
    pages = _pages(client, empty, 5)
    assert all(data == [] and token for data, token in pages) and len(pages) == 5


def test_empty_page_options_leave_the_sync_list_alone(sb: Sandbox, client: Client) -> None:
    for _ in range(60):
        sb.add_sync()
    sb.configure(paginate_syncs=True, mid_empty_pages=2, endless_empty="same")
    first = client.json("/api/bulk/syncs")
    second = client.json("/api/bulk/syncs", page_token=first["pagination"]["next_page_token"])
    assert (len(first["data"]), len(second["data"])) == (50, 13)
    assert second["pagination"]["next_page_token"] is None


def test_empty_page_options_are_validated(sb: Sandbox) -> None:
    with pytest.raises(ValueError):
        sb.configure(endless_empty="sometimes")
    with pytest.raises(ValueError):
        sb.configure(mid_empty_pages=-1)
    assert sb.configure(mid_empty_pages="2").mid_empty_pages == 2
