"""The outcome engine: turns (sync, status, timing, overrides) into one consistent execution.

Invariants kept here: schema record/error/warning counts sum to the execution's; non-terminal
executions have ``completed_at = null``; queued ones (created/scheduled) have no
``started_at``; ``created_at <= started_at <= completed_at <= updated_at``.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from typing import Any

from .clock import US_PER_S, parse_instant
from .plans import QUEUED_STATUSES, RUNNING_STATUSES, TERMINAL_STATUSES
from .records import COUNT_FIELDS, TIMESTAMP_FIELDS, Execution, SyncRecord, new_uuid

FAILURE_MESSAGES: tuple[str, ...] = (
    "destination: permission denied for schema analytics",
    "source: INVALID_SESSION_ID: Session expired or invalid",
    "source: REQUEST_LIMIT_EXCEEDED: TotalRequests Limit exceeded.",
    "destination: disk quota exceeded",
    "read tcp 10.0.3.7:443: connection reset by peer",
)
STATUS_MESSAGES: dict[str, str] = {
    "canceled": "canceled by user",
    "interrupted": "execution interrupted: worker restarted",
    "errors": "completed with record errors",
}
_FAILURE_MIX: tuple[tuple[str, float], ...] = (
    ("failed", 0.5),
    ("errors", 0.25),
    ("canceled", 0.15),
    ("interrupted", 0.10),
)
_DIRECT_KEYS = frozenset(
    {"status_message", "type", "fetch_mode", "output_disposition", "is_partial", "is_resync"}
    | {"is_test", "version"}
)
_KNOWN_KEYS = (
    _DIRECT_KEYS
    | set(TIMESTAMP_FIELDS)
    | set(COUNT_FIELDS)
    | {"status", "record_scale", "schemas", "schema_status", "schema_overrides"}
    | {"start_delay", "duration", "skip", "extra_fields"}
)


def rint(rng: random.Random, low: int, high: int) -> int:
    """``rng.randint`` without its overhead (inclusive bounds)."""
    return low + int(rng.random() * (high - low + 1))


def _weighted(rng: random.Random, options: tuple[str, ...], cumulative: tuple[float, ...]) -> str:
    r = rng.random()
    for option, bound in zip(options, cumulative, strict=True):
        if r < bound:
            return option
    return options[-1]


def quantize(rng: random.Random, us: int) -> int:
    """Floor an instant to whole seconds, milliseconds or microseconds (all three occur)."""
    r = rng.random()
    step = US_PER_S if r < 0.3 else 1000 if r < 0.6 else 1
    return us - us % step


def pick_terminal(rng: random.Random, failure_rate: float) -> str:
    if rng.random() >= failure_rate:
        return "completed"
    r, acc = rng.random(), 0.0
    for status, weight in _FAILURE_MIX:
        acc += weight
        if r < acc:
            return status
    return "failed"


def spread(total: int, weights: list[int]) -> list[int]:
    """Split ``total`` into integers proportional to ``weights`` that sum exactly to it."""
    if not weights:
        return []
    if sum(weights) <= 0:
        weights = [1] * len(weights)
    wsum = sum(weights)
    parts = [total * w // wsum for w in weights]
    parts[0] += total - sum(parts)
    return parts


def check_override_keys(ov: Mapping[str, Any]) -> None:
    unknown = set(ov) - _KNOWN_KEYS
    if unknown:
        raise ValueError(f"unknown execution override keys: {sorted(unknown)}")


def build_execution(
    sync: SyncRecord,
    rng: random.Random,
    *,
    status: str,
    start_us: int,
    now_us: int,
    overrides: Mapping[str, Any] | None = None,
    max_duration_s: float | None = None,
) -> Execution:
    """Create one execution of ``sync`` that starts (or is created, if queued) at ``start_us``."""
    ov = dict(overrides or {})
    check_override_keys(ov)
    forced = dict(ov.get("schema_status") or {})
    if "status" in ov:
        status = str(ov["status"])
    elif status == "completed" and any(s != "completed" for s in forced.values()):
        status = "errors"
    wanted = set(ov.get("schemas") or ())
    names = [n for n in sync.schema_names if n[0] in wanted] or list(sync.schema_names)
    partial = False
    if "schemas" not in ov and len(names) > 1 and rng.random() < 0.06:
        names = rng.sample(names, rint(rng, 1, len(names) - 1))
        partial = True
    volume_scale = float(ov.get("record_scale", 1.0)) * rng.uniform(
        0.9, 1.1
    )  # steady, as real volumes are
    volumes = [max(0, round(sync.volumes[n[0]] * volume_scale)) for n in names]
    manual_sync = sync.plan.frequency == "manual"
    resync = rng.random() < 0.02
    fields: dict[str, Any] = {
        "id": new_uuid(rng),
        "type": _weighted(rng, ("manual", "api"), (0.7, 1.0))
        if manual_sync
        else _weighted(rng, ("scheduled", "manual", "api"), (0.9, 0.97, 1.0)),
        "status": status,
        "status_message": "",
        "fetch_mode": _weighted(rng, ("none", "incremental", "full"), (0.9, 0.97, 1.0)),
        "output_disposition": rng.choice(("truncate", "rebuild")) if resync else "retain",
        "is_partial": partial,
        "is_resync": resync,
        "is_test": rng.random() < 0.01,
    }
    queued, running = status in QUEUED_STATUSES, status in RUNNING_STATUSES
    created = quantize(rng, start_us - rint(rng, 1, 5 * US_PER_S))
    started = None if queued else max(created, quantize(rng, start_us))
    duration_s = ov.get("duration")
    if duration_s is None:
        duration_s = (20 + sum(volumes) / 150) * rng.uniform(0.7, 1.5)
    if max_duration_s is not None:
        duration_s = max(0.0, min(float(duration_s), max_duration_s))
    completed = updated = None
    if started is None:
        updated = created
    elif running:
        updated = max(started, quantize(rng, now_us - rint(rng, 0, 60 * US_PER_S)))
    else:
        completed = max(started, quantize(rng, started + round(float(duration_s) * US_PER_S)))
        updated = completed
        if rng.random() < 0.05:
            updated = max(completed, quantize(rng, completed + rint(rng, 1, 3 * US_PER_S)))
    fields.update(created_at=created, started_at=started, completed_at=completed)
    fields["updated_at"] = updated
    version = _version_for(sync, start_us)
    if version is not None:
        fields["version"] = version
    schemas = _schema_rows(rng, fields, names, volumes, forced)
    execution = Execution(sync_id=sync.id, fields=fields, schemas=schemas)
    apply_overrides(execution, ov, sync)
    return execution


def apply_overrides(execution: Execution, ov: Mapping[str, Any], sync: SyncRecord) -> None:
    """Apply explicit field, count and per-schema overrides; totals are re-summed."""
    if not ov:
        execution.recount()
        return
    fields = execution.fields
    for key in _DIRECT_KEYS & set(ov):
        if ov[key] is None and key == "version":
            fields.pop("version", None)
        else:
            fields[key] = ov[key]
    for key in TIMESTAMP_FIELDS:
        if key in ov:
            fields[key] = None if ov[key] is None else parse_instant(ov[key])
    weights = [int(s.get("record_count") or 0) for s in execution.schemas]
    for key in COUNT_FIELDS:
        if key in ov:
            for row, part in zip(execution.schemas, spread(int(ov[key]), weights), strict=True):
                row[key] = part
    by_name = {row["schema"]: row for row in execution.schemas}
    for name, changes in dict(ov.get("schema_overrides") or {}).items():
        if name not in by_name:
            raise ValueError(f"schema_overrides names {name!r}, not part of this execution")
        for key, value in dict(changes).items():
            stamp = key in TIMESTAMP_FIELDS and value is not None
            by_name[name][key] = parse_instant(value) if stamp else value
    fields.update(dict(ov.get("extra_fields") or {}))
    execution.recount()


def _version_for(sync: SyncRecord, start_us: int) -> str | None:
    since = sync.version_since_us
    if since is None or start_us < since:
        return None
    week = (start_us // US_PER_S) // (7 * 86_400)
    return f"2026.{week % 52 + 1}.{(week * 7 + sync.index) % 5}"


_TERMINAL_SCHEMA = frozenset({"completed", "failed", "canceled", "interrupted"})


def _schema_rows(
    rng: random.Random,
    ex: dict[str, Any],
    names: list[tuple[str, str]],
    volumes: list[int],
    forced: Mapping[str, str],
) -> list[dict[str, Any]]:
    status = str(ex["status"])
    message = rng.choice(FAILURE_MESSAGES) if status == "failed" else ""
    ex["status_message"] = message or STATUS_MESSAGES.get(status, "")
    created, started, completed = ex["created_at"], ex["started_at"], ex["completed_at"]
    end = completed if completed is not None else ex["updated_at"]
    rows: list[dict[str, Any]] = []
    statuses = _schema_statuses(rng, status, len(names))
    for (schema, output), volume, generated in zip(names, volumes, statuses, strict=True):
        s_status = forced.get(schema, generated)
        row: dict[str, Any] = {"schema": schema, "output_name": output, "status": s_status}
        row["status_message"] = (
            (message or rng.choice(FAILURE_MESSAGES)) if s_status == "failed" else ""
        )
        s_created = created if started is None else min(created + rint(rng, 0, US_PER_S), started)
        not_started = started is None or s_status in QUEUED_STATUSES
        not_started = not_started or (s_status == "canceled" and rng.random() < 0.5)
        share = 0.0 if not_started else 1.0 if s_status == "completed" else rng.uniform(0, 0.6)
        errors = 0
        if s_status == "failed" or (status == "errors" and s_status == "completed" and not rows):
            errors = rint(rng, 1, max(1, volume // 200 + 1))
        terminal = s_status in _TERMINAL_SCHEMA
        if not_started:
            s_started = None
            s_completed = end if terminal and end is not None else None
            s_updated = s_completed if s_completed is not None else s_created
        else:
            span = max(0, end - started)
            s_started = min(
                max(quantize(rng, started + rint(rng, 0, span // 10 + 1)), started), end
            )
            s_completed = None
            s_updated = end
            if terminal:
                s_completed = quantize(rng, end - rint(rng, 0, span // 4 + 1))
                s_completed = s_updated = min(max(s_completed, s_started), end)
        row["record_count"] = round(volume * share)
        row["error_count"] = errors
        row["warning_count"] = rint(rng, 1, 5) if share and rng.random() < 0.08 else 0
        row.update(created_at=s_created, started_at=s_started, completed_at=s_completed)
        row["updated_at"] = s_updated
        if "version" in ex:
            row["version"] = ex["version"]
        rows.append(row)
    return rows


def _schema_statuses(rng: random.Random, status: str, n: int) -> list[str]:
    if n == 0:
        return []
    if status in QUEUED_STATUSES:
        return [status] * n
    if status not in TERMINAL_STATUSES | RUNNING_STATUSES or status in ("completed", "errors"):
        out = ["completed"] * n
        if status == "errors" and n > 1 and rng.random() < 0.3:
            out[rng.randrange(n)] = "failed"
        return out
    if status in ("failed", "canceled", "interrupted"):
        other = "canceled" if status == "failed" else status
        out = [rng.choice(("completed", other)) for _ in range(n)]
        out[rng.randrange(n)] = status
        return out
    if status == "canceling":
        out = [rng.choice(("completed", "canceled")) for _ in range(n)]
        out[rng.randrange(n)] = "running"
        return out
    out = [rng.choice(("completed", "completed", "scheduled")) for _ in range(n)]
    out[rng.randrange(n)] = status
    return out
