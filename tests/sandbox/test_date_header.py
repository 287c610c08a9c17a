"""The ``Date`` header: on every response, from the sandbox clock, shiftable and optional."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime

import pytest
import requests

from pipelines.sandbox import Fault, Sandbox

from .conftest import PINNED_NOW, Client, us


def _date(response: requests.Response) -> datetime:
    return parsedate_to_datetime(response.headers["Date"])


def test_every_response_carries_an_rfc_7231_date_from_the_sandbox_clock(
    sb: Sandbox, client: Client
) -> None:
    sync_id = sb.sync_ids()[0]
    responses = [
        client.get("/api/bulk/syncs"),
        client.get(f"/api/bulk/syncs/{sync_id}"),
        client.get(f"/api/bulk/syncs/{sync_id}/executions"),
        client.get(f"/api/bulk/syncs/{sync_id}/executions/{sb.execution_ids(sync_id)[0]}"),
        client.get(f"/api/bulk/syncs/{sync_id}/executions/nope"),  # 404
        client.get(f"/api/bulk/syncs/{sync_id}/executions", limit="x"),  # 400
        client.http.post(f"{sb.base_url}/api/bulk/syncs", timeout=10),  # 405
        requests.get(f"{sb.base_url}/api/bulk/syncs", timeout=10),  # 401
        client.get("/_sandbox/stats"),
    ]
    assert sorted({r.status_code for r in responses}) == [200, 400, 401, 404, 405]
    for response in responses:
        assert response.headers["Date"] == "Sat, 02 May 2026 12:00:00 GMT"
        assert _date(response) == PINNED_NOW
    sb.advance(90.7)
    assert _date(client.get("/api/bulk/syncs")) == PINNED_NOW + timedelta(seconds=90)


@pytest.mark.parametrize(
    "fault",
    [
        Fault("429", retry_after=0),
        Fault("500"),
        Fault("502"),
        Fault("503"),
        Fault("502_html"),
        Fault("body", body="teapot", status=418),
        Fault("latency", delay=0.0),
    ],
    ids=lambda f: f.kind,
)
def test_faults_that_answer_carry_the_date_too(sb: Sandbox, client: Client, fault: Fault) -> None:
    sb.inject(fault)
    response = client.get("/api/bulk/syncs")
    assert sb.requests[-1].fault == fault.kind
    assert _date(response) == PINNED_NOW


def test_a_failing_hook_500_carries_the_date(sb: Sandbox, client: Client) -> None:
    def boom(sandbox: Sandbox, record: object) -> None:
        raise RuntimeError("hook exploded")

    sb.add_hook(boom)
    response = client.get("/api/bulk/syncs")
    assert response.status_code == 500 and _date(response) == PINNED_NOW


def test_a_body_fault_may_send_its_own_date(sb: Sandbox, client: Client) -> None:
    sb.inject(Fault("body", body={}, headers={"Date": "yesterday-ish"}))
    assert client.get("/api/bulk/syncs").headers["Date"] == "yesterday-ish"


def test_date_offset_shifts_only_the_date_header(sb: Sandbox, client: Client) -> None:
    sync_id = sb.sync_ids()[1]
    before = client.executions_page(sync_id, limit=5)
    sb.configure(date_offset_seconds=-3600.5)
    response = client.get(f"/api/bulk/syncs/{sync_id}/executions", limit=5)
    assert _date(response) == PINNED_NOW - timedelta(seconds=3601)  # seconds resolution
    assert response.json() == before  # the data still follows the sandbox clock
    [added] = sb.add_executions(sync_id)
    stamp = us(sb.truth_execution(sync_id, added)["updated_at"])
    assert 0 <= stamp - us(PINNED_NOW.isoformat()) < 1_000_000
    shifted = requests.post(
        f"{sb.base_url}/_sandbox/configure", json={"date_offset_seconds": 86_400}, timeout=10
    )
    assert shifted.json()["date_offset_seconds"] == 86_400.0
    assert _date(client.get("/api/bulk/syncs")) == PINNED_NOW + timedelta(days=1)


def test_the_date_header_can_be_switched_off(sb: Sandbox, client: Client) -> None:
    sb.configure(date_header=False)
    assert "Date" not in client.get("/api/bulk/syncs").headers
    sb.inject(Fault("503"))
    assert "Date" not in client.get("/api/bulk/syncs").headers
    sb.configure(date_header=True)
    assert "Date" in client.get("/api/bulk/syncs").headers
    with pytest.raises(ValueError):
        sb.configure(date_offset_seconds=float("inf"))


def test_a_wall_clock_sandbox_dates_responses_with_wall_time() -> None:
    with Sandbox(seed=3, syncs=1, executions=3) as sandbox:
        response = Client(sandbox).get("/api/bulk/syncs")
        assert abs((_date(response) - datetime.now(UTC)).total_seconds()) < 5
