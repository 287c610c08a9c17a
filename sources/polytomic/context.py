"""What the successive loads (checkpoints) of one run in one process share."""

from __future__ import annotations

import uuid
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from .client import PolytomicClient
from .progress import WalkMemory


@dataclass
class RunContext:
    """Shared by the successive loads (checkpoints) of one run in one process."""

    syncs: list[dict[str, Any]] | None = None
    syncs_emitted: bool = False
    memory: dict[str, WalkMemory] = field(default_factory=dict)
    pending: set[str] = field(default_factory=set)
    failed: dict[str, str] = field(default_factory=dict)
    gone: set[str] = field(default_factory=set)
    counts: Counter[str] = field(default_factory=Counter)
    fatal: BaseException | None = None
    loads: int = 0
    client: PolytomicClient | None = None
    learned: dict[str, Any] = field(default_factory=dict)  # what the API has shown of itself
    deleted: dict[str, list[str]] = field(default_factory=dict)  # confirmed, per sync
    warehouse: Any = None  # what is loaded already, for the verification (the runner's)
    verified: bool = False
    active: bool | None = None  # the configured `active` filter of the sync list
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    first_next: list[str] = field(default_factory=list)  # syncs left out of the last load
    page_rows: int | None = None  # the most rows one page (one turn of a walk) has given

    def walk_memory(self, sync_id: str) -> WalkMemory:
        return self.memory.setdefault(sync_id, WalkMemory())
