"""What a walk is told, what one process remembers of it, and what it carries to the next run.

The per-sync state a walk leaves (see `SyncWalk._new_state`) is small and bounded: a cursor,
a resume token, the ids read inside the lookback window, the newest page of the default
listing, and a few ids awaiting a detail request. Its size does not grow with history.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from . import settings
from .records import iso, parse_ts


@dataclass
class WalkOptions:
    lookback: timedelta = timedelta(seconds=settings.DEFAULT_LOOKBACK_SECONDS)
    checkpoint_pages: int = settings.DEFAULT_CHECKPOINT_PAGES
    initial_since: datetime | None = None
    since: datetime | None = None  # backfill window [since, until)
    until: datetime | None = None
    run_id: str = ""  # tells two runs apart (deletions are confirmed on separate runs)


@dataclass
class PageMark:
    """A walked page: its token, its first row, and the row whose age makes it safe to resume."""

    token: str | None
    first: datetime
    margin: datetime
    stamps: tuple[datetime | None, ...] = ()  # each item's updated_at (None: quarantined)


@dataclass
class WalkMemory:
    """What one process remembers of a sync's walk across its checkpoints (never persisted)."""

    seen: dict[str, datetime] = field(default_factory=dict)
    pages: list[PageMark] = field(default_factory=list)
    chain: int = 0  # where in `pages` the current unbroken walk began
    anchor: PageMark | None = None  # a resume page cut to size (see `anchor.py`)
    rewinds: int = 0
    next_token: str | None = None  # where this run's next checkpoint continues
    loaded: dict[str, datetime] = field(default_factory=dict)  # yielded to load by this run
    continued: set[str] = field(default_factory=set)


@dataclass
class Batch:
    rows: list[dict[str, Any]]
    rejected: list[dict[str, Any]]
    tables: Any = None  # the rows as Arrow, once the fan-out has converted them


class PageEnd:
    """A walk paused between two pages: the fan-out decides whether it reads on."""

    def __repr__(self) -> str:
        return "PAGE_END"


PAGE_END = PageEnd()


@dataclass
class WalkResult:
    state: dict[str, Any]
    caught_up: bool = False
    pages: int = 0
    executions: int = 0
    schema_rows: int = 0
    skipped: int = 0
    fallbacks: int = 0


def carried_over(
    memory: WalkMemory,
    resume: dict[str, Any] | None,
    recent: dict[str, str],
    threshold: datetime | None,
) -> tuple[dict[str, Any] | None, dict[str, str]]:
    """The resume page and the ids inside the lookback window, for the next walk."""
    if threshold is None:
        return resume, {}
    fits = [m for m in memory.pages if m.margin <= threshold]
    if memory.anchor is not None and memory.anchor.margin <= threshold:
        fits = [memory.anchor]  # the shortest safe resume page there is
    if fits:
        mark = max(fits, key=lambda m: m.first)
        resume = {"token": mark.token, "floor": iso(mark.first)} if mark.token else None
    kept = {i: t for i, t in recent.items() if _at_or_after(t, threshold)}
    kept.update({i: iso(t) for i, t in memory.seen.items() if t >= threshold})
    if len(kept) > settings.MAX_RECENT_IDS:
        # Bounded state even when thousands of rows share one timestamp: the newest are
        # kept; the others are simply re-read and merged again.
        newest = sorted(kept.items(), key=lambda kv: parse_ts(kv[1]) or threshold)
        kept = dict(newest[-settings.MAX_RECENT_IDS :])
    return resume, kept


def _at_or_after(value: str, threshold: datetime) -> bool:
    parsed = parse_ts(value)
    return parsed is not None and parsed >= threshold
