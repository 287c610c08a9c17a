"""In-memory records for syncs and executions, and their wire (JSON) rendering.

Timestamps are kept as integer microseconds (or ``None``) and printed only when rendered.
Rendered JSON is cached per record; every mutation must call ``touch()``.
"""

from __future__ import annotations

import copy
import json
import random
import uuid
from dataclasses import dataclass, field
from typing import Any

from .clock import format_us
from .plans import SyncPlan

TIMESTAMP_FIELDS: tuple[str, ...] = ("created_at", "started_at", "completed_at", "updated_at")
EXECUTION_FIELD_ORDER: tuple[str, ...] = (
    "id",
    "type",
    "status",
    "status_message",
    "fetch_mode",
    "output_disposition",
    "is_partial",
    "is_resync",
    "is_test",
    "record_count",
    "error_count",
    "warning_count",
    "created_at",
    "started_at",
    "completed_at",
    "updated_at",
    "version",
)
SCHEMA_FIELD_ORDER: tuple[str, ...] = (
    "schema",
    "output_name",
    "status",
    "status_message",
    "record_count",
    "error_count",
    "warning_count",
    "created_at",
    "started_at",
    "completed_at",
    "updated_at",
    "version",
)
COUNT_FIELDS: tuple[str, ...] = ("record_count", "error_count", "warning_count")

# How the list endpoint renders ``schemas``: full list, key absent, or ``"schemas": null``.
SCHEMAS_FULL = "full"
SCHEMAS_OMIT = "omit"
SCHEMAS_NULL = "null"


def dumps(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


_V4_CLEAR = ~((0xF000 << 64) | (0xC000 << 48))
_V4_SET = (0x4000 << 64) | (0x8000 << 48)


def new_uuid(rng: random.Random) -> str:
    """A version-4 UUID drawn from ``rng`` (deterministic for a seeded generator)."""
    h = f"{(rng.getrandbits(128) & _V4_CLEAR) | _V4_SET:032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def uuid_int(value: str) -> int:
    try:
        return int(value.replace("-", ""), 16)
    except ValueError:
        return uuid.UUID(bytes=value.encode()[:16].ljust(16, b"\0")).int


def _render(raw: dict[str, Any], order: tuple[str, ...]) -> dict[str, Any]:
    out = {key: raw[key] for key in order if key in raw}
    for key in TIMESTAMP_FIELDS:
        value = out.get(key)
        if value is not None:
            out[key] = format_us(value)
    if len(out) != len(raw):  # extra fields added by overrides go last
        for key, value in raw.items():
            if key not in out:
                out[key] = copy.deepcopy(value)
    return out


@dataclass(eq=False)
class Execution:
    """One bulk-sync execution. ``fields`` excludes ``schemas``; timestamps are microseconds."""

    sync_id: str
    fields: dict[str, Any]
    schemas: list[dict[str, Any]]
    _cache: dict[str, bytes] = field(default_factory=dict, repr=False)
    id_int: int = field(default=0, repr=False)

    def __post_init__(self) -> None:
        self.id_int = uuid_int(self.id)

    @property
    def id(self) -> str:
        return str(self.fields["id"])

    @property
    def status(self) -> str:
        return str(self.fields["status"])

    @property
    def start_us(self) -> int:
        """Default ordering key: ``started_at``, else ``created_at`` for rows not started yet."""
        started = self.fields.get("started_at")
        return int(started if started is not None else self.fields["created_at"])

    @property
    def updated_us(self) -> int:
        return int(self.fields["updated_at"])

    def touch(self) -> None:
        self._cache.clear()

    def recount(self) -> None:
        """Execution totals are the sums over its schemas."""
        for name in COUNT_FIELDS:
            self.fields[name] = sum(int(s.get(name) or 0) for s in self.schemas)
        self.touch()

    def wire(self, schemas: str = SCHEMAS_FULL) -> dict[str, Any]:
        out = _render(self.fields, EXECUTION_FIELD_ORDER)
        if schemas == SCHEMAS_FULL:
            out["schemas"] = [_render(s, SCHEMA_FIELD_ORDER) for s in self.schemas]
        elif schemas == SCHEMAS_NULL:
            out["schemas"] = None
        return out

    def json(self, schemas: str = SCHEMAS_FULL) -> bytes:
        cached = self._cache.get(schemas)
        if cached is None:
            cached = self._cache[schemas] = dumps(self.wire(schemas))
        return cached


@dataclass(eq=False)
class SyncRecord:
    """One bulk sync: its wire object plus the sandbox's private bookkeeping."""

    id: str
    index: int
    plan: SyncPlan
    wire_fields: dict[str, Any]
    schema_names: list[tuple[str, str]]  # (schema id, output_name)
    volumes: dict[str, int]
    rng: random.Random
    deleted: bool = False
    version_since_us: int | None = None
    _cache: bytes | None = field(default=None, repr=False)

    @property
    def id_int(self) -> int:
        return uuid_int(self.id)

    @property
    def active(self) -> bool:
        return bool(self.wire_fields["active"])

    @property
    def updated_us(self) -> int:
        return int(self.wire_fields["updated_at"])

    def wire(self) -> dict[str, Any]:
        return _deep_render(self.wire_fields)

    def json(self) -> bytes:
        if self._cache is None:
            self._cache = dumps(self.wire())
        return self._cache

    def touch(self) -> None:
        self._cache = None


_SYNC_TIMESTAMP_KEYS = frozenset({"created_at", "updated_at", "data_cutoff_timestamp"})


def _deep_render(value: Any, key: str | None = None) -> Any:
    if isinstance(value, dict):
        return {k: _deep_render(v, k) for k, v in value.items()}
    if isinstance(value, list):
        return [_deep_render(v) for v in value]
    if key in _SYNC_TIMESTAMP_KEYS and isinstance(value, int) and not isinstance(value, bool):
        return format_us(value)
    return value
