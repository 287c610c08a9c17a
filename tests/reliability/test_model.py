"""A model of the whole product, checked against the sandbox: stateful property-based testing.

Hypothesis drives a `RuleBasedStateMachine` whose rules interleave changes on the API side
(new, in-flight, re-updated, deleted and clock-skewed executions; token style, terminal
filter and list shape switches; one-shot 400/404/410 answers; syncs deleted, restored and
added; the clock; a change made in the middle of the next walk) with what an operator does
(runs, runs SIGKILLed at an API request, backfill windows, `backfill --full` of a shard or
one sync, runs of one shard into the same warehouse).

The invariant (the rule `check`; also forced after `check_every` steps without one, and run
at teardown): with faults and hooks cleared, ONE plain run with verification covering
everything exits 0, and then

* every execution of every live sync is in the warehouse exactly as the API serves it
  (status, counts, timestamps, schema rows, in-flight rows current, no duplicate ids);
* no live execution carries `deleted_at`; an execution deleted upstream before the
  previous check carries it by now (if its row is still there and its sync stayed listed);
* the per-sync state stays under 32 KB, whatever the history length or number of runs.

Operator actions exit 0; with a fault armed they may exit 1; never anything else and never
with a traceback.

`make test` runs a short derandomized variant (4 examples x 12 steps, no shrinking); `make
soak` a long one with a fixed seed (MODEL_SOAK_EXAMPLES x MODEL_SOAK_STEPS, default 40 x 30,
seed MODEL_SOAK_SEED) that shrinks a failure; both print what they explored (`-s`). Runs
walk one sync at a time so that a failing sequence replays the same API requests.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import os
import shutil
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, note, seed, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    get_state_machine_test,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from pipelines.sandbox import Fault, Sandbox, SandboxConflict
from tests.conftest import PINNED_NOW, Etl, assert_matches_truth
from tests.reliability.helpers import Killer, finish, spawn, sync_states

VERIFY = "SOURCES__POLYTOMIC__VERIFY_PAGES_PER_RUN"
VERIFY_EVERYTHING = 1_000_000
STATE_LIMIT_BYTES = 32 * 1024
MAX_SYNCS = 5  # deleted ones included: keeps a run near one second

TERMINAL = ("completed", "failed", "canceled", "errors", "interrupted")
IN_FLIGHT = ("running", "exporting", "processing", "canceling", "created", "scheduled")
TOKEN_FAILURES = (400, 404, 410)

# The sandbox's HTTP server prints connection resets (a killed client's sockets) to whatever
# sys.stderr is at the time, which may be an in-process run's captured stderr: not the CLI's.
_SERVER_FRAMES = ("socketserver.py", "http/server.py")
# One worker per run: the order of API requests (and so a kill at the n-th one, or which
# request a one-shot fault hits) repeats, so hypothesis can replay and shrink a failure.
SERIAL = {
    "SOURCES__POLYTOMIC__CONCURRENCY": "1",
    "SOURCES__POLYTOMIC__HYDRATION_CONCURRENCY": "1",
}

# What the model explored, across the examples of one test (printed with -s).
STATS: Counter[str] = Counter()

sync_index = st.integers(0, 7)  # taken modulo the live syncs at the time of the step
terminal = st.sampled_from(TERMINAL)


def _step(fn: Callable[..., None]) -> Callable[..., None]:
    """Count the step, and remember whether it finished (teardown checks only clean states)."""

    @functools.wraps(fn)
    def wrapper(self: ModelMachine, *args: Any, **kwargs: Any) -> None:
        self.clean = False
        self.steps += 1
        STATS["steps"] += 1
        STATS[f"rule {fn.__name__}"] += 1
        self.since_check += 1
        fn(self, *args, **kwargs)
        self.clean = True

    return wrapper


def _api_error(status: int, message: str) -> dict[str, Any]:
    return {"status": status, "message": message, "key": "x", "metadata": {}}


@dataclasses.dataclass
class MidWalk:
    """One-shot: on the k-th `list_executions` request about `sync_id`, change an old row."""

    sync_id: str
    k: int
    action: str  # "reupdate" or "delete"
    pick: int
    seen: int = 0
    fired: bool = False
    outcome: str = ""

    def on_request(self, sb: Sandbox, record: Any) -> None:
        if self.fired or record.kind != "list_executions" or record.sync_id != self.sync_id:
            return
        self.seen += 1
        if self.seen < self.k:
            return
        self.fired = True
        try:
            done = [
                e["id"]
                for e in sb.truth_executions()
                if e["bulk_sync_id"] == self.sync_id and e["status"] in TERMINAL
            ]
            if not done:
                self.outcome = "no terminal execution to change"
                return
            victim = done[self.pick % min(len(done), 40)]  # among the oldest
            if self.action == "delete":
                sb.delete_execution(self.sync_id, victim)
            else:
                sb.reupdate(self.sync_id, victim, keep_schemas=1)
            self.outcome = f"{self.action} {victim} at request {record.n}"
        except Exception as exc:  # the sync went away meanwhile: nothing to change
            self.outcome = f"skipped ({type(exc).__name__}: {exc})"


class ModelMachine(RuleBasedStateMachine):
    check_every = 6  # a check is forced after this many steps without one

    def __init__(self) -> None:
        super().__init__()
        self.sb: Sandbox | None = None
        self.etl: Etl | None = None
        self.tmp: Path | None = None
        self.killer: Killer | None = None
        self.faults: list[Fault] = []
        self.hooks: list[MidWalk] = []
        self.hooks_lock = threading.Lock()
        self.since_check = 0
        self.steps = 0
        self.clean = True
        # Deletions known at the previous check, the syncs listed then, and the syncs deleted
        # or restored since (their per-sync state may have been forgotten meanwhile).
        self.deleted_at_last_check: set[str] = set()
        self.live_at_last_check: set[str] = set()
        self.touched_since_check: set[str] = set()

    # -- set-up and teardown ---------------------------------------------------------------

    @initialize(
        sandbox_seed=st.integers(0, 10_000),
        token_style=st.sampled_from(("keyset", "offset")),
        executions=st.sampled_from((150, 120)),
        # A small row budget splits every walk into loads of a page or two, taken in turns.
        max_rows=st.sampled_from((50_000, 50_000, 700)),
    )
    def start(self, sandbox_seed: int, token_style: str, executions: int, max_rows: int) -> None:
        STATS["examples"] += 1
        self.tmp = Path(tempfile.mkdtemp(prefix="polytomic-model-"))
        sb = Sandbox(
            seed=sandbox_seed,
            syncs=3,
            executions=executions,
            now=PINNED_NOW,
            token_style=token_style,
        )
        self.sb = sb.start()
        self.etl = Etl(
            sandbox=sb,
            tmp=self.tmp,
            db_path=self.tmp / "wh.duckdb",
            extra_env={**SERIAL, "SOURCES__POLYTOMIC__MAX_ROWS_PER_LOAD": str(max_rows)},
        )
        self.killer = Killer(sb, pipeline_root=self.tmp / "pl")
        sb.add_hook(self._dispatch)
        note(
            f"sandbox seed={sandbox_seed} token_style={token_style} max_rows={max_rows} "
            f"syncs={sb.sync_ids()}"
        )

    def teardown(self) -> None:
        try:
            # An example hypothesis gave up on before its first step checks nothing new.
            if self.sb is not None and self.clean and self.steps:
                self._check("teardown")
        finally:
            if self.sb is not None:
                self.sb.stop()
            if self.tmp is not None:
                shutil.rmtree(self.tmp, ignore_errors=True)

    # -- helpers ---------------------------------------------------------------------------

    @property
    def api(self) -> Sandbox:
        assert self.sb is not None
        return self.sb

    @property
    def wh(self) -> Etl:
        assert self.etl is not None
        return self.etl

    def _dispatch(self, sb: Sandbox, record: Any) -> None:
        with self.hooks_lock:
            hooks = list(self.hooks)
        for hook in hooks:
            hook.on_request(sb, record)

    def _live(self, index: int) -> str | None:
        ids = self.api.sync_ids()
        return ids[index % len(ids)] if ids else None

    def _faults_on(self) -> bool:
        return any(not f.exhausted() for f in self.faults)

    def _report_hooks(self) -> None:
        with self.hooks_lock:
            fired = [h for h in self.hooks if h.fired]
            self.hooks = [h for h in self.hooks if not h.fired]
        for hook in fired:
            STATS["mid-walk changes made"] += hook.outcome.startswith(hook.action)
            note(f"  mid-walk hook on {hook.sync_id}: {hook.outcome}")

    def _cli(self, *args: str, verify: int = 0) -> tuple[int, str, str]:
        etl = dataclasses.replace(self.wh, extra_env={**self.wh.extra_env, VERIFY: str(verify)})
        return etl.cli(*args)

    def _operator(self, what: str, *args: str, verify: int = 0) -> None:
        """One in-process CLI call; exit 0, or 1 while a fault is armed; no traceback."""
        faults_on = self._faults_on()
        started = time.monotonic()
        code, _, err = self._cli(*args, verify=verify)
        STATS["operator_seconds"] += time.monotonic() - started
        self._report_hooks()
        STATS["operator_runs"] += 1
        STATS[f"exit_{code}"] += 1
        note(f"  {what}: exit {code}" + (f" ({_last_line(err)})" if code else ""))
        _assert_exit(what, code, err, faults_on)

    def _state_sizes(self) -> dict[str, int]:
        """JSON size of each sync's state, in every pipeline (main and shards) of this warehouse."""
        assert self.tmp is not None
        sizes: dict[str, int] = {}
        for path in sorted((self.tmp / "pl").glob("*/state.json")):
            state = json.loads(path.read_text())
            for sync_id, value in sync_states(state).items():
                key = f"{path.parent.name}:{sync_id}"
                sizes[key] = len(json.dumps(value, separators=(",", ":")).encode())
        return sizes

    def _check(self, why: str) -> None:
        self.clean = False
        sb, etl = self.api, self.wh
        STATS["checks"] += 1
        STATS["faults fired"] += sum(f.fired for f in self.faults)
        sb.clear_faults()
        self.faults.clear()
        with self.hooks_lock:
            self.hooks.clear()
        started = time.monotonic()
        code, out, err = self._cli("run", "--json", verify=VERIFY_EVERYTHING)
        note(f"  check ({why}): exit {code}" + (f" ({_last_line(err)})" if code else ""))
        assert not _traceback(err), f"the check run printed a traceback:\n{err[-3000:]}"
        assert code == 0, f"the check run failed, exit {code}: {err[-3000:]}"
        summary = json.loads(out.strip().splitlines()[-1])
        assert summary["failed_syncs"] == [], summary

        live = set(sb.sync_ids())
        deleted = sb.deleted_execution_ids()
        assert_matches_truth(etl, sync_ids=live, exclude=deleted)

        loaded = etl.executions()
        truth = {e["id"] for e in sb.truth_executions()}
        marked = sorted(i for i in truth if loaded[i].get("deleted_at") is not None)
        assert not marked, f"executions the API still serves are marked deleted: {marked[:5]}"
        stable = (self.live_at_last_check & live) - self.touched_since_check
        unmarked = sorted(
            i
            for i in self.deleted_at_last_check
            if i in loaded
            and loaded[i]["bulk_sync_id"] in stable
            and loaded[i].get("deleted_at") is None
        )
        STATS["deletions checked"] += sum(
            1
            for i in self.deleted_at_last_check
            if i in loaded and loaded[i]["bulk_sync_id"] in stable
        )
        assert not unmarked, (
            f"executions deleted upstream before the previous check still lack deleted_at: "
            f"{unmarked[:5]}"
        )

        sizes = self._state_sizes()
        too_big = {k: v for k, v in sizes.items() if v > STATE_LIMIT_BYTES}
        assert not too_big, f"per-sync state over {STATE_LIMIT_BYTES} bytes: {too_big}"
        STATS["max_state_bytes"] = max(STATS["max_state_bytes"], *sizes.values(), 0)

        STATS["check_seconds"] += time.monotonic() - started
        self.deleted_at_last_check = deleted
        self.live_at_last_check = live
        self.touched_since_check = set()
        self.since_check = 0
        self.clean = True

    # -- the invariant -------------------------------------------------------------------

    @precondition(lambda self: self.since_check > 0)  # a check right after one adds nothing
    @rule()
    def check(self) -> None:
        """Verification-forced run, then the warehouse equals the truth."""
        self.steps += 1
        STATS["steps"] += 1
        STATS["rule check"] += 1
        self._check("rule")

    @invariant()
    def periodic_check(self) -> None:
        if self.sb is not None and self.since_check >= self.check_every:
            self._check(f"forced after {self.check_every} steps")

    # -- API changes -----------------------------------------------------------------------

    @rule()
    @_step
    def add_execution(self) -> None:
        """One completed execution on the first live sync. Hypothesis's first (simplest)
        example repeats the first rule in its order, which is this cheap one."""
        sync_id = self._live(0)
        if sync_id is not None:
            note(f"  {sync_id}: +1 completed ({self.api.add_executions(sync_id)[0]})")

    @rule(sync=sync_index, n=st.sampled_from((1, 3, 20, 120)), status=terminal)
    @_step
    def add_executions(self, sync: int, n: int, status: str) -> None:
        sync_id = self._live(sync)
        if sync_id is not None:
            ids = self.api.add_executions(sync_id, n=n, status=status)
            note(f"  {sync_id}: +{n} {status} (last {ids[-1]})")

    @rule(sync=sync_index, status=st.sampled_from(IN_FLIGHT))
    @_step
    def start_inflight(self, sync: int, status: str) -> None:
        sync_id = self._live(sync)
        if sync_id is None:
            return
        try:
            exec_id = self.api.start_execution(sync_id, status=status)
        except SandboxConflict:
            note(f"  {sync_id}: already running; {status} not started")
            return
        note(f"  {sync_id}: started {exec_id} ({status})")

    @rule(sync=st.none() | sync_index, status=terminal)
    @_step
    def finish_inflight(self, sync: int | None, status: str) -> None:
        sync_id = None if sync is None else self._live(sync)
        if sync is not None and sync_id is None:
            return
        done = self.api.finish_inflight(sync_id, status=status)
        note(f"  finished {len(done)} in-flight as {status}: {done}")

    @rule(sync=sync_index, keep=st.integers(1, 3))
    @_step
    def reupdate_old(self, sync: int, keep: int) -> None:
        sync_id = self._live(sync)
        if sync_id is None:
            return
        try:
            exec_id = self.api.reupdate(sync_id, keep_schemas=keep)
        except KeyError:  # no terminal execution yet (a new sync)
            return
        note(f"  {sync_id}: re-updated {exec_id}")

    @rule(sync=sync_index, pick=st.integers(0, 400))
    @_step
    def delete_execution(self, sync: int, pick: int) -> None:
        sync_id = self._live(sync)
        if sync_id is None:
            return
        ids = self.api.execution_ids(sync_id)
        if ids:
            victim = ids[pick % len(ids)]
            self.api.delete_execution(sync_id, victim)
            note(f"  {sync_id}: deleted {victim}")

    @rule(sync=sync_index, ahead=st.integers(60, 7200), status=terminal)
    @_step
    def add_skewed(self, sync: int, ahead: int, status: str) -> None:
        sync_id = self._live(sync)
        if sync_id is not None:
            exec_id = self.api.add_skewed(sync_id, ahead_seconds=ahead, status=status)
            note(f"  {sync_id}: skewed {exec_id} +{ahead}s")

    @rule(style=st.sampled_from(("keyset", "offset")))
    @_step
    def switch_token_style(self, style: str) -> None:
        self.api.configure(token_style=style)

    @rule(mode=st.sampled_from(("documented", "default")))
    @_step
    def switch_terminal_filter(self, mode: str) -> None:
        self.api.configure(terminal_statuses=mode)

    @rule(included=st.booleans())
    @_step
    def switch_list_schemas(self, included: bool) -> None:
        self.api.configure(list_includes_schemas=included)

    # Trust part 2: the rules for its items 1, 2, 4 and 7.

    @rule(sync=sync_index, value=st.sampled_from((7, "high", {"level": 2}, [1], True, None)))
    @_step
    def add_with_a_field_of_varying_type(self, sync: int, value: Any) -> None:
        sync_id = self._live(sync)
        if sync_id is not None:
            extra = {"priority": value, "recordCount": "many"}
            self.api.add_executions(sync_id, n=2, extra_fields=extra)
            note(f"  {sync_id}: +2 with priority={value!r} and a colliding recordCount")

    @rule(mid=st.sampled_from((0, 0, 1, 2)), tail=st.sampled_from(("off", "off", "fresh", "same")))
    @_step
    def switch_empty_pages(self, mid: int, tail: str) -> None:
        self.api.configure(mid_empty_pages=mid, endless_empty=tail)

    @rule(sync=sync_index, status=st.sampled_from(IN_FLIGHT))
    @_step
    def delete_an_inflight_execution(self, sync: int, status: str) -> None:
        sync_id = self._live(sync)
        if sync_id is None:
            return
        try:
            exec_id = self.api.start_execution(sync_id, status=status)
        except SandboxConflict:
            return
        self.api.delete_execution(sync_id, exec_id)
        note(f"  {sync_id}: started and deleted {exec_id} ({status})")

    @rule(case=st.sampled_from(("lower", "upper")))
    @_step
    def switch_sync_id_case(self, case: str) -> None:
        self.api.configure(sync_id_case=case)

    @rule(sync=sync_index, status=st.sampled_from(TOKEN_FAILURES))
    @_step
    def fail_next_token_page(self, sync: int, status: int) -> None:
        """The next list request of this sync that carries a page token gets `status`, once."""
        sync_id = self._live(sync)
        fault = Fault(
            "body",
            status=status,
            body=_api_error(status, "page token expired"),
            kind_filter="list_executions",
            sync_id=sync_id,
            with_token=True,
            times=1,
        )
        self.faults.append(self.api.inject(fault))

    @rule(sync=sync_index, status=st.sampled_from(TOKEN_FAILURES))
    @_step
    def fail_next_detail(self, sync: int, status: int) -> None:
        """The next execution detail request of this sync gets `status`, once."""
        sync_id = self._live(sync)
        fault = Fault(
            "body",
            status=status,
            body=_api_error(status, "try later"),
            kind_filter="get_execution",
            sync_id=sync_id,
            times=1,
        )
        self.faults.append(self.api.inject(fault))

    @precondition(lambda self: self.sb is not None and len(self.sb.sync_ids()) > 1)
    @rule(sync=sync_index)
    @_step
    def delete_sync(self, sync: int) -> None:
        sync_id = self._live(sync)
        assert sync_id is not None
        self.api.delete_sync(sync_id)
        self.touched_since_check.add(sync_id)
        note(f"  deleted sync {sync_id}")

    @precondition(
        lambda self: (
            self.sb is not None
            and len(self.sb.sync_ids(include_deleted=True)) > len(self.sb.sync_ids())
        )
    )
    @rule(pick=st.integers(0, 7))
    @_step
    def restore_sync(self, pick: int) -> None:
        gone = sorted(set(self.api.sync_ids(include_deleted=True)) - set(self.api.sync_ids()))
        sync_id = gone[pick % len(gone)]
        self.api.restore_sync(sync_id)
        self.touched_since_check.add(sync_id)
        note(f"  restored sync {sync_id}")

    @precondition(
        lambda self: self.sb is not None and len(self.sb.sync_ids(include_deleted=True)) < MAX_SYNCS
    )
    @rule(executions=st.sampled_from((0, 5, 60)))
    @_step
    def add_sync(self, executions: int) -> None:
        sync_id = self.api.add_sync(executions=executions)
        note(f"  added sync {sync_id} with {executions} executions")

    @rule(seconds=st.sampled_from((1, 60, 600, 3600, 6 * 3600)))
    @_step
    def advance_clock(self, seconds: int) -> None:
        self.api.advance(seconds)

    @rule(
        sync=sync_index,
        k=st.integers(1, 4),
        action=st.sampled_from(("reupdate", "delete")),
        pick=st.integers(0, 39),
    )
    @_step
    def change_mid_walk(self, sync: int, k: int, action: str, pick: int) -> None:
        """On the k-th list request of this sync in the next run(s), change an old row."""
        sync_id = self._live(sync)
        if sync_id is not None:
            with self.hooks_lock:
                self.hooks.append(MidWalk(sync_id, k, action, pick))

    # -- operator actions ------------------------------------------------------------------

    @rule(verify=st.sampled_from((0, 0, 3)))
    @_step
    def run(self, verify: int) -> None:
        self._operator("run", "run", "--json", verify=verify)

    @rule(shard=st.sampled_from(("0/2", "1/2")))
    @_step
    def run_shard(self, shard: str) -> None:
        self._operator(f"run --shard {shard}", "run", "--json", "--shard", shard)

    @rule(at_request=st.integers(1, 15))
    @_step
    def killed_run(self, at_request: int) -> None:
        """`run` as a subprocess, SIGKILLed at its n-th API request."""
        assert self.killer is not None
        faults_on = self._faults_on()
        started = time.monotonic()
        proc = spawn(self.wh)
        self.killer.arm(proc, "request", at_request)
        outcome = finish(proc)
        STATS["operator_seconds"] += time.monotonic() - started
        with self.killer._lock:
            fired, where = self.killer.fired, self.killer.where
            self.killer.proc = None
        self._report_hooks()
        STATS["operator_runs"] += 1
        STATS["kills" if fired else f"exit_{outcome.code}"] += 1
        note(f"  killed run: {'killed in ' + where if fired else f'exit {outcome.code}'}")
        if not fired:
            _assert_exit("killed run (not killed)", outcome.code, outcome.err, faults_on)

    @rule(days_back=st.sampled_from((1, 3, 10, 60, 400)), span=st.none() | st.integers(1, 30))
    @_step
    def backfill_window(self, days_back: int, span: int | None) -> None:
        since = (self.api.now() - timedelta(days=days_back)).date()
        args = ["--since", since.isoformat()]
        if span is not None:
            args += ["--until", (since + timedelta(days=span)).isoformat()]
        self._operator(f"backfill {' '.join(args)}", "backfill", "--json", *args)

    @rule(scope=st.sampled_from(("0/2", "1/2")) | sync_index)
    @_step
    def backfill_full(self, scope: str | int) -> None:
        if isinstance(scope, str):
            args = ["--shard", scope]
        else:
            sync_id = self._live(scope)
            assert sync_id is not None
            args = ["--bulk-sync-id", sync_id]
        self._operator(
            f"backfill --full {' '.join(args)}", "backfill", "--json", "--full", "--yes", *args
        )

    # Hypothesis draws among the valid rules uniformly; these aliases (printed under the
    # rule's own name) make operator actions, which let armed faults and hooks fire, likelier.
    run_again = run
    killed_run_again = killed_run
    backfill_full_again = backfill_full


class SoakMachine(ModelMachine):
    """The same machine; checks further apart, so that more happens between two of them."""

    check_every = 10


def _last_line(err: str) -> str:
    lines = [line for line in err.strip().splitlines() if line.strip()]
    return lines[-1][:300] if lines else ""


def _traceback(err: str) -> bool:
    """A traceback on stderr, other than one of the sandbox server's own threads."""
    lines = err.splitlines()
    for i, line in enumerate(lines):
        if "Traceback (most recent call last)" not in line:
            continue
        frames = []
        for following in lines[i + 1 :]:
            if not following.startswith(" "):
                break
            frames.append(following)
        if not any(name in frame for frame in frames for name in _SERVER_FRAMES):
            return True
    return False


def _assert_exit(what: str, code: int, err: str, faults_on: bool) -> None:
    assert not _traceback(err), f"{what}: traceback on stderr:\n{err[-3000:]}"
    allowed = {0, 1} if faults_on else {0}
    assert code in allowed, (
        f"{what}: exit {code} ({'a fault armed' if faults_on else 'no fault armed'}): {err[-2000:]}"
    )


def _settings(examples: int, steps: int, derandomize: bool = True, shrink: bool = True) -> settings:
    phases = (Phase.explicit, Phase.generate, Phase.shrink) if shrink else (Phase.generate,)
    return settings(
        max_examples=examples,
        stateful_step_count=steps,
        derandomize=derandomize,
        database=None,
        deadline=None,
        phases=phases,
        suppress_health_check=list(HealthCheck),
        print_blob=False,
    )


def _explored(label: str) -> str:
    exits = ", ".join(f"{k}={v}" for k, v in sorted(STATS.items()) if k.startswith("exit_"))
    return (
        f"{label}: {STATS['examples']} examples, {STATS['steps']} steps, "
        f"{STATS['checks']} checks ({STATS['check_seconds']:.0f} s), "
        f"{STATS['operator_runs']} operator runs ({STATS['operator_seconds']:.0f} s; "
        f"{STATS['kills']} killed; {exits or 'none finished'}); "
        f"largest per-sync state {STATS['max_state_bytes']} bytes; "
        f"{STATS['faults fired']} faults fired, {STATS['mid-walk changes made']} mid-walk "
        f"changes, {STATS['deletions checked']} deletions checked for deleted_at\n  rules: "
        + ", ".join(f"{k[5:]}={v}" for k, v in sorted(STATS.items()) if k.startswith("rule "))
    )


def test_model_of_runs_against_a_changing_api() -> None:
    STATS.clear()
    try:
        # No shrinking here: each step costs up to a few seconds, so a shrink could take many
        # minutes of `make test`; the printed sequence has at most 12 steps anyway.
        run_state_machine_as_test(
            ModelMachine, settings=_settings(examples=4, steps=12, shrink=False)
        )
    finally:
        print(_explored("model"))


@pytest.mark.soak
def test_model_soak() -> None:
    """The same machine, longer: MODEL_SOAK_EXAMPLES x MODEL_SOAK_STEPS, seed MODEL_SOAK_SEED."""
    examples = int(os.environ.get("MODEL_SOAK_EXAMPLES", "40"))
    steps = int(os.environ.get("MODEL_SOAK_STEPS", "30"))
    chosen = int(os.environ.get("MODEL_SOAK_SEED", "20261129"))
    test = get_state_machine_test(
        SoakMachine, settings=_settings(examples, steps, derandomize=False)
    )
    STATS.clear()
    try:
        seed(chosen)(test)()
    finally:
        print(_explored(f"model soak (seed {chosen})"))
