"""The store: all syncs and executions, cached orderings, scenario mutations, ground truth.

Every public method takes the store's re-entrant lock, so scenario calls are safe from any
thread, including hooks that run on a server thread in the middle of a request.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from .clock import US_PER_S, Clock
from .generate import actors, build_sync
from .outcomes import build_execution
from .plans import RUNNING_STATUSES, TERMINAL_STATUSES, SyncPlan
from .records import SCHEMAS_FULL, Execution, SyncRecord, new_uuid


class SandboxConflict(RuntimeError):
    """Mirrors the API's 409: another execution of the sync is already running."""


class NotFound(KeyError):
    """Unknown or deleted sync, or unknown execution."""


@dataclass(frozen=True)
class View:
    """One cached ordering, as served: ``keys`` ascend in serving order, ``rows`` match."""

    keys: list[tuple[int, int]]
    rows: list[Any]


class Store:
    def __init__(
        self,
        seed: int,
        plans: list[SyncPlan],
        clock: Clock,
        default_schemas: Any = (1, 5),
        default_failure_rate: float = 0.1,
    ) -> None:
        self.lock = threading.RLock()
        self.seed = seed
        self.clock = clock
        self.default_schemas = default_schemas
        self.default_failure_rate = default_failure_rate
        ident = random.Random(f"{seed}:identity")
        self.organization_id = new_uuid(ident)
        self.people = actors(seed)
        self.rng = random.Random(f"{seed}:store")
        self.syncs: dict[str, SyncRecord] = {}
        self.executions: dict[str, dict[str, Execution]] = {}
        self._views: dict[tuple[Any, ...], View] = {}
        self.generation = 0
        now = clock.now_us()
        for plan in plans:
            self._register(plan, now, created_now=False)

    # -- internals -------------------------------------------------------------------------

    def _register(self, plan: SyncPlan, now_us: int, created_now: bool) -> SyncRecord:
        index = len(self.syncs)
        sync, history = build_sync(
            plan, index, self.seed, now_us, self.organization_id, self.people, created_now
        )
        running = [e.id for e in history if e.status in RUNNING_STATUSES]
        if len(running) > 1:
            raise ValueError(f"plan {index} has more than one running execution: {running}")
        self.syncs[sync.id] = sync
        self.executions[sync.id] = {e.id: e for e in history}
        for execution in history:
            self.clock.observe(execution.updated_us)
        self._changed(sync.id)
        return sync

    def _changed(self, sync_id: str | None = None) -> None:
        self.generation += 1
        if sync_id is None:
            self._views.clear()
        else:
            for key in [k for k in self._views if k[0] in (sync_id, "__syncs__")]:
                del self._views[key]

    def sync(self, sync_id: str, include_deleted: bool = False) -> SyncRecord:
        found = self.syncs.get(sync_id)
        if found is None or (found.deleted and not include_deleted):
            raise NotFound("bulk sync", sync_id)
        return found

    def execution(self, sync_id: str, exec_id: str) -> Execution:
        self.sync(sync_id)
        found = self.executions[sync_id].get(exec_id)
        if found is None:
            raise NotFound("bulk sync execution", exec_id)
        return found

    # -- orderings -------------------------------------------------------------------------

    def execution_view(
        self,
        sync_id: str,
        only_terminal: bool,
        ascending: bool,
        tie_desc: bool,
        terminal: frozenset[str],
    ) -> View:
        """Executions of a sync in serving order. Default: start time (``started_at``, else
        ``created_at``) newest first; ``only_terminal``: terminal ones by ``updated_at``."""
        with self.lock:
            self.sync(sync_id)
            key = (sync_id, only_terminal, ascending, tie_desc, terminal)
            view = self._views.get(key)
            if view is None:
                rows: Iterable[Execution] = self.executions[sync_id].values()
                if only_terminal:
                    rows = [e for e in rows if e.status in terminal]
                direction, tie = (1 if ascending else -1), (-1 if tie_desc else 1)
                pairs = sorted(
                    (
                        (
                            direction * (e.updated_us if only_terminal else e.start_us),
                            tie * e.id_int,
                        ),
                        e,
                    )
                    for e in rows
                )
                view = View([p[0] for p in pairs], [p[1] for p in pairs])
                self._views[key] = view
            return view

    def sync_view(self, active: bool | None, tie_desc: bool) -> View:
        """Syncs by ``updated_at`` descending, ``id`` as tiebreaker."""
        with self.lock:
            key = ("__syncs__", active, tie_desc)
            view = self._views.get(key)
            if view is None:
                tie = -1 if tie_desc else 1
                live = [s for s in self.syncs.values() if not s.deleted]
                live = [s for s in live if active is None or s.active == active]
                pairs = sorted(((-s.updated_us, tie * s.id_int), s) for s in live)
                view = View([p[0] for p in pairs], [p[1] for p in pairs])
                self._views[key] = view
            return view

    # -- scenario mutations ----------------------------------------------------------------

    def add_executions(
        self, sync_id: str, n: int, status: str, overrides: dict[str, Any]
    ) -> list[str]:
        if status not in TERMINAL_STATUSES and "status" not in overrides:
            raise ValueError("add_executions creates terminal executions; use start_execution")
        with self.lock:
            sync = self.sync(sync_id)
            ids = []
            for _ in range(n):
                stamp = self.clock.tick()
                duration = float(overrides.get("duration", sync.rng.uniform(30, 600)))
                ov = {"completed_at": stamp, "updated_at": stamp, **overrides}
                ex = build_execution(
                    sync,
                    sync.rng,
                    status=status,
                    start_us=stamp - round(duration * US_PER_S),
                    now_us=stamp,
                    overrides=ov,
                    max_duration_s=duration,
                )
                ids.append(self._insert(sync, ex))
            return ids

    def start_execution(self, sync_id: str, status: str) -> str:
        with self.lock:
            sync = self.sync(sync_id)
            running = [e for e in self.executions[sync_id].values() if e.status in RUNNING_STATUSES]
            if status in RUNNING_STATUSES and running:
                raise SandboxConflict(f"sync {sync_id} already has a running execution")
            stamp = self.clock.tick()
            ov: dict[str, Any] = {"updated_at": stamp}
            if status not in RUNNING_STATUSES:
                ov["created_at"] = stamp
            ex = build_execution(
                sync, sync.rng, status=status, start_us=stamp, now_us=stamp, overrides=ov
            )
            return self._insert(sync, ex)

    def finish_inflight(self, sync_id: str | None, status: str) -> list[str]:
        with self.lock:
            targets = [self.sync(sync_id)] if sync_id else list(self.syncs.values())
            done = []
            for sync in targets:
                if sync.deleted:
                    continue
                open_rows = [e for e in self.executions[sync.id].values()]
                open_rows = [e for e in open_rows if e.status not in TERMINAL_STATUSES]
                open_rows.sort(key=lambda e: (e.status not in RUNNING_STATUSES, e.start_us))
                for ex in open_rows:
                    self._rebuild(sync, ex, status, self.clock.tick(), keep=None)
                    done.append(ex.id)
            return done

    def reupdate(self, sync_id: str, exec_id: str | None, keep_schemas: int) -> str:
        with self.lock:
            sync = self.sync(sync_id)
            if exec_id is None:
                done = sorted(
                    (e for e in self.executions[sync_id].values() if e.status in TERMINAL_STATUSES),
                    key=lambda e: (e.start_us, e.id),
                )
                if not done:
                    raise NotFound("terminal execution", sync_id)
                exec_id = sync.rng.choice(done[: max(1, len(done) // 2)]).id
            ex = self.execution(sync_id, exec_id)
            if ex.status not in TERMINAL_STATUSES:
                raise ValueError(f"execution {exec_id} is not terminal")
            stamp = self.clock.tick()
            ex.schemas = ex.schemas[: max(1, keep_schemas)]
            for row in ex.schemas:
                row["record_count"] = round(int(row["record_count"]) * sync.rng.uniform(1.05, 1.5))
                row["record_count"] += 1
                row["updated_at"] = stamp
            ex.fields["updated_at"] = stamp
            ex.recount()
            self._changed(sync_id)
            return ex.id

    def add_late_commit(self, sync_id: str, behind_seconds: float) -> str:
        with self.lock:
            sync = self.sync(sync_id)
            stamp = self.clock.now_us() - round(behind_seconds * US_PER_S)
            duration = sync.rng.uniform(30, 300)
            ov = {"completed_at": stamp, "updated_at": stamp}
            ex = build_execution(
                sync,
                sync.rng,
                status="completed",
                start_us=stamp - round(duration * US_PER_S),
                now_us=stamp,
                overrides=ov,
                max_duration_s=duration,
            )
            return self._insert(sync, ex)

    def add_sync(self, plan: SyncPlan) -> str:
        with self.lock:
            return self._register(plan, self.clock.now_us(), created_now=True).id

    def delete_sync(self, sync_id: str) -> None:
        with self.lock:
            self.sync(sync_id).deleted = True
            self._changed(sync_id)

    def set_active(self, sync_id: str, active: bool) -> None:
        with self.lock:
            sync = self.sync(sync_id)
            sync.wire_fields["active"] = active
            sync.wire_fields["updated_at"] = self.clock.tick()
            sync.touch()
            self._changed(sync_id)

    def _insert(self, sync: SyncRecord, ex: Execution) -> str:
        self.executions[sync.id][ex.id] = ex
        self._changed(sync.id)
        return ex.id

    def _rebuild(
        self, sync: SyncRecord, ex: Execution, status: str, stamp: int, keep: int | None
    ) -> None:
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
        self._changed(sync.id)

    # -- ground truth ----------------------------------------------------------------------

    def truth_syncs(self, include_deleted: bool) -> list[dict[str, Any]]:
        with self.lock:
            return [s.wire() for s in self.syncs.values() if include_deleted or not s.deleted]

    def truth_executions(self, include_deleted_syncs: bool) -> list[dict[str, Any]]:
        with self.lock:
            out = []
            for sync in self.syncs.values():
                if sync.deleted and not include_deleted_syncs:
                    continue
                rows = sorted(self.executions[sync.id].values(), key=lambda e: (e.start_us, e.id))
                for ex in rows:
                    item = ex.wire(SCHEMAS_FULL)
                    item["bulk_sync_id"] = sync.id
                    out.append(item)
            return out
