"""The wire: the key never crosses a proxy or a redirect in clear text; a trickle times out.

A tiny recording server on loopback plays the HTTP proxy (or the other host of a redirect):
it notes every request line and header it receives and answers 502. The sandbox's `trickle`
fault sends a real answer one byte every half second, which a per-read timeout never ends.
"""

from __future__ import annotations

import http.server
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from pipelines.sandbox import Fault
from sources.polytomic.client import PolytomicClient
from sources.polytomic.errors import ApiError
from tests.conftest import assert_matches_truth
from tests.reliability.helpers import run_cli


class Recorder:
    """An HTTP server on 127.0.0.1 that records what reaches it and answers 502."""

    def __init__(self) -> None:
        self.seen: list[str] = []
        seen = self.seen

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                seen.append(f"{self.requestline}\n{self.headers}")
                self.send_response(502)
                self.send_header("Content-Length", "0")
                self.end_headers()

            do_CONNECT = do_POST = do_GET

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def recorder() -> Iterator[Recorder]:
    server = Recorder()
    yield server
    server.stop()


# -- proxies and redirects -----------------------------------------------------------------


def test_a_plain_http_loopback_api_is_reached_directly_so_a_proxy_never_sees_the_key(
    make_sandbox, make_etl, recorder, monkeypatch
):
    sb = make_sandbox(seed=301, syncs=2, executions=30)
    for name in ("HTTP_PROXY", "http_proxy"):
        monkeypatch.setenv(name, recorder.url)  # what the README recommends on-prem
    for name in ("NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    etl = make_etl(sb)
    code, _, err = etl.cli("run")
    assert recorder.seen == [], "the proxy received the request, Authorization header and all"
    assert code == 0, err
    assert_matches_truth(etl)


def test_a_redirect_to_another_host_is_refused_and_the_key_never_goes_there(
    make_sandbox, make_etl, recorder
):
    sb = make_sandbox(seed=302, syncs=1, executions=5)
    elsewhere = f"{recorder.url}/api/bulk/syncs"  # another origin: loopback, another port
    sb.inject(Fault("body", status=302, body=b"", headers={"Location": elsewhere}, times=None))
    etl = make_etl(sb)
    code, _, err = etl.cli("run")
    assert recorder.seen == []
    assert code == 2, err
    assert "redirects to another host" in err and sb.api_key not in err


def test_a_redirect_to_plain_http_off_loopback_is_refused_before_connecting(make_sandbox, make_etl):
    sb = make_sandbox(seed=303, syncs=1, executions=5)
    clear_text = "http://192.0.2.1/api/bulk/syncs"  # TEST-NET-1: nothing answers there
    sb.inject(Fault("body", status=301, body=b"", headers={"Location": clear_text}, times=None))
    etl = make_etl(sb, TIMEOUT_SECONDS="1", MAX_ATTEMPTS="1")
    started = time.monotonic()
    code, _, err = etl.cli("run")
    assert code == 2, err
    assert "refusing a redirect to http://192.0.2.1" in err
    assert time.monotonic() - started < 30


def test_a_redirect_within_the_origin_is_followed(make_sandbox, make_etl):
    sb = make_sandbox(seed=304, syncs=2, executions=30)
    sb.inject(
        Fault(
            "body",
            status=307,
            body=b"",
            headers={"Location": "/api/bulk/syncs"},
            kind_filter="list_syncs",
        )
    )
    etl = make_etl(sb)
    etl.run()
    assert_matches_truth(etl)
    assert [r.status for r in sb.requests if r.kind == "list_syncs"][:2] == [307, 200]


# -- a server that trickles its answer ------------------------------------------------------


def test_the_sandbox_trickle_fault_sends_the_real_answer_one_byte_at_a_time(make_sandbox):
    sb = make_sandbox(seed=309, syncs=1, executions=5)
    url, headers = f"{sb.base_url}/api/bulk/syncs", {"Authorization": f"Bearer {sb.api_key}"}
    whole = requests.get(url, headers=headers, timeout=10).content
    sb.inject(Fault("trickle", delay=0.001, kind_filter="list_syncs"))
    with requests.get(url, headers=headers, timeout=10, stream=True) as slow:
        pieces = list(iter(lambda: slow.raw.read1(1024), b""))  # whatever has arrived
    assert b"".join(pieces) == whole
    assert len(pieces) > len(whole) // 4  # arrived in many small reads, not one write
    assert sb.requests[-1].fault == "trickle" and sb.requests[-1].status == 200


def _give_up_time(sb: Any, attempts: int, timeout: float = 1.0) -> tuple[float, str]:
    """Seconds until list_syncs against a trickling server gives up (inf if it never does)."""
    client = PolytomicClient(
        sb.base_url,
        f"Bearer {sb.api_key}",
        timeout=timeout,
        max_attempts=attempts,
        backoff_factor=0.01,
    )
    outcome: dict[str, Any] = {}

    def call() -> None:
        started = time.monotonic()
        try:
            client.list_syncs()
            outcome["error"] = "no error"
        except ApiError as exc:
            outcome["error"] = str(exc)
        outcome["seconds"] = time.monotonic() - started

    worker = threading.Thread(target=call, daemon=True)
    worker.start()
    worker.join(timeout=60)  # the sandbox's stop ends a trickle still running after this
    return outcome.get("seconds", float("inf")), outcome.get("error", "still waiting")


def test_a_one_second_deadline_ends_a_trickling_request_within_ten_seconds(make_sandbox):
    sb = make_sandbox(seed=305, syncs=2, executions=5)
    sb.inject(Fault("trickle", delay=0.5, times=None, kind_filter="list_syncs"))
    seconds, error = _give_up_time(sb, attempts=1)
    assert seconds < 10, f"still trickling after {seconds:.1f}s against a 1s timeout"
    assert "within 1s" in error and "timeout" in error


def test_retries_of_a_trickling_server_stay_bounded_by_attempts_times_the_deadline(
    make_sandbox,
):
    sb = make_sandbox(seed=306, syncs=2, executions=5)
    sb.inject(Fault("trickle", delay=0.5, times=None, kind_filter="list_syncs"))
    seconds, _ = _give_up_time(sb, attempts=3)
    assert seconds < 3 * (1 + 1) + 10  # attempts x (deadline + back-off), and generous slack
    assert sb.count("list_syncs") == 3  # the timeout was retried like any other


def test_a_trickled_answer_is_retried_and_the_run_loads_everything(make_sandbox, make_etl):
    sb = make_sandbox(seed=307, syncs=2, executions=150)
    sb.inject(Fault("trickle", delay=0.5, times=1, kind_filter="list_executions"))
    etl = make_etl(sb, TIMEOUT_SECONDS="1")
    outcome = run_cli(etl, timeout=60)
    assert outcome.code == 0, outcome.err
    assert_matches_truth(etl)
    assert [r.fault for r in sb.requests].count("trickle") == 1


def test_a_server_that_always_trickles_fails_the_run_in_bounded_time_and_frees_the_lock(
    make_sandbox, make_etl
):
    sb = make_sandbox(seed=308, syncs=2, executions=30)
    sb.inject(Fault("trickle", delay=0.5, times=None))
    etl = make_etl(sb, TIMEOUT_SECONDS="1", MAX_ATTEMPTS="2")
    started = time.monotonic()
    failed = run_cli(etl, timeout=60)
    assert failed.code == 1, failed.err
    assert "within 1s" in failed.err
    assert time.monotonic() - started < 45
    sb.clear_faults()
    assert run_cli(etl).code == 0  # the next cron run is not locked out (exit 3)
    assert_matches_truth(etl)
