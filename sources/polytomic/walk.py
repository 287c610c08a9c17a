"""Walk one bulk sync's executions, resumably, and decide what is new.

How incremental loading works (the README tells the same story):

* Catch-up and steady state are one ascending walk: `only_terminal=true&ascending=true`.
  Terminal executions are ordered by `updated_at`, so progress is monotone and every page
  we finish is a safe place to stop.
* Why terminal-only: an in-flight execution changes without end; a terminal one changes
  rarely, and when it does its `updated_at` moves it to the end of this order.
* Why per-sync cursors: dlt keeps one incremental cursor per resource. A busy sync would drag
  a quiet sync's cursor forward and its late executions would be dropped. So each sync keeps
  its own small record in the resource state, committed atomically with the data.
* Why a stored page token: the API has no `since` filter. Resuming from the token of a page we
  already walked, instead of page one, keeps an idle run at one request whatever the history.
  The token is opaque, so it is trusted only if the page it returns starts at or before
  `cursor - lookback` (the overlap check). A suffix of a sorted list that starts there holds
  every newer row, keyset or offset tokens alike. A token the API rejects (400) or a page that
  fails the check falls back to a walk from the beginning, which skips loaded rows.
* Why the lookback: a commit can become visible with an `updated_at` behind rows we have
  already served. Every walk re-reads `lookback_seconds`; the merge on `id` absorbs the repeats.
* Offset tokens: if a walked row is updated mid-walk, it moves to the end and every later row
  shifts back one place, so the row at the next page boundary is skipped. We notice the moved
  row when it re-appears with a newer `updated_at` and re-walk from the page where we first
  saw it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from . import settings
from .client import Page, PolytomicClient
from .errors import BadRequest, PaginationError
from .records import execution_row, iso, parse_ts, rejected_row, rejection, schemas_present

log = logging.getLogger("polytomic_etl")

Hydrator = Callable[[str, list[dict[str, Any]]], None]


@dataclass
class WalkOptions:
    lookback: timedelta = timedelta(seconds=settings.DEFAULT_LOOKBACK_SECONDS)
    checkpoint_pages: int = settings.DEFAULT_CHECKPOINT_PAGES
    initial_since: datetime | None = None
    since: datetime | None = None  # backfill window [since, until)
    until: datetime | None = None


@dataclass
class PageMark:
    """A walked page: its token, its first row, and the row whose age makes it safe to resume."""

    token: str | None
    first: datetime
    margin: datetime


@dataclass
class WalkMemory:
    """What one process remembers of a sync's walk across its checkpoints (never persisted)."""

    seen: dict[str, datetime] = field(default_factory=dict)
    pages: list[PageMark] = field(default_factory=list)
    rewinds: int = 0


@dataclass
class Batch:
    rows: list[dict[str, Any]]
    rejected: list[dict[str, Any]]
    tables: Any = None  # the rows as Arrow, once the fan-out has converted them


@dataclass
class WalkResult:
    state: dict[str, Any]
    caught_up: bool = False
    pages: int = 0
    executions: int = 0
    schema_rows: int = 0
    skipped: int = 0
    fallbacks: int = 0


class _Restart(Exception):
    def __init__(self, token: str | None, floor: datetime | None, why: str) -> None:
        self.token, self.floor, self.why = token, floor, why


class SyncWalk:
    """One sync, one load: yields batches of rows, then leaves its new state in `result`."""

    def __init__(
        self,
        client: PolytomicClient,
        sync_id: str,
        state: dict[str, Any] | None,
        options: WalkOptions,
        memory: WalkMemory,
        hydrate: Hydrator,
        snapshot: bool = True,
    ) -> None:
        self.client, self.sync_id, self.opts, self.memory = client, sync_id, options, memory
        self.hydrate, self.snapshot = hydrate, snapshot
        self.old = dict(state or {})
        self.cursor = parse_ts(self.old.get("cursor"))
        self.recent: dict[str, str] = dict(self.old.get("recent") or {})
        self.inflight: dict[str, str] = dict(self.old.get("inflight") or {})
        self.result = WalkResult(state=self.old)
        self.max_seen: datetime | None = self.cursor
        self._prev: datetime | None = None
        self._path = settings.EXECUTIONS_PATH.format(sync_id=sync_id)
        floors = (self.threshold, self.opts.since, self.opts.initial_since)
        self._lower = max((t for t in floors if t is not None), default=None)

    @property
    def threshold(self) -> datetime | None:
        """Rows older than this are loaded already; rows at or after it are (re)read."""
        return self.cursor - self.opts.lookback if self.cursor else None

    def batches(self) -> Iterator[Batch]:
        token = (self.old.get("resume") or {}).get("token")
        floor = self.threshold if token else None
        params = {"only_terminal": "true", "ascending": "true", "limit": settings.PAGE_LIMIT}
        while True:
            try:
                finished = yield from self._walk(params, token, floor)
                break
            except _Restart as restart:
                log.warning("sync %s: %s", self.sync_id, restart.why)
                self.result.fallbacks += 1
                token, floor, self._prev = restart.token, restart.floor, None
        self.result.caught_up = finished
        if finished and self.snapshot and self.opts.until is None and self.opts.since is None:
            yield from self._snapshot()
        self.result.state = self._new_state()

    def _walk(
        self, params: dict[str, Any], token: str | None, floor: datetime | None
    ) -> Generator[Batch, None, bool]:
        """Walk from `token`; return True at the end of the list, False at a checkpoint."""
        pages = self.client.pages(self._path, params, kind="list_executions", token=token)
        progress = 0
        while True:
            try:
                page = next(pages)
            except StopIteration:
                return True
            except BadRequest as exc:
                if floor is None:
                    raise
                raise _Restart(
                    None, None, f"stored page token rejected ({exc}); walking from the start"
                ) from None
            if floor is not None:
                self._check_overlap(page, floor)
                floor = None
            before = self.max_seen
            batch, done, moved_from = self._filter(page)
            if batch.rows or batch.rejected:
                yield batch
            if moved_from is not None:
                self._rewind(moved_from)
            self.result.pages += 1
            # Only pages that move past the cursor count toward the checkpoint: the overlap
            # pages re-read after a resume would otherwise stall a small checkpoint forever.
            if self.max_seen is not None and (before is None or self.max_seen > before):
                progress += 1
            if done:
                return True
            if page.next_token and progress >= self.opts.checkpoint_pages:
                return False

    def _check_overlap(self, page: Page, floor: datetime) -> None:
        dicts = (r for r in page.items if isinstance(r, dict))
        first = next((parse_ts(r.get("updated_at")) for r in dicts), None)
        if first is None or first > floor:
            raise _Restart(
                None, None, "resumed page does not overlap what is loaded; walking from the start"
            )

    def _filter(self, page: Page) -> tuple[Batch, bool, datetime | None]:
        """Keep what must be loaded from one page; True when a backfill passed its window."""
        batch = Batch(rows=[], rejected=[])
        moved: list[datetime] = []
        walked: list[datetime] = []
        done = False
        for raw in page.items:
            reason = rejection(raw)
            if reason:
                batch.rejected.append(rejected_row(raw, self.sync_id, reason))
                log.warning("sync %s: quarantined a record: %s", self.sync_id, reason)
                continue
            ua = parse_ts(raw["updated_at"])
            assert ua is not None
            if self._prev is not None and ua < self._prev:
                raise PaginationError(
                    f"sync {self.sync_id}: executions arrived out of updated_at order "
                    f"({iso(ua)} after {iso(self._prev)}); refusing to guess"
                )
            self._prev = ua
            walked.append(ua)
            previous = self.memory.seen.get(raw["id"])
            if previous is not None and previous != ua:
                moved.append(previous)  # updated mid-walk: offset tokens may have skipped a row
            self.memory.seen[raw["id"]] = ua
            if self.opts.until and ua >= self.opts.until:
                done = True
                break
            self.max_seen = max(self.max_seen or ua, ua)
            if not self._loaded(raw["id"], ua, previous):
                batch.rows.append(raw)
        if walked:
            # Resume only where a few rows of slack survive a shift of the page's start.
            margin = walked[min(len(walked), settings.RESUME_SLACK_ROWS) - 1]
            self.memory.pages.append(PageMark(page.token, walked[0], margin))
        self.result.skipped += len(batch.rejected)
        batch.rows = self._typed(batch.rows)
        return batch, done, min(moved) if moved and not done else None

    def _loaded(self, exec_id: str, ua: datetime, seen_before: datetime | None) -> bool:
        if self._lower is not None and ua < self._lower:
            return True
        if seen_before == ua:  # repeated inside this run (offset tokens shift rows forward)
            return True
        return self.opts.since is None and self.recent.get(exec_id) == iso(ua)

    def _typed(self, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Hydrate records that came without a `schemas` list, then type them."""
        missing = [r for r in records if not schemas_present(r)]
        if missing:
            self.hydrate(self.sync_id, missing)
        rows = [execution_row(r, self.sync_id) for r in records]
        self.result.executions += len(rows)
        self.result.schema_rows += sum(len(r["schemas"]) for r in rows)
        return rows

    def _rewind(self, moved_from: datetime) -> None:
        if self.memory.rewinds >= settings.MAX_REWALKS_PER_SYNC:
            log.warning("sync %s: rows keep moving mid-walk; the next run re-checks", self.sync_id)
            return
        self.memory.rewinds += 1
        # Start strictly before the moved row's old place, so a one-row shift still overlaps.
        marks = [m for m in self.memory.pages if m.first < moved_from]
        mark = max(marks, key=lambda m: m.first) if marks else None
        token = mark.token if mark else None
        raise _Restart(
            token, moved_from if token else None, "a row moved mid-walk; re-walking from before it"
        )

    def _snapshot(self) -> Iterator[Batch]:
        """In-flight executions: one request for the newest page of the default listing.

        Their `updated_at` never moves the cursor; the terminal walk brings their final version.
        Anything not documented as terminal is taken here, so `errors` and `interrupted` are
        loaded even if the server's `only_terminal` leaves them out (UNVERIFIED).
        """
        params = {"limit": settings.PAGE_LIMIT}
        page = next(self.client.pages(self._path, params, kind="list_executions"))
        current: dict[str, str] = {}
        rows = []
        for raw in page.items:
            if rejection(raw) or raw.get("status") in settings.DOCUMENTED_TERMINAL:
                continue
            ua = parse_ts(raw["updated_at"])
            assert ua is not None
            current[raw["id"]] = iso(ua)
            if self.inflight.get(raw["id"]) == iso(ua) or self.memory.seen.get(raw["id"]) == ua:
                continue
            rows.append(raw)
        self.inflight = current
        rows = self._typed(rows)
        if rows:
            yield Batch(rows=rows, rejected=[])

    def _new_state(self) -> dict[str, Any]:
        cursor = self.max_seen
        threshold = cursor - self.opts.lookback if cursor else None
        resume = self.old.get("resume")
        recent: dict[str, str] = {}
        if threshold is not None:
            fits = [m for m in self.memory.pages if m.margin <= threshold]
            if fits:
                mark = max(fits, key=lambda m: m.first)
                resume = {"token": mark.token, "floor": iso(mark.first)} if mark.token else None
            recent = {i: t for i, t in self.recent.items() if _at_or_after(t, threshold)}
            recent.update({i: iso(t) for i, t in self.memory.seen.items() if t >= threshold})
            if len(recent) > settings.MAX_RECENT_IDS:
                # Bounded state even when thousands of rows share one timestamp: the newest
                # are kept; the others are simply re-read and merged again.
                newest = sorted(recent.items(), key=lambda kv: parse_ts(kv[1]) or threshold)
                recent = dict(newest[-settings.MAX_RECENT_IDS :])
        return {
            "cursor": iso(cursor) if cursor else None,
            "resume": resume,
            "recent": recent,
            "inflight": self.inflight,
            "caught_up": self.result.caught_up,
        }


def _at_or_after(value: str, threshold: datetime) -> bool:
    parsed = parse_ts(value)
    return parsed is not None and parsed >= threshold
