"""Ordering, page size, page tokens and the last-page shapes of the executions list."""

from __future__ import annotations

import base64
import json

import pytest

from pipelines.sandbox import Sandbox

from .conftest import PINNED_NOW, Client, expected_order, us


@pytest.mark.parametrize("only_terminal", [False, True])
@pytest.mark.parametrize("ascending", [False, True])
def test_executions_are_ordered_as_documented_in_all_four_modes(
    sb: Sandbox, client: Client, only_terminal: bool, ascending: bool
) -> None:
    truth = sb.truth_executions()
    for sync_id in sb.sync_ids():
        served = client.walk(sync_id, only_terminal=only_terminal, ascending=ascending, limit=37)
        assert [e["id"] for e in served] == expected_order(truth, sync_id, only_terminal, ascending)


def test_default_order_is_newest_start_first_and_in_flight_rows_lead(
    sb: Sandbox, client: Client
) -> None:
    sync_id = sb.sync_ids()[0]
    first = client.executions_page(sync_id, limit=1)["data"][0]
    assert first["status"] == "running"  # sync 0 always has a run in flight
    assert first["completed_at"] is None


def test_only_terminal_hides_in_flight_rows_and_orders_by_updated_at(
    sb: Sandbox, client: Client
) -> None:
    rows = client.walk(sb.sync_ids()[0], only_terminal=True, limit=100)
    assert all(e["completed_at"] is not None for e in rows)
    assert {e["status"] for e in rows} <= {
        "completed",
        "failed",
        "canceled",
        "errors",
        "interrupted",
    }


def test_terminal_statuses_switch_to_the_documented_set_drops_errors_and_interrupted(
    sb: Sandbox, client: Client
) -> None:
    sync_id = sb.sync_ids()[0]
    sb.add_executions(sync_id, 1, "errors")  # planted: the default org rarely has them
    sb.add_executions(sync_id, 1, "interrupted")
    everything = client.walk(sync_id, only_terminal=True, limit=100)
    assert {"errors", "interrupted"} <= {e["status"] for e in everything}
    sb.configure(terminal_statuses="documented")
    documented = client.walk(sync_id, only_terminal=True, limit=100)
    assert {e["status"] for e in documented} <= {"completed", "failed", "canceled"}
    assert len(documented) < len(everything)


def test_limit_is_capped_at_100_and_defaults_to_50(sb: Sandbox, client: Client) -> None:
    sync_id = sb.sync_ids()[0]
    assert len(client.executions_page(sync_id, limit=500)["data"]) == 100
    assert len(client.executions_page(sync_id)["data"]) == 50
    assert len(client.executions_page(sync_id, limit=0)["data"]) == 50
    assert len(client.executions_page(sync_id, limit=7)["data"]) == 7


def test_a_non_numeric_limit_is_a_400(sb: Sandbox, client: Client) -> None:
    response = client.get(f"/api/bulk/syncs/{sb.sync_ids()[0]}/executions", limit="ten")
    assert response.status_code == 400
    assert response.json()["status"] == 400


@pytest.mark.parametrize("style", ["keyset", "offset"])
@pytest.mark.parametrize("only_terminal", [False, True])
def test_each_token_style_serves_every_execution_exactly_once_in_order(
    sb: Sandbox, client: Client, style: str, only_terminal: bool
) -> None:
    sb.configure(token_style=style)
    sync_id = sb.sync_ids()[1]
    served = [e["id"] for e in client.walk(sync_id, only_terminal=only_terminal, limit=11)]
    assert served == expected_order(sb.truth_executions(), sync_id, only_terminal)
    assert len(served) == len(set(served))


def test_tokens_are_opaque_url_safe_base64(sb: Sandbox, client: Client) -> None:
    token = client.executions_page(sb.sync_ids()[0], limit=5)["pagination"]["next_page_token"]
    assert set(token) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_=")
    base64.urlsafe_b64decode(token)


def _walk_with_reupdate_after_first_page(sb: Sandbox, client: Client, style: str) -> tuple:
    """Walk oldest-first by updated_at; after page 1, re-update a row already served."""
    sb.configure(token_style=style)
    sync_id = sb.sync_ids()[1]
    params = {"only_terminal": True, "ascending": True, "limit": 10}
    first = client.executions_page(sync_id, **params)
    moved = first["data"][0]["id"]
    sb.reupdate(sync_id, moved)
    rest: list[dict] = []
    token = first["pagination"]["next_page_token"]
    while token:
        page = client.executions_page(sync_id, page_token=token, **params)
        rest.extend(page["data"])
        token = page["pagination"]["next_page_token"]
    served = [e["id"] for e in first["data"]] + [e["id"] for e in rest]
    everything = {e["id"] for e in sb.truth_executions() if e["bulk_sync_id"] == sync_id}
    terminal = {
        e["id"]
        for e in sb.truth_executions()
        if e["bulk_sync_id"] == sync_id and e["completed_at"] is not None
    }
    return served, terminal & everything, moved


def test_offset_tokens_skip_a_row_when_an_earlier_row_moves_during_the_walk(
    sb: Sandbox, client: Client
) -> None:
    served, terminal, moved = _walk_with_reupdate_after_first_page(sb, client, "offset")
    skipped = terminal - set(served)
    assert len(skipped) == 1  # the row that slid back across the page boundary
    assert served.count(moved) == 2  # the moved row is served again at its new place


def test_keyset_tokens_skip_nothing_when_an_earlier_row_moves_during_the_walk(
    sb: Sandbox, client: Client
) -> None:
    served, terminal, moved = _walk_with_reupdate_after_first_page(sb, client, "keyset")
    assert terminal - set(served) == set()
    assert served.count(moved) == 2


def test_offset_tokens_repeat_rows_when_new_executions_arrive_at_the_top(
    sb: Sandbox, client: Client
) -> None:
    sb.configure(token_style="offset")
    sync_id = sb.sync_ids()[1]
    first = client.executions_page(sync_id, limit=10)
    sb.add_executions(sync_id, n=3)
    second = client.executions_page(
        sync_id, limit=10, page_token=first["pagination"]["next_page_token"]
    )
    assert [e["id"] for e in second["data"][:3]] == [e["id"] for e in first["data"][-3:]]


def test_the_token_pins_the_ordering_it_was_issued_for(sb: Sandbox, client: Client) -> None:
    sync_id = sb.sync_ids()[1]
    first = client.executions_page(sync_id, limit=10, only_terminal=True, ascending=True)
    token = first["pagination"]["next_page_token"]
    second = client.executions_page(sync_id, limit=10, page_token=token)  # params dropped
    expected = expected_order(sb.truth_executions(), sync_id, True, True)
    assert [e["id"] for e in first["data"] + second["data"]] == expected[:20]


@pytest.mark.parametrize(
    "token",
    [
        "not-a-token",
        "%%%",
        base64.urlsafe_b64encode(b"12345678" + json.dumps({"v": 1}).encode()).decode(),
        "AmkYh8v0jR5B3kls2Qcc9y8MjrPmvR4CvaK7H0F4rEwqvg76K==",
    ],
)
def test_a_malformed_or_forged_page_token_is_a_400_api_error(
    sb: Sandbox, client: Client, token: str
) -> None:
    response = client.get(f"/api/bulk/syncs/{sb.sync_ids()[0]}/executions", page_token=token)
    assert response.status_code == 400
    body = response.json()
    assert body["status"] == 400 and body["message"] and body["key"]


def test_a_token_from_another_sync_or_another_sandbox_is_a_400(sb: Sandbox, client: Client) -> None:
    a, b = sb.sync_ids()[:2]
    token = client.executions_page(a, limit=5)["pagination"]["next_page_token"]
    assert client.get(f"/api/bulk/syncs/{b}/executions", page_token=token).status_code == 400
    with Sandbox(seed=8, syncs=1, executions=20, now=PINNED_NOW) as other:
        foreign = Client(other).executions_page(other.sync_ids()[0], limit=5)
        stranger = foreign["pagination"]["next_page_token"]
    assert client.get(f"/api/bulk/syncs/{a}/executions", page_token=stranger).status_code == 400


@pytest.mark.parametrize(
    ("shape", "expected"),
    [
        ("no_pagination_key", None),
        ("null_token", {"next_page_token": None}),
        ("empty_string", {"next_page_token": ""}),
    ],
)
def test_each_last_page_shape(sb: Sandbox, client: Client, shape: str, expected: object) -> None:
    sb.configure(last_page=shape)
    sync_id = sb.sync_ids()[1]
    last = client.executions_page(
        sync_id, limit=100, page_token=_token_to_last_page(client, sync_id)
    )
    assert last["data"]
    assert last.get("pagination") == expected
    assert ("pagination" in last) == (expected is not None)


def _token_to_last_page(client: Client, sync_id: str) -> str:
    return client.executions_page(sync_id, limit=100)["pagination"]["next_page_token"]


def test_extra_empty_page_shape_ends_with_a_page_that_has_no_rows(
    sb: Sandbox, client: Client
) -> None:
    sb.configure(last_page="extra_empty_page")
    sync_id = sb.sync_ids()[1]
    pages = []
    token = None
    while True:
        page = client.executions_page(sync_id, limit=50, page_token=token)
        pages.append(page)
        token = page["pagination"]["next_page_token"]
        if not token:
            break
    assert [len(p["data"]) for p in pages] == [50, 50, 20, 0]
    assert pages[-1]["pagination"] == {"next_page_token": None}


def test_empty_data_can_be_null(sb: Sandbox, client: Client) -> None:
    empty = sb.add_sync("no history yet")
    assert client.executions_page(empty)["data"] == []
    sb.configure(empty_data="null")
    page = client.executions_page(empty)
    assert page["data"] is None
    assert page["pagination"] == {"next_page_token": None}


@pytest.mark.parametrize("tie_order", ["id_asc", "id_desc"])
def test_tie_order_among_equal_timestamps(sb: Sandbox, client: Client, tie_order: str) -> None:
    sb.configure(tie_order=tie_order)
    sync_id = sb.sync_ids()[1]
    tied = set(sb.add_executions(sync_id, n=4, updated_at=sb.now()))
    for ascending in (False, True):
        rows = client.walk(sync_id, only_terminal=True, ascending=ascending, limit=3)
        ids = [e["id"] for e in rows if e["id"] in tied]
        assert ids == sorted(ids, reverse=tie_order == "id_desc")


def test_bulk_sync_list_is_one_page_by_default_without_a_pagination_key(
    sb: Sandbox, client: Client
) -> None:
    for _ in range(60):
        sb.add_sync()
    body = client.json("/api/bulk/syncs")
    assert len(body["data"]) == 63
    assert "pagination" not in body


def test_bulk_sync_list_pages_fifty_at_a_time_when_switched_on(sb: Sandbox, client: Client) -> None:
    for _ in range(60):
        sb.add_sync()
    sb.configure(paginate_syncs=True)
    first = client.json("/api/bulk/syncs")
    assert len(first["data"]) == 50
    token = first["pagination"]["next_page_token"]
    second = client.json("/api/bulk/syncs", page_token=token)
    assert len(second["data"]) == 13
    assert second["pagination"]["next_page_token"] is None
    ids = [s["id"] for s in first["data"] + second["data"]]
    assert sorted(ids) == sorted(sb.sync_ids())
    assert len(client.json("/api/bulk/syncs", limit=10)["data"]) == 10
    assert len(client.json("/api/bulk/syncs", limit=500)["data"]) == 50
    stamps = [s["updated_at"] for s in first["data"] + second["data"]]
    assert [us(s) for s in stamps] == sorted((us(s) for s in stamps), reverse=True)


def test_bulk_sync_list_filters_on_active(sb: Sandbox, client: Client) -> None:
    paused = sb.sync_ids()[2]
    sb.set_active(paused, False)
    active = {s["id"] for s in client.json("/api/bulk/syncs", active=True)["data"]}
    inactive = {s["id"] for s in client.json("/api/bulk/syncs", active=False)["data"]}
    assert inactive == {paused}
    assert active == set(sb.sync_ids()) - {paused}
