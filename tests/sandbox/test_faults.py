"""Deterministic fault injection."""

from __future__ import annotations

import time

import pytest
import requests

from pipelines.sandbox import Fault, Sandbox

from .conftest import Client


def test_a_429_carries_retry_after_unless_switched_off(sb: Sandbox, client: Client) -> None:
    sb.inject(Fault("429", retry_after=2))
    limited = client.get("/api/bulk/syncs")
    assert limited.status_code == 429
    assert limited.headers["Retry-After"] == "2"
    assert limited.json()["status"] == 429
    assert client.get("/api/bulk/syncs").status_code == 200  # times=1
    sb.configure(retry_after_on_429=False)
    sb.inject(Fault("429"))
    assert "Retry-After" not in client.get("/api/bulk/syncs").headers


@pytest.mark.parametrize("kind", ["500", "502", "503"])
def test_server_errors_have_api_error_bodies(sb: Sandbox, client: Client, kind: str) -> None:
    sb.inject(Fault(kind))
    response = client.get("/api/bulk/syncs")
    assert response.status_code == int(kind)
    assert response.json()["status"] == int(kind)
    assert response.headers["X-Polytomic-Version"] == "2025-09-18"


def test_a_502_html_body_is_not_json(sb: Sandbox, client: Client) -> None:
    sb.inject(Fault("502_html"))
    response = client.get("/api/bulk/syncs")
    assert response.status_code == 502
    assert response.headers["Content-Type"] == "text/html"
    with pytest.raises(ValueError):
        response.json()


def test_a_reset_closes_the_connection_without_a_response(sb: Sandbox, client: Client) -> None:
    sb.inject(Fault("reset"))
    with pytest.raises(requests.ConnectionError):
        client.get("/api/bulk/syncs")
    assert sb.requests[-1].status == 0 and sb.requests[-1].fault == "reset"
    assert client.get("/api/bulk/syncs").status_code == 200  # a new connection works


def test_a_hang_never_answers_and_does_not_block_shutdown() -> None:
    sb = Sandbox(seed=1, syncs=1, executions=5).start()
    sb.inject(Fault("hang"))
    started = time.monotonic()
    with pytest.raises(requests.exceptions.ReadTimeout):
        requests.get(
            sb.base_url + "/api/bulk/syncs",
            headers={"Authorization": f"Bearer {sb.api_key}"},
            timeout=0.3,
        )
    sb.stop()
    assert time.monotonic() - started < 3
    assert sb.requests[-1].fault == "hang" and sb.requests[-1].status == 0


def test_a_hang_with_a_delay_drops_the_connection_afterwards(sb: Sandbox, client: Client) -> None:
    sb.inject(Fault("hang", delay=0.2))
    with pytest.raises(requests.ConnectionError):
        client.get("/api/bulk/syncs")


@pytest.mark.parametrize(
    ("body", "status"),
    [
        (b'{"data": [', 200),
        ({"data": {"not": "a list"}}, 200),
        ('{"data": [{"id": 5, "record_count": "many"}]}', 200),
        ({"data": [], "pagination": {"next_page_token": 42}}, 200),
        ("", 204),
        ("teapot", 418),
    ],
)
def test_a_body_fault_sends_any_raw_body(
    sb: Sandbox, client: Client, body: object, status: int
) -> None:
    sb.inject(Fault("body", body=body, status=status, kind_filter="list_executions"))
    assert client.get("/api/bulk/syncs").status_code == 200  # filtered out
    response = client.get(f"/api/bulk/syncs/{sb.sync_ids()[0]}/executions")
    assert response.status_code == status
    expected = body if isinstance(body, bytes) else body.encode() if isinstance(body, str) else None
    if expected is not None:
        assert response.content == expected
    else:
        assert response.json() == body


def test_a_latency_fault_delays_but_answers(sb: Sandbox, client: Client) -> None:
    sb.inject(Fault("latency", delay=0.25))
    started = time.monotonic()
    response = client.get("/api/bulk/syncs")
    assert response.status_code == 200 and len(response.json()["data"]) == 3
    assert time.monotonic() - started >= 0.25
    assert sb.requests[-1].fault == "latency"


def test_latency_option_slows_every_request(sb: Sandbox, client: Client) -> None:
    sb.configure(latency_ms=50)
    started = time.monotonic()
    for _ in range(3):
        client.get("/api/bulk/syncs")
    assert time.monotonic() - started >= 0.15


def test_at_requests_fires_on_exact_request_numbers(sb: Sandbox, client: Client) -> None:
    sb.reset_log()
    sb.inject(Fault("503", at_requests={2, 4}))
    statuses = [client.get("/api/bulk/syncs").status_code for _ in range(5)]
    assert statuses == [200, 503, 200, 503, 200]
    assert [r.status for r in sb.requests] == statuses


def test_times_limits_firings_and_none_means_every_request(sb: Sandbox, client: Client) -> None:
    sb.inject(Fault("500", times=2))
    assert [client.get("/api/bulk/syncs").status_code for _ in range(3)] == [500, 500, 200]
    sb.inject(Fault("500", times=None, kind_filter="get_sync"))
    sync_id = sb.sync_ids()[0]
    assert {client.get(f"/api/bulk/syncs/{sync_id}").status_code for _ in range(3)} == {500}
    sb.clear_faults()
    assert client.get(f"/api/bulk/syncs/{sync_id}").status_code == 200


def test_faults_can_target_one_sync(sb: Sandbox, client: Client) -> None:
    a, b = sb.sync_ids()[:2]
    sb.inject(Fault("500", times=None, sync_id=b))
    assert client.get(f"/api/bulk/syncs/{a}/executions").status_code == 200
    assert client.get(f"/api/bulk/syncs/{b}/executions").status_code == 500


def test_rate_faults_repeat_the_same_pattern_for_the_same_seed(sb: Sandbox, client: Client) -> None:
    def pattern() -> list[int]:
        sb.clear_faults()
        sb.inject(Fault("502", rate=0.3, times=None, seed=42))
        return [client.get("/api/bulk/syncs").status_code for _ in range(30)]

    first, second = pattern(), pattern()
    assert first == second
    assert 0 < first.count(502) < 30


def test_faulted_requests_are_logged_with_their_status(sb: Sandbox, client: Client) -> None:
    sb.reset_log()
    sb.inject(Fault("429", retry_after=0))
    client.get("/api/bulk/syncs")
    client.get("/api/bulk/syncs")
    assert [(r.status, r.fault) for r in sb.requests] == [(429, "429"), (200, None)]
    assert sb.stats()["faults"] == {"429": 1}


def test_fault_validation() -> None:
    with pytest.raises(ValueError):
        Fault("404")
    with pytest.raises(ValueError):
        Fault("500", kind_filter="list_everything")
    with pytest.raises(ValueError):
        Fault("500", rate=2.0)


def test_with_token_true_fires_only_on_follow_up_pages(sb: Sandbox, client: Client) -> None:
    sync_id = sb.sync_ids()[1]
    path = f"/api/bulk/syncs/{sync_id}/executions"
    body = {"status": 404, "message": "page token expired", "key": "not_found", "metadata": {}}
    sb.inject(Fault("body", status=404, body=body, kind_filter="list_executions", with_token=True))
    first = client.get(path, limit=10)
    assert first.status_code == 200
    assert client.get(path, page_token="").status_code == 200  # a blank token is no token
    token = first.json()["pagination"]["next_page_token"]
    missing = client.get(path, limit=10, page_token=token)
    assert missing.status_code == 404 and missing.json() == body
    assert sb.requests[-1].fault == "body" and sb.requests[-1].status == 404
    assert client.get(path, limit=10, page_token=token).status_code == 200  # times=1


def test_with_token_false_fires_only_on_first_pages(sb: Sandbox, client: Client) -> None:
    sync_id = sb.sync_ids()[1]
    path = f"/api/bulk/syncs/{sync_id}/executions"
    token = client.executions_page(sync_id, limit=10)["pagination"]["next_page_token"]
    sb.inject(Fault("503", times=None, with_token=False))
    assert client.get(path, limit=10, page_token=token).status_code == 200
    assert client.get(path, limit=10).status_code == 503
    assert client.get(path, limit=10, page_token="").status_code == 503
    assert client.get("/api/bulk/syncs").status_code == 503  # no kind_filter: any kind


@pytest.mark.parametrize("status", [400, 404, 410])
def test_api_error_body_faults(sb: Sandbox, client: Client, status: int) -> None:
    sync_id = sb.sync_ids()[1]
    path = f"/api/bulk/syncs/{sync_id}/executions"
    token = client.executions_page(sync_id)["pagination"]["next_page_token"]
    sb.inject(Fault.api_error(status, "expired", "token_expired", {"ttl": 60}, with_token=True))
    sb.inject(Fault.api_error(status, kind_filter="list_executions"))
    custom = client.get(path, page_token=token)
    assert custom.status_code == status
    assert custom.headers["Content-Type"] == "application/json"
    assert custom.json() == {
        "status": status,
        "message": "expired",
        "key": "token_expired",
        "metadata": {"ttl": 60},
    }
    plain = client.get(path)
    assert plain.status_code == status
    assert set(plain.json()) == {"status", "message", "key", "metadata"}
    assert plain.json()["status"] == status and plain.json()["message"]
    assert client.get(path).status_code == 200  # both faults fired once
