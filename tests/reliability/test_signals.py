"""SIGTERM and Ctrl-C (what cron, systemd and Kubernetes send) stop a run cleanly.

The CLI runs as a real subprocess; the signal comes from the sandbox (on the n-th API
request: the API walk), from the disk (as soon as a load package has jobs: the load step), or
from a timer (during a long `Retry-After`). In each case the run stops at the next load
boundary with exit 5 and one line on stderr, leaves no pending package and no lock, and the
next run ends equal to the sandbox truth.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from pipelines.sandbox import Fault
from tests.conftest import assert_matches_truth
from tests.reliability.helpers import (
    assert_state_not_ahead_of_data,
    finish,
    pending_packages,
    pipeline_dir,
    spawn,
)

EXIT_INTERRUPTED = 5


class Signaller:
    """Sends `sig` to the CLI process when the sandbox sees its `at`-th API request."""

    def __init__(self, sb: Any, sig: int, at: int) -> None:
        self.sig, self.at = sig, at
        self.proc: Any = None
        self.seen = 0
        self.sent_at: int | None = None  # the sandbox's request count when it was sent
        self._lock = threading.Lock()
        sb.add_hook(self._hook)

    def _hook(self, sb: Any, record: Any) -> None:
        with self._lock:
            if self.proc is None or self.sent_at is not None:
                return
            self.seen += 1
            if self.seen == self.at:
                os.kill(self.proc.pid, self.sig)
                self.sent_at = len(sb.requests)


def _signal_when_loading(proc: Any, working_dir: Path, sig: int) -> threading.Event:
    """Send `sig` as soon as a normalized package has a job started or completed."""
    sent = threading.Event()

    def watch() -> None:
        while proc.poll() is None:
            for package in working_dir.glob("load/normalized/*"):
                jobs = [package / "started_jobs", package / "completed_jobs"]
                if any(d.is_dir() and any(d.iterdir()) for d in jobs):
                    os.kill(proc.pid, sig)
                    sent.set()
                    return
            time.sleep(0.002)

    threading.Thread(target=watch, daemon=True).start()
    return sent


def _assert_stopped_cleanly(outcome: Any, signal_name: str) -> dict[str, Any]:
    assert outcome.code == EXIT_INTERRUPTED, (outcome.code, outcome.err)
    lines = [line for line in outcome.err.splitlines() if line.strip()]
    assert len(lines) == 1, outcome.err
    assert signal_name in lines[0] and "the next run continues" in lines[0], lines[0]
    summary = outcome.summary
    assert summary is not None and summary["ok"] is False
    where = f"after load {summary['loads']}" if summary["loads"] else "before its first load"
    assert where in lines[0], lines[0]
    return summary


def _next_run_completes(etl: Any) -> None:
    assert pending_packages(etl) == []
    assert_state_not_ahead_of_data(etl)
    code, _, err = etl.cli("run")  # the lock was released: not exit 3
    assert code == 0, err
    assert_matches_truth(etl)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_signal_during_the_api_walk_stops_it_within_a_few_requests_with_exit_5(
    make_sandbox, make_etl, sig
):
    sb = make_sandbox(seed=321, syncs=4, executions=2000)
    sb.configure(latency_ms=20)
    etl = make_etl(sb)
    signaller = Signaller(sb, sig, at=12)
    proc = spawn(etl)
    signaller.proc = proc
    outcome = finish(proc)
    assert signaller.sent_at is not None, "the run ended before the signal"
    _assert_stopped_cleanly(outcome, signal.Signals(sig).name)
    after = len(sb.requests) - signaller.sent_at
    assert after <= 8, f"{after} requests after the signal: the walk went on"  # those in flight
    sb.configure(latency_ms=0)
    _next_run_completes(etl)


def test_a_sigterm_during_a_load_finishes_that_load_and_stops_before_the_next(
    make_sandbox, make_etl
):
    sb = make_sandbox(seed=322, syncs=2, executions=600)
    etl = make_etl(sb, CHECKPOINT_PAGES="1")  # one page per sync per load: several loads
    proc = spawn(etl)
    sent = _signal_when_loading(proc, pipeline_dir(etl), signal.SIGTERM)
    outcome = finish(proc)
    assert sent.is_set(), "no load was seen"
    summary = _assert_stopped_cleanly(outcome, "SIGTERM")
    assert 1 <= summary["loads"] < 6  # the load in progress completed; the rest did not start
    _next_run_completes(etl)


def test_a_sigterm_during_a_long_retry_after_ends_the_wait_at_once(make_sandbox, make_etl):
    sb = make_sandbox(seed=323, syncs=2, executions=150)
    sb.inject(Fault("429", times=None, kind_filter="list_executions", retry_after=120))
    etl = make_etl(sb)  # max_retry_after_seconds stays at its default of 300
    signalled: list[float] = []
    proc = spawn(etl)

    def hook(sb: Any, record: Any) -> None:
        if record.kind == "list_executions" and not signalled:  # answered by a 429
            signalled.append(time.monotonic())
            threading.Timer(0.5, os.kill, (proc.pid, signal.SIGTERM)).start()

    sb.add_hook(hook)
    outcome = finish(proc, timeout=100)
    assert signalled, "no executions request was made"
    assert time.monotonic() - signalled[0] < 30, "the run slept through the Retry-After"
    _assert_stopped_cleanly(outcome, "SIGTERM")
    sb.clear_faults()
    _next_run_completes(etl)
