"""Authentication, the version header and error bodies."""

from __future__ import annotations

import base64

import pytest
import requests

from pipelines.sandbox import Sandbox

from .conftest import Client


def _get(sb: Sandbox, path: str, **headers: str) -> requests.Response:
    return requests.get(sb.base_url + path, headers=headers, timeout=10)


def test_bearer_api_key_is_accepted(sb: Sandbox) -> None:
    response = _get(sb, "/api/bulk/syncs", Authorization=f"Bearer {sb.api_key}")
    assert response.status_code == 200
    assert len(response.json()["data"]) == 3


def test_basic_organization_id_and_deployment_key_is_accepted(sb: Sandbox) -> None:
    raw = f"{sb.organization_id}:{sb.deployment_key}".encode()
    header = "Basic " + base64.b64encode(raw).decode()
    assert header == sb.basic_auth_header()
    assert _get(sb, "/api/bulk/syncs", Authorization=header).status_code == 200
    auth = requests.auth.HTTPBasicAuth(sb.organization_id, sb.deployment_key)
    assert requests.get(sb.base_url + "/api/bulk/syncs", auth=auth, timeout=10).ok


@pytest.mark.parametrize(
    "header",
    [
        None,
        "Bearer wrong-key",
        "bearer",
        "Token abc",
        "Basic !!!not-base64",
        "Basic " + base64.b64encode(b"someone:else").decode(),
    ],
)
def test_bad_or_missing_credentials_get_a_401_api_error(sb: Sandbox, header: str | None) -> None:
    headers = {} if header is None else {"Authorization": header}
    response = _get(sb, f"/api/bulk/syncs/{sb.sync_ids()[0]}/executions", **headers)
    assert response.status_code == 401
    body = response.json()
    assert body["status"] == 401
    assert set(body) == {"status", "message", "key", "metadata"}
    assert sb.requests[-1].auth_ok is False


def test_the_legacy_401_body_shape_can_be_switched_on(sb: Sandbox) -> None:
    sb.configure(unauthorized_body="legacy")
    body = _get(sb, "/api/bulk/syncs", Authorization="Bearer nope").json()
    assert body["status"] == "Unauthorized"
    assert body["code"] == 401
    assert body["context"] == {}
    assert isinstance(body["error"], str)


def test_the_version_header_is_echoed_and_recorded(sb: Sandbox) -> None:
    bearer = f"Bearer {sb.api_key}"
    sent = _get(
        sb, "/api/bulk/syncs", Authorization=bearer, **{"X-Polytomic-Version": "2024-02-08"}
    )
    assert sent.headers["X-Polytomic-Version"] == "2024-02-08"
    assert sb.requests[-1].version_header == "2024-02-08"
    absent = _get(sb, "/api/bulk/syncs", Authorization=bearer)
    assert absent.headers["X-Polytomic-Version"] == "2025-09-18"
    assert sb.requests[-1].version_header is None


def test_every_response_carries_the_version_header_and_json_content_type(
    sb: Sandbox, client: Client
) -> None:
    sync_id = sb.sync_ids()[0]
    for path in (
        "/api/bulk/syncs",
        f"/api/bulk/syncs/{sync_id}",
        f"/api/bulk/syncs/{sync_id}/executions",
        f"/api/bulk/syncs/{sync_id}/executions/nope",
        "/api/unknown",
        "/_sandbox/stats",
    ):
        response = client.get(path)
        assert response.headers["X-Polytomic-Version"] == "2025-09-18"
        assert response.headers["Content-Type"] == "application/json"
        assert int(response.headers["Content-Length"]) == len(response.content)


def _assert_404(response: requests.Response) -> None:
    assert response.status_code == 404
    body = response.json()
    assert body["status"] == 404 and body["key"] == "not_found" and body["message"]


def test_unknown_sync_and_execution_are_404(sb: Sandbox, client: Client) -> None:
    sync_id = sb.sync_ids()[0]
    ghost = "00000000-0000-4000-8000-000000000000"
    _assert_404(client.get(f"/api/bulk/syncs/{ghost}"))
    _assert_404(client.get(f"/api/bulk/syncs/{ghost}/executions"))
    _assert_404(client.get(f"/api/bulk/syncs/{sync_id}/executions/{ghost}"))
    other_sync_exec = sb.execution_ids(sb.sync_ids()[1])[0]
    _assert_404(client.get(f"/api/bulk/syncs/{sync_id}/executions/{other_sync_exec}"))


def test_a_deleted_sync_and_its_executions_are_404_and_unlisted(
    sb: Sandbox, client: Client
) -> None:
    sync_id = sb.sync_ids()[0]
    exec_id = sb.execution_ids(sync_id)[0]
    sb.delete_sync(sync_id)
    _assert_404(client.get(f"/api/bulk/syncs/{sync_id}"))
    _assert_404(client.get(f"/api/bulk/syncs/{sync_id}/executions"))
    _assert_404(client.get(f"/api/bulk/syncs/{sync_id}/executions/{exec_id}"))
    assert sync_id not in {s["id"] for s in client.json("/api/bulk/syncs")["data"]}
    assert sync_id in sb.sync_ids(include_deleted=True)


def test_unknown_paths_are_404_and_writes_are_405(sb: Sandbox, client: Client) -> None:
    _assert_404(client.get("/api/bulk/nothing/here/at/all"))
    _assert_404(client.get("/"))
    response = client.http.post(f"{sb.base_url}/api/bulk/syncs", timeout=10)
    assert response.status_code == 405
    assert response.json()["status"] == 405


def test_a_bad_boolean_query_parameter_is_a_400(sb: Sandbox, client: Client) -> None:
    response = client.get(f"/api/bulk/syncs/{sb.sync_ids()[0]}/executions", ascending="maybe")
    assert response.status_code == 400
    ok = client.get(f"/api/bulk/syncs/{sb.sync_ids()[0]}/executions", ascending="1")
    assert ok.status_code == 200  # Go's ParseBool spellings are accepted
