"""Request economy of an idle run, at every history length and page alignment (issue #12).

An idle run is a run right after one that loaded everything, with nothing new upstream. Its
list requests are the requests to `/api/bulk/syncs/{id}/executions`: the terminal walk
(`only_terminal=true&ascending=true`) and the default listing, counted from the sandbox's
request log.

* A sync with fewer than 90 executions inside the lookback window costs at most 2 list
  requests per idle run, whatever its history length, however its last page is filled, with
  keyset and offset page tokens alike.
* A denser sync costs at most `1 + ceil((W + 10) / 100) + floor(S / 100)`: W executions
  updated and S started inside the lookback window (10 is `RESUME_SLACK_ROWS`). So 2 more
  requests for each further 100 executions inside the window.
* New executions that arrive between runs are loaded, and the run after them is idle again.
"""

from __future__ import annotations

import math
from collections import Counter
from datetime import datetime, timedelta
from itertools import pairwise

import pytest

from pipelines.sandbox import Sandbox, SyncPlan
from tests.conftest import assert_matches_truth, ts

LOOKBACK = timedelta(seconds=600)  # the source's default lookback
SLACK = 10  # RESUME_SLACK_ROWS


def list_requests(sb: Sandbox) -> Counter[str]:
    """List requests per sync since the log was last reset."""
    return Counter(r.sync_id for r in sb.requests if r.kind == "list_executions")


def inside_window(sb: Sandbox, sync_id: str) -> tuple[int, int]:
    """(W, S): executions updated, and started, within the lookback of the newest."""
    rows = [e for e in sb.truth_executions() if e["bulk_sync_id"] == sync_id]
    updated = [ts(e["updated_at"]) for e in rows]
    started = [ts(e["started_at"] or e["created_at"]) for e in rows]
    newest_update, newest_start = max(updated), max(started)
    return (
        sum(u >= newest_update - LOOKBACK for u in updated),
        sum(s >= newest_start - LOOKBACK for s in started),
    )


def idle_bound(updated: int, started: int) -> int:
    return 1 + math.ceil((updated + SLACK) / 100) + started // 100


@pytest.mark.parametrize("token_style", ["keyset", "offset"])
def test_an_idle_sync_makes_at_most_two_list_requests_at_every_history_length(
    make_sandbox, make_etl, token_style
):
    lengths = range(1, 251)  # every alignment mod 100 (the page) and mod 10 (the slack)
    plans = [SyncPlan(executions=n, schemas=1, frequency="hourly") for n in lengths]
    sb = make_sandbox(seed=12, plans=plans, token_style=token_style)
    by_length = dict(zip(lengths, sb.sync_ids(), strict=True))
    # The premise: executions spaced wider than lookback / 90, so fewer than 90 in the window.
    stamps: dict[str, list[datetime]] = {}
    for e in sb.truth_executions():
        stamps.setdefault(e["bulk_sync_id"], []).append(ts(e["updated_at"]))
    for history in stamps.values():
        assert all(b - a > LOOKBACK / 90 for a, b in pairwise(sorted(history)))
    etl = make_etl(sb)
    etl.run()

    sb.reset_log()
    assert etl.run()["executions"] == 0
    per_sync = list_requests(sb)
    over = {n: per_sync[s] for n, s in by_length.items() if per_sync[s] > 2}
    assert not over, f"history length -> list requests: {over}"
    assert all(per_sync[s] >= 1 for s in by_length.values())
    assert_matches_truth(etl)


@pytest.mark.parametrize("token_style", ["keyset", "offset"])
def test_new_executions_are_loaded_and_the_next_run_is_idle_again(
    make_sandbox, make_etl, token_style
):
    lengths = (9, 11, 95, 100, 105, 111, 205)
    plans = [SyncPlan(executions=n, schemas=1, frequency="hourly") for n in lengths]
    sb = make_sandbox(seed=13, plans=plans, token_style=token_style)
    etl = make_etl(sb)
    etl.run()
    for new in (5, 95):  # hourly, like the history, so the window stays sparse
        for _ in range(new):
            sb.advance(3600)
            for sync_id in sb.sync_ids():
                sb.add_executions(sync_id, n=1)
        sb.reset_log()
        assert etl.run()["executions"] >= new * len(lengths)
        # A load pays for its new rows, plus at most one request that cuts the resume page
        # to size (the only request whose `limit` is not 100).
        assert max(list_requests(sb).values()) <= 3 + math.ceil(new / 100)
        cuts = Counter(r.sync_id for r in sb.requests if r.params.get("limit", "100") != "100")
        assert max(cuts.values(), default=0) <= 1
        for _ in range(2):  # idle, and idle again: the resume page stays where it was put
            sb.reset_log()
            assert etl.run()["executions"] == 0
            per_sync = list_requests(sb)
            assert max(per_sync.values()) <= 2, per_sync
    assert_matches_truth(etl)


def test_a_dense_sync_pays_two_more_requests_per_further_100_executions_in_the_window(
    make_sandbox, make_etl
):
    burst = (0, 79, 80, 81, 89, 90, 95, 150, 189, 190, 191, 290, 389)
    # No errors/interrupted runs: the default listing is read down to the horizon (its
    # costliest reading), since the server never shows what `only_terminal` includes.
    plans = [SyncPlan(executions=150, schemas=1, failure_rate=0.0) for _ in burst]
    sb = make_sandbox(seed=14, plans=plans)
    for sync_id, n in zip(sb.sync_ids(), burst, strict=True):
        if n:
            sb.add_executions(sync_id, n=n, duration=1)  # all inside the window
    etl = make_etl(sb)
    etl.run()
    sb.reset_log()
    etl.run()  # idle; past MAX_RECENT_IDS (200) ids in the window, the rest merge again
    per_sync = list_requests(sb)
    for sync_id, n in zip(sb.sync_ids(), burst, strict=True):
        updated, started = inside_window(sb, sync_id)
        assert updated >= n and started >= n
        assert per_sync[sync_id] <= idle_bound(updated, started), (n, updated, started)
        if max(updated, started) < 90:
            assert per_sync[sync_id] <= 2
    assert_matches_truth(etl)
