"""Scenario mutations that create or rewrite executions (the store keeps the bookkeeping).

Each function takes the store's lock, so it is safe from any thread, hooks included.
"""

from __future__ import annotations

from typing import Any

from .clock import US_PER_S
from .data import NotFound, SandboxConflict, Store
from .outcomes import build_execution
from .plans import RUNNING_STATUSES, TERMINAL_STATUSES
from .records import Execution, SyncRecord


def add_executions(
    store: Store, sync_id: str, n: int, status: str, overrides: dict[str, Any]
) -> list[str]:
    """``n`` terminal executions finishing now, with strictly increasing ``updated_at``."""
    if status not in TERMINAL_STATUSES and "status" not in overrides:
        raise ValueError("add_executions creates terminal executions; use start_execution")
    with store.lock:
        sync = store.sync(sync_id)
        ids = []
        for _ in range(n):
            stamp = store.clock.tick()
            duration = float(overrides.get("duration", sync.rng.uniform(30, 600)))
            ex = _finished(sync, status, stamp, duration, overrides)
            ids.append(store.insert(sync, ex))
        return ids


def start_execution(store: Store, sync_id: str, status: str) -> str:
    """Start (or queue) an execution now; ``SandboxConflict`` if another one runs."""
    with store.lock:
        sync = store.sync(sync_id)
        running = [e for e in store.executions[sync_id].values() if e.status in RUNNING_STATUSES]
        if status in RUNNING_STATUSES and running:
            raise SandboxConflict(f"sync {sync_id} already has a running execution")
        stamp = store.clock.tick()
        ov: dict[str, Any] = {"updated_at": stamp}
        if status not in RUNNING_STATUSES:
            ov["created_at"] = stamp
        ex = build_execution(
            sync, sync.rng, status=status, start_us=stamp, now_us=stamp, overrides=ov
        )
        return store.insert(sync, ex)


def finish_inflight(store: Store, sync_id: str | None, status: str) -> list[str]:
    """Every non-terminal execution (of one sync, or all) ends now with ``status``."""
    with store.lock:
        targets = [store.sync(sync_id)] if sync_id else list(store.syncs.values())
        done = []
        for sync in targets:
            if sync.deleted:
                continue
            open_rows = [e for e in store.executions[sync.id].values()]
            open_rows = [e for e in open_rows if e.status not in TERMINAL_STATUSES]
            open_rows.sort(key=lambda e: (e.status not in RUNNING_STATUSES, e.start_us))
            for ex in open_rows:
                _rebuild(store, sync, ex, status, store.clock.tick())
                done.append(ex.id)
        return done


def reupdate(store: Store, sync_id: str, exec_id: str | None, keep_schemas: int) -> str:
    """An old terminal execution gets ``updated_at = now``, new counts, fewer schemas."""
    with store.lock:
        sync = store.sync(sync_id)
        if exec_id is None:
            done = sorted(
                (e for e in store.executions[sync_id].values() if e.status in TERMINAL_STATUSES),
                key=lambda e: (e.start_us, e.id),
            )
            if not done:
                raise NotFound("terminal execution", sync_id)
            exec_id = sync.rng.choice(done[: max(1, len(done) // 2)]).id
        ex = store.execution(sync_id, exec_id)
        if ex.status not in TERMINAL_STATUSES:
            raise ValueError(f"execution {exec_id} is not terminal")
        stamp = store.clock.tick()
        ex.schemas = ex.schemas[: max(1, keep_schemas)]
        for row in ex.schemas:
            row["record_count"] = round(int(row["record_count"]) * sync.rng.uniform(1.05, 1.5))
            row["record_count"] += 1
            row["updated_at"] = stamp
        ex.fields["updated_at"] = stamp
        ex.recount()
        store.changed(sync_id)
        return ex.id


def add_stamped(store: Store, sync_id: str, offset_seconds: float, status: str) -> str:
    """A new terminal execution with ``updated_at = completed_at = now + offset_seconds``.

    The stamp is not fed back into the clock's ``tick``: a late commit (negative offset) or a
    row stamped by a clock running ahead (positive offset) leaves later stamps near now.
    """
    if status not in TERMINAL_STATUSES:
        raise ValueError(f"status must be terminal, not {status!r}")
    with store.lock:
        sync = store.sync(sync_id)
        stamp = store.clock.now_us() + round(offset_seconds * US_PER_S)
        duration = sync.rng.uniform(30, 300)
        return store.insert(sync, _finished(sync, status, stamp, duration, {}))


def _rebuild(store: Store, sync: SyncRecord, ex: Execution, status: str, stamp: int) -> None:
    """Finish ``ex`` at ``stamp`` with ``status``; identity fields and schemas are kept."""
    started = ex.fields.get("started_at")
    started = stamp if started is None else int(started)
    duration = max(0.0, (stamp - started) / US_PER_S)
    fresh = build_execution(
        sync,
        sync.rng,
        status=status,
        start_us=started,
        now_us=stamp,
        overrides={
            "schemas": [row["schema"] for row in ex.schemas],
            "completed_at": stamp,
            "updated_at": stamp,
            "started_at": started,
            "created_at": ex.fields["created_at"],
        },
        max_duration_s=duration,
    )
    keep_keys = ("id", "type", "fetch_mode", "output_disposition", "is_partial", "is_resync")
    for key in (*keep_keys, "is_test"):
        fresh.fields[key] = ex.fields[key]
    ex.fields = fresh.fields
    ex.schemas = fresh.schemas
    ex.touch()
    store.changed(sync.id)


def _finished(
    sync: SyncRecord, status: str, stamp: int, duration: float, overrides: dict[str, Any]
) -> Execution:
    """A terminal execution that ran `duration` seconds and ended (and was updated) at `stamp`."""
    ov = {"completed_at": stamp, "updated_at": stamp, **overrides}
    return build_execution(
        sync,
        sync.rng,
        status=status,
        start_us=stamp - round(duration * US_PER_S),
        now_us=stamp,
        overrides=ov,
        max_duration_s=duration,
    )
