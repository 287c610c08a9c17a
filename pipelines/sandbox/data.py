"""The store: all syncs and executions, cached orderings, deletions, ground truth.

Mutations that build executions live in ``mutations``; they use ``insert`` and ``changed``.

Every public method takes the store's re-entrant lock, so scenario calls are safe from any
thread, including hooks that run on a server thread in the middle of a request.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from .clock import Clock
from .generate import actors, build_sync
from .plans import RUNNING_STATUSES, SyncPlan
from .records import SCHEMAS_FULL, Execution, SyncRecord, new_uuid


class SandboxConflict(RuntimeError):
    """Mirrors the API's 409: another execution of the sync is already running."""


class NotFound(KeyError):
    """Unknown or deleted sync, or unknown or deleted execution."""


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
        self.deleted_executions: dict[str, dict[str, Execution]] = {}
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
        self.changed(sync.id)
        return sync

    def changed(self, sync_id: str | None = None) -> None:
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

    def add_sync(self, plan: SyncPlan) -> str:
        with self.lock:
            return self._register(plan, self.clock.now_us(), created_now=True).id

    def delete_sync(self, sync_id: str) -> None:
        with self.lock:
            self.sync(sync_id).deleted = True
            self.changed(sync_id)

    def restore_sync(self, sync_id: str) -> None:
        """Undo ``delete_sync``: the same id and history are served again."""
        with self.lock:
            sync = self.sync(sync_id, include_deleted=True)
            if not sync.deleted:
                raise ValueError(f"sync {sync_id} is not deleted")
            sync.deleted = False
            self.changed(sync_id)

    def delete_execution(self, sync_id: str, exec_id: str) -> None:
        """Remove an execution from every listing, the detail endpoint and the truth."""
        with self.lock:
            ex = self.execution(sync_id, exec_id)
            del self.executions[sync_id][exec_id]
            self.deleted_executions.setdefault(sync_id, {})[exec_id] = ex
            self.changed(sync_id)

    def deleted_execution_ids(self) -> set[str]:
        with self.lock:
            return {i for rows in self.deleted_executions.values() for i in rows}

    def set_active(self, sync_id: str, active: bool) -> None:
        with self.lock:
            sync = self.sync(sync_id)
            sync.wire_fields["active"] = active
            sync.wire_fields["updated_at"] = self.clock.tick()
            sync.touch()
            self.changed(sync_id)

    def insert(self, sync: SyncRecord, ex: Execution) -> str:
        """Add a new execution built by a mutation."""
        self.executions[sync.id][ex.id] = ex
        self.changed(sync.id)
        return ex.id

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
