"""The scenario API and the ground truth, mixed into ``Sandbox`` (thread-safe, hook-safe)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from . import mutations
from .clock import Clock
from .data import Store
from .plans import SyncPlan


class ScenarioApi:
    """Clock, data mutations and ground truth of a sandbox; needs ``_clock`` and ``_store``."""

    _clock: Clock
    _store: Store

    # -- clock -----------------------------------------------------------------------------

    def now(self) -> datetime:
        return self._clock.now()

    def advance(self, seconds: float) -> datetime:
        return self._clock.advance(seconds)

    # -- scenario --------------------------------------------------------------------------

    def sync_ids(self, include_deleted: bool = False) -> list[str]:
        with self._store.lock:
            return [s.id for s in self._store.syncs.values() if include_deleted or not s.deleted]

    def execution_ids(self, sync_id: str) -> list[str]:
        """Execution ids of a sync, oldest start first (deleted executions excluded)."""
        return [e["id"] for e in self.truth_executions(True) if e["bulk_sync_id"] == sync_id]

    def add_executions(
        self, sync_id: str, n: int = 1, status: str = "completed", **overrides: Any
    ) -> list[str]:
        """New terminal executions finishing now, with strictly increasing ``updated_at``."""
        return mutations.add_executions(self._store, sync_id, n, status, overrides)

    def start_execution(self, sync_id: str, status: str = "running") -> str:
        """Start (or queue, for ``created``/``scheduled``) an execution now. Raises
        ``SandboxConflict`` (the API's 409) if a running one exists and ``status`` runs."""
        return mutations.start_execution(self._store, sync_id, status)

    def finish_inflight(self, sync_id: str | None = None, status: str = "completed") -> list[str]:
        """Every non-terminal execution (of one sync, or all) ends now with ``status``."""
        return mutations.finish_inflight(self._store, sync_id, status)

    def reupdate(self, sync_id: str, exec_id: str | None = None, keep_schemas: int = 1) -> str:
        """An old terminal execution gets ``updated_at = now``, new counts, fewer schemas."""
        return mutations.reupdate(self._store, sync_id, exec_id, keep_schemas)

    def add_late_commit(self, sync_id: str, behind_seconds: float = 60) -> str:
        """A new terminal execution whose ``updated_at`` is ``behind_seconds`` before now."""
        return mutations.add_stamped(self._store, sync_id, -behind_seconds, "completed")

    def add_skewed(self, sync_id: str, ahead_seconds: float, status: str = "completed") -> str:
        """A new terminal execution whose ``updated_at`` (and ``completed_at``) is
        ``now + ahead_seconds``: a row stamped by a clock running ahead. Later additions
        still get stamps near the real now, so they sort before it by ``updated_at``."""
        return mutations.add_stamped(self._store, sync_id, ahead_seconds, status)

    def add_sync(
        self, name: str | None = None, executions: int = 0, frequency: str = "hourly"
    ) -> str:
        plan = SyncPlan(
            name=name,
            frequency=frequency,
            executions=executions,
            schemas=self._store.default_schemas,
            failure_rate=self._store.default_failure_rate,
        )
        return self._store.add_sync(plan)

    def delete_sync(self, sync_id: str) -> None:
        self._store.delete_sync(sync_id)

    def restore_sync(self, sync_id: str) -> None:
        """Undo ``delete_sync``: the same id and history are listed and served again."""
        self._store.restore_sync(sync_id)

    def delete_execution(self, sync_id: str, exec_id: str) -> None:
        """The execution disappears from every listing (offset tokens shift), its detail
        endpoint answers 404 and the ground truth drops it."""
        self._store.delete_execution(sync_id, exec_id)

    def deleted_execution_ids(self) -> set[str]:
        """Ids removed with ``delete_execution``, across all syncs."""
        return self._store.deleted_execution_ids()

    def set_active(self, sync_id: str, active: bool) -> None:
        self._store.set_active(sync_id, active)

    # -- ground truth ----------------------------------------------------------------------

    def truth_syncs(self, include_deleted: bool = False) -> list[dict[str, Any]]:
        return self._store.truth_syncs(include_deleted)

    def truth_executions(self, include_deleted_syncs: bool = False) -> list[dict[str, Any]]:
        """Every execution as the detail endpoint returns it now, plus ``bulk_sync_id``;
        per sync, oldest start first."""
        return self._store.truth_executions(include_deleted_syncs)

    def truth_execution(self, sync_id: str, exec_id: str) -> dict[str, Any]:
        with self._store.lock:
            return self._store.execution(sync_id, exec_id).wire()

    def truth_schemas(self, include_deleted_syncs: bool = False) -> list[dict[str, Any]]:
        """Per-schema rows, flattened, with ``execution_id`` and ``bulk_sync_id``."""
        rows = []
        for ex in self.truth_executions(include_deleted_syncs):
            for schema in ex["schemas"]:
                rows.append(
                    {**schema, "execution_id": ex["id"], "bulk_sync_id": ex["bulk_sync_id"]}
                )
        return rows
