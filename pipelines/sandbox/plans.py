"""What a simulated bulk sync looks like: the ``SyncPlan`` and the API's enumerations.

A plan describes one sync's history. Per-execution outcomes can be overridden with
``SyncPlan.overrides``: either a mapping ``{index: {...}}`` (index 0 is the oldest execution,
negative indices count from the newest, ``-1`` is the newest) or a callable
``fn(index) -> dict | None`` (index is always non-negative there).

Override keys (all optional):

* any execution wire field: ``status``, ``status_message``, ``type``, ``fetch_mode``,
  ``output_disposition``, ``is_partial``, ``is_resync``, ``is_test``, ``version``, and the
  timestamps ``created_at``/``started_at``/``completed_at``/``updated_at`` (aware datetime,
  RFC 3339 string or epoch microseconds);
* ``record_count`` / ``error_count`` / ``warning_count``: totals, spread over the schemas;
* ``record_scale``: multiply the usual volume (``0.1`` is a 90 % volume drop);
* ``schemas``: names of the schemas that take part (a subset of the sync's schemas);
* ``schema_status``: ``{schema: status}``, e.g. ``{"Opportunity": "failed"}`` for a
  chronically failing schema (the execution becomes ``errors`` unless ``status`` is given);
* ``schema_overrides``: ``{schema: {field: value}}`` for any per-schema field;
* ``start_delay``: seconds between the scheduled slot and the start (a late run);
* ``duration``: seconds from start to completion;
* ``skip``: ``True`` leaves the slot empty (no execution; the history gets shorter).

Execution totals are always recomputed as the sum over schemas after all overrides.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

TERMINAL_STATUSES: frozenset[str] = frozenset(
    {"completed", "failed", "canceled", "errors", "interrupted"}
)
DOCUMENTED_TERMINAL_STATUSES: frozenset[str] = frozenset({"completed", "failed", "canceled"})
RUNNING_STATUSES: frozenset[str] = frozenset({"running", "exporting", "processing", "canceling"})
QUEUED_STATUSES: frozenset[str] = frozenset({"created", "scheduled"})
EXECUTION_STATUSES: frozenset[str] = TERMINAL_STATUSES | RUNNING_STATUSES | QUEUED_STATUSES
SCHEMA_STATUSES: frozenset[str] = frozenset(
    {
        "created",
        "scheduled",
        "running",
        "exporting",
        "canceled",
        "completed",
        "failed",
        "interrupted",
        "processing",
    }
)

PERIOD_S: dict[str, int] = {"hourly": 3600, "daily": 86_400, "weekly": 604_800}
FREQUENCIES: tuple[str, ...] = ("hourly", "daily", "weekly", "manual")

Overrides = Mapping[int, Mapping[str, Any]] | Callable[[int], Mapping[str, Any] | None]


@dataclass
class SyncPlan:
    """One simulated bulk sync and the shape of its execution history.

    Attributes:
        name: sync name (generated when ``None``).
        frequency: ``hourly`` | ``daily`` | ``weekly`` | ``manual`` (spacing of the history).
        executions: number of executions, in-flight ones included.
        schemas: explicit schema names, or a ``(low, high)`` count range, or an exact count.
        failure_rate: share of terminal executions that do not end ``completed``.
        active: inactive syncs are paused; their history ends ``ends_before_now`` ago.
        inflight: statuses of the newest executions that are still in flight, oldest
            first, e.g. ``("running", "scheduled")``. At most one may be running-ish.
        ends_before_now: seconds between the newest slot and the clock's now (a late or
            stalled sync). ``None`` means 0 for active syncs and 3 days for paused ones.
        overrides: per-execution overrides (see the module docstring).
        source: source flavour for names (``salesforce`` | ``hubspot`` | ``postgres``).
    """

    name: str | None = None
    frequency: str = "hourly"
    executions: int = 100
    schemas: tuple[str, ...] | tuple[int, int] | int = (1, 5)
    failure_rate: float = 0.1
    active: bool = True
    inflight: tuple[str, ...] = ()
    ends_before_now: float | None = None
    overrides: Overrides | None = None
    source: str | None = None

    def __post_init__(self) -> None:
        if self.frequency not in FREQUENCIES:
            raise ValueError(f"frequency must be one of {FREQUENCIES}, not {self.frequency!r}")
        if self.executions < 0:
            raise ValueError("executions must be >= 0")
        if not 0.0 <= self.failure_rate <= 1.0:
            raise ValueError("failure_rate must be within [0, 1]")
        bad = [s for s in self.inflight if s not in RUNNING_STATUSES | QUEUED_STATUSES]
        if bad:
            raise ValueError(f"inflight statuses must be non-terminal, got {bad}")
        if sum(s in RUNNING_STATUSES for s in self.inflight) > 1:
            raise ValueError("at most one running execution per sync")
        if len(self.inflight) > self.executions:
            raise ValueError("more in-flight executions than executions")

    def override_for(self, index: int) -> dict[str, Any]:
        """The merged overrides for execution ``index`` (0 = oldest)."""
        if self.overrides is None:
            return {}
        if callable(self.overrides):
            return dict(self.overrides(index) or {})
        found: dict[str, Any] = {}
        for key in (index, index - self.executions):
            found.update(self.overrides.get(key, {}))
        return found

    def paused_gap_s(self) -> float:
        if self.ends_before_now is not None:
            return self.ends_before_now
        return 0.0 if self.active else 3 * 86_400.0
