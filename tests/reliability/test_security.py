"""The API key never leaks: not in output, logs, traces, load packages, state or warehouse."""

from __future__ import annotations

import base64
import http.server
import ssl
import subprocess
import threading
from pathlib import Path

import pytest

from pipelines.sandbox import Fault
from tests.conftest import assert_matches_truth
from tests.reliability.helpers import (
    files_containing,
    pipeline_dir,
    readable_bytes,
    run_cli,
    warehouse_text,
)

REPO = Path(__file__).resolve().parents[2]


def leaks(secret: str, text: str, window: int = 8) -> bool:
    """Any 8-character piece of the secret: a truncated echo leaks a prefix."""
    return any(secret[i : i + window] in text for i in range(len(secret) - window + 1))


def _credentials(sb, mode):
    if mode == "api_key":
        return {"API_KEY": sb.api_key}, [sb.api_key]
    basic = base64.b64encode(f"{sb.organization_id}:{sb.deployment_key}".encode()).decode()
    env = {
        "API_KEY": "",
        "DEPLOYMENT_KEY": sb.deployment_key,
        "ORGANIZATION_ID": sb.organization_id,
    }
    return env, [sb.deployment_key, basic]


@pytest.mark.parametrize("mode", ["api_key", "deployment_key"])
def test_no_credential_appears_in_output_working_dir_packages_traces_or_warehouse(
    make_sandbox, make_etl, mode
):
    sb = make_sandbox(seed=111, syncs=3, executions=40)
    env, secrets = _credentials(sb, mode)
    failing = sb.sync_ids()[2]
    # One sync fails with an error body that echoes the credential in header and JSON
    # forms, so the error path (messages, logs, trace, exception files) is covered too.
    scheme = "Bearer" if mode == "api_key" else "Basic"
    echo = {"status": 500, "message": f"upstream said Authorization: {scheme} {secrets[-1]}"}
    sb.inject(
        Fault(
            "body",
            status=500,
            times=None,
            sync_id=failing,
            body=echo,
            kind_filter="list_executions",
        )
    )
    etl = make_etl(sb, MAX_ATTEMPTS="1", **env)
    outcome = run_cli(etl, "--verbose")
    assert outcome.code == 1, outcome.err
    assert "Traceback" in outcome.err  # --verbose printed the full error chain too
    assert_matches_truth(etl, sync_ids=set(sb.sync_ids()) - {failing})
    assert all(r.auth_ok for r in sb.requests)

    for secret in secrets:
        assert not leaks(secret, outcome.out + outcome.err), "credential in CLI output"
    assert files_containing(etl.tmp / "pl", secrets) == []  # state, packages, trace, lock
    warehouse = readable_bytes(etl.db_path).decode("latin-1") + warehouse_text(etl.db_path)
    for secret in secrets:
        assert secret not in warehouse
    looked_at = [p for p in pipeline_dir(etl).rglob("*") if p.is_file()]
    assert any(p.name == "trace.pickle" for p in looked_at)
    assert any(p.suffix == ".parquet" for p in looked_at)  # the load packages were kept


def test_echoed_error_bodies_are_truncated_and_redacted(make_sandbox, make_etl):
    sb = make_sandbox(seed=112, syncs=3, executions=5)
    key = sb.api_key
    bodies = [
        {"status": 500, "message": f"bad request for key {key}: " + "x" * 400},
        {"status": 500, "message": 'refused {"token": "tok-9f8e7d6c5b4a", "id": 1}'},
        f"<html><body>upstream 500 for Bearer {key} api_key={key}</body></html>",
    ]
    for sync_id, body in zip(sb.sync_ids(), bodies, strict=True):
        sb.inject(
            Fault(
                "body",
                status=500,
                times=None,
                kind_filter="list_executions",
                sync_id=sync_id,
                body=body,
            )
        )
    etl = make_etl(sb, MAX_ATTEMPTS="1")
    code, out, err = etl.cli("run")
    assert code == 1
    assert not leaks(key, out + err)
    assert "tok-9f8e7d6c5b4a" not in out + err
    messages = [line for line in err.splitlines() if "HTTP 500" in line]
    assert len(messages) == 3
    assert all(len(line) < 400 for line in messages)


def test_a_key_cut_by_the_truncation_of_an_echoed_body_leaks_no_prefix(make_sandbox, make_etl):
    sb = make_sandbox(seed=115, syncs=2, executions=5)
    body = {"detail": "d" * 170 + sb.api_key}
    sb.inject(
        Fault(
            "body",
            status=500,
            times=None,
            kind_filter="list_executions",
            body=body,
            sync_id=sb.sync_ids()[0],
        )
    )
    etl = make_etl(sb, MAX_ATTEMPTS="1")
    code, out, err = etl.cli("run")
    assert code == 1
    assert not leaks(sb.api_key, out + err)


def test_an_error_body_echoing_the_raw_deployment_key_is_redacted(make_sandbox, make_etl):
    sb = make_sandbox(seed=113, syncs=2, executions=5)
    echo = {"status": 500, "message": f"deployment {sb.deployment_key} is not enabled here"}
    sb.inject(
        Fault(
            "body",
            status=500,
            times=None,
            kind_filter="list_executions",
            body=echo,
            sync_id=sb.sync_ids()[0],
        )
    )
    etl = make_etl(
        sb,
        MAX_ATTEMPTS="1",
        API_KEY="",
        DEPLOYMENT_KEY=sb.deployment_key,
        ORGANIZATION_ID=sb.organization_id,
    )
    code, out, err = etl.cli("run")
    assert code == 1
    assert not leaks(sb.deployment_key, out + err)


def test_the_secrets_file_is_git_ignored_and_the_example_is_not():
    ignored = subprocess.run(
        ["git", "check-ignore", "-q", ".dlt/secrets.toml"], cwd=REPO, check=False
    )
    assert ignored.returncode == 0, ".dlt/secrets.toml is not git-ignored"
    example = subprocess.run(
        ["git", "check-ignore", "-q", ".dlt/secrets.toml.example"], cwd=REPO, check=False
    )
    assert example.returncode == 1
    tracked = subprocess.run(
        ["git", "ls-files", ".dlt"], cwd=REPO, capture_output=True, text=True, check=True
    )
    assert "secrets.toml\n" not in tracked.stdout + "\n"


def test_tls_certificates_are_verified_a_self_signed_server_is_refused(
    make_sandbox, make_etl, tmp_path
):
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
    )
    served: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            served.append(self.path)
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b'{"data": []}')

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        sb = make_sandbox(seed=114, syncs=1, executions=5)
        url = f"https://127.0.0.1:{server.server_address[1]}"
        etl = make_etl(sb, BASE_URL=url, MAX_ATTEMPTS="1")
        code, _, err = etl.cli("run")
    finally:
        server.shutdown()
    assert code != 0
    assert "certificate" in err.lower() or "ssl" in err.lower(), err
    assert served == []  # no request got through the failed handshake
