"""API faults: 429 storms, 5xx bursts past the retry budget, a server that never answers."""

from __future__ import annotations

import json
import math
import time
from email.utils import formatdate

import pytest

from pipelines.sandbox import Fault, SyncPlan
from tests.conftest import assert_matches_truth
from tests.reliability.helpers import (
    assert_state_not_ahead_of_data,
    destination_state,
    run_cli,
    sync_states,
    terminal_pages,
)

# -- 429 -----------------------------------------------------------------------------------


def test_a_429_storm_with_short_retry_after_is_honoured_by_every_worker_and_loses_nothing(
    make_sandbox, make_etl
):
    sb = make_sandbox(seed=91, syncs=3, executions=120)
    sb.inject(Fault("429", times=3, kind_filter="list_executions", retry_after=1))
    etl = make_etl(sb, MAX_ATTEMPTS="4", CONCURRENCY="3")
    summary = etl.run()
    assert summary["failed_syncs"] == []
    assert_matches_truth(etl)
    log = sb.requests
    limited = [r for r in log if r.status == 429]
    assert len(limited) == 3
    for hit in limited:
        # The same request is not repeated before its Retry-After has passed...
        again = [r for r in log if r.n > hit.n and r.path == hit.path and r.params == hit.params]
        assert again and again[0].at - hit.at >= 0.95, (hit.n, again[:1])
    first = min(limited, key=lambda r: r.at)
    # ...and the rate gate holds back the other workers too: no new request starts in the
    # pause except those already on the wire when the 429 arrived.
    in_pause = [r for r in log if first.at + 0.1 < r.at < first.at + 0.9]
    assert len(in_pause) <= 3, [(r.n, r.kind, r.status) for r in in_pause]


@pytest.mark.parametrize(
    ("cap", "retry_after"),
    [
        pytest.param("5", 3600, id="configured-cap-5s"),
        pytest.param(None, 301, id="default-cap", marks=pytest.mark.soak),
    ],
)
def test_a_retry_after_longer_than_the_cap_stops_the_run_at_once_with_a_clear_message(
    make_sandbox, make_etl, cap, retry_after
):
    sb = make_sandbox(seed=92, syncs=2, executions=150)
    sync_id = sb.sync_ids()[1]
    sb.inject(
        Fault(
            "429",
            times=None,
            kind_filter="list_executions",
            sync_id=sync_id,
            retry_after=retry_after,
        )
    )
    etl = make_etl(sb) if cap is None else make_etl(sb, MAX_RETRY_AFTER_SECONDS=cap)
    # A subprocess with a deadline far below the Retry-After: sleeping it out fails the test.
    outcome = run_cli(etl, timeout=60)
    lines = outcome.err.strip().splitlines()
    assert outcome.code == 1, outcome.err
    assert len(lines) == 1 and "Traceback" not in outcome.err, outcome.err
    assert f"{retry_after}s" in lines[0] and "Retry-After" in lines[0]
    assert "max_retry_after_seconds" in lines[0]
    assert sb.count(kind="list_executions", sync_id=sync_id) == 1  # no retry of that request
    assert_state_not_ahead_of_data(etl)
    sb.clear_faults()
    etl.run()
    assert_matches_truth(etl)


def test_a_retry_after_given_as_an_http_date_is_capped_too(make_sandbox, make_etl):
    sb = make_sandbox(seed=93, syncs=2, executions=20)
    bad = sb.sync_ids()[0]
    in_an_hour = formatdate(time.time() + 3600, usegmt=True)  # HTTP dates are wall time
    body = {"status": 429, "message": "rate limit exceeded", "key": "rate_limited"}
    sb.inject(
        Fault(
            "body",
            status=429,
            times=None,
            kind_filter="list_executions",
            sync_id=bad,
            body=body,
            headers={"Retry-After": in_an_hour},
        )
    )
    etl = make_etl(sb, MAX_RETRY_AFTER_SECONDS="1", MAX_ATTEMPTS="2")
    code, _, err = etl.cli("run")
    assert code == 1
    assert "Retry-After" in err and "max_retry_after_seconds" in err, err
    assert sb.count(kind="list_executions", sync_id=bad) == 1  # stopped, not slept and retried


# -- 5xx -----------------------------------------------------------------------------------


def test_a_5xx_burst_longer_than_the_retry_budget_keeps_checkpoints_and_the_next_run_continues(
    make_sandbox, make_etl
):
    sb = make_sandbox(seed=94, plans=[SyncPlan(executions=330), SyncPlan(executions=40)])
    bad, good = sb.sync_ids()
    pages = [p["data"] for p in terminal_pages(sb, bad)]
    started: list[int] = []

    def outage_from_the_fourth_request(sandbox, record):
        # the bad sync's requests: page 1, page 2 | checkpoint | page 2 again, page 3 ...
        if record.kind == "list_executions" and record.sync_id == bad:
            started.append(record.n)
            if len(started) == 4:
                sandbox.inject(Fault("500", times=None, kind_filter="list_executions", sync_id=bad))

    sb.add_hook(outage_from_the_fourth_request)
    etl = make_etl(sb, MAX_ATTEMPTS="2", CHECKPOINT_PAGES="2", CONCURRENCY="2")
    code, out, err = etl.cli("run", "--json")
    sb.clear_hooks()
    assert code == 1, err
    assert json.loads(out.strip().splitlines()[-1])["failed_syncs"] == [bad]
    assert err.strip().splitlines()[-1] == f"polytomic-etl: 1 sync(s) failed: {bad}"
    assert "Traceback" not in err
    assert sum(r.fault == "500" for r in sb.requests) == 2  # retried once, then given up
    assert_matches_truth(etl, sync_ids={good})

    # Checkpointed progress is kept, as whole pages: the loaded rows are exactly pages 1..k.
    loaded = {i for i, r in etl.executions().items() if r["bulk_sync_id"] == bad}
    k = next(n for n in range(len(pages) + 1) if {r["id"] for p in pages[:n] for r in p} >= loaded)
    assert k >= 2 and loaded == {r["id"] for p in pages[:k] for r in p}
    cursor = sync_states(destination_state(etl))[bad]["cursor"]
    assert cursor is not None
    assert_state_not_ahead_of_data(etl)

    sb.clear_faults()
    sb.reset_log()
    etl.run()
    assert_matches_truth(etl)
    # It continued from its checkpoint: the terminal walk never went back to page one.
    assert sb.count(kind="list_executions", sync_id=bad, only_terminal=True, page_token=None) == 0
    # The remaining pages, one overlap page per checkpoint, and the default listing, which a
    # first load reads whole until the API shows what `only_terminal` holds (listing.py).
    remaining = len(pages) - k
    budget = remaining + math.ceil(remaining / 2) + math.ceil(330 / 100)
    assert sb.count(kind="list_executions", sync_id=bad) <= budget


# -- a server that never answers ------------------------------------------------------------


def test_a_hanging_server_times_out_is_retried_then_fails_cleanly_and_the_next_run_recovers(
    make_sandbox, make_etl
):
    sb = make_sandbox(seed=95, syncs=2, executions=120)
    bad = sb.sync_ids()[0]
    sb.inject(Fault("hang", times=None, kind_filter="list_executions", sync_id=bad, delay=4))
    etl = make_etl(sb, TIMEOUT_SECONDS="1", MAX_ATTEMPTS="2")
    code, out, err = etl.cli("run", "--json")
    assert code == 1, err
    assert json.loads(out.strip().splitlines()[-1])["failed_syncs"] == [bad]
    assert err.strip().splitlines()[-1] == f"polytomic-etl: 1 sync(s) failed: {bad}"
    assert "timed out" in err
    assert sum(r.fault == "hang" for r in sb.requests) == 2  # one retry, then it gave up
    others = set(sb.sync_ids()) - {bad}
    assert_matches_truth(etl, sync_ids=others)
    sb.clear_faults()
    etl.run()
    assert_matches_truth(etl)


@pytest.mark.parametrize("kind", [pytest.param("hang", marks=pytest.mark.soak), "reset"])
def test_a_transport_error_left_after_retries_is_reported_without_a_traceback(
    make_sandbox, make_etl, kind
):
    sb = make_sandbox(seed=96, syncs=2, executions=5)
    bad = sb.sync_ids()[0]
    sb.inject(Fault(kind, times=None, kind_filter="list_executions", sync_id=bad, delay=2))
    etl = make_etl(sb, TIMEOUT_SECONDS="0.5", MAX_ATTEMPTS="1")
    code, _, err = etl.cli("run")
    assert code == 1
    assert "Traceback" not in err, err
    lines = err.strip().splitlines()
    assert len(lines) == 2 and lines[-1] == f"polytomic-etl: 1 sync(s) failed: {bad}", err


def test_a_first_run_in_which_every_sync_fails_still_reports_the_failed_syncs(
    make_sandbox, make_etl
):
    sb = make_sandbox(seed=97, syncs=1, executions=5)
    bad = sb.sync_ids()[0]
    sb.inject(Fault("500", times=None, kind_filter="list_executions"))
    etl = make_etl(sb, MAX_ATTEMPTS="1")
    code, out, err = etl.cli("run", "--json")
    assert code == 1
    assert err.strip().splitlines()[-1] == f"polytomic-etl: 1 sync(s) failed: {bad}", err
    assert json.loads(out.strip().splitlines()[-1])["failed_syncs"] == [bad]
