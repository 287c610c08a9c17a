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
  already walked, instead of page one, keeps an idle run at one request whatever the history
  (the page is cut to size when the last one is short: `anchor.py`).
  The token is opaque, so it is trusted only if the page it returns starts at or before
  `cursor - lookback` (the overlap check). A suffix of a sorted list that starts there holds
  every newer row, keyset or offset tokens alike. A token the API rejects (400) or a page that
  fails the check falls back to a walk from the beginning, which skips loaded rows.
* Why the lookback: a commit can become visible with an `updated_at` behind rows we have
  already served. Every walk re-reads `lookback_seconds`; the merge on `id` absorbs the repeats.
* Offset tokens: if a walked row is updated mid-walk, it moves to the end and every later row
  shifts back one place, so the row at the next page boundary is skipped. We notice the moved
  row when it re-appears with a newer `updated_at` and re-walk from the page where we first
  saw it, loading every row of that stretch this run has not seen, however old. Shifts we
  cannot see in O(new) requests (an old row re-updated or deleted mid-walk) are healed by
  the rolling verification (`verify.py`).
* Why the cursor is capped at the present: one execution stamped by a clock running ahead
  would otherwise become the cursor, and every row committed after it with a correct clock
  would fall below `cursor - lookback`. The present is the earlier of the local clock and
  the server's `Date`; the skewed row itself is loaded, and re-read until the present
  passes it (its id in `recent` keeps that free).
* A stored page token that fails (400, 404 or 410) says nothing about the sync: the walk
  starts afresh from the beginning, once. Only the sync list decides that a sync is gone.
* Checkpoints of one run continue from the exact next token of the previous checkpoint; the
  stored resume token is for the next run (or a killed one).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Generator, Iterator
from datetime import datetime
from typing import Any

from . import settings
from .anchor import reanchor
from .client import Page, PolytomicClient
from .errors import ApiError, PaginationError
from .listing import read_listing
from .progress import (
    PAGE_END,
    Batch,
    PageEnd,
    PageMark,
    WalkMemory,
    WalkOptions,
    WalkResult,
    carried_over,
)
from .recheck import Detail, recheck
from .records import (
    UPDATED,
    execution_row,
    iso,
    parse_ts,
    rejected_row,
    rejection,
    schemas_present,
)

__all__ = ["PAGE_END", "Batch", "PageEnd", "SyncWalk", "WalkMemory", "WalkOptions"]

log = logging.getLogger("polytomic_etl")

# Completes records that came without `schemas`; returns the ids whose detail failed.
Hydrator = Callable[[str, list[dict[str, Any]]], set[str]]
_TOKEN_FAILURES = (400, 404, 410)


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
        detail: Detail,
        learned: dict[str, Any],
    ) -> None:
        self.client, self.sync_id, self.opts, self.memory = client, sync_id, options, memory
        self.hydrate, self.detail, self.learned = hydrate, detail, learned
        self.old = dict(state or {})
        self.cursor = parse_ts(self.old.get("cursor"))
        self.recent: dict[str, str] = dict(self.old.get("recent") or {})
        self.inflight: dict[str, str] = dict(self.old.get("inflight") or {})
        self.settled: dict[str, str] = dict(self.old.get("settled") or {})
        self.retry: dict[str, Any] = dict(self.old.get("retry") or {})
        self.suspects: dict[str, str] = dict(self.old.get("suspects") or {})
        self.horizon = parse_ts(self.old.get("horizon"))
        self.inflight_low = parse_ts(self.old.get("inflight_low"))
        self.deleted: list[str] = []
        self.result = WalkResult(state=self.old)
        self.max_seen: datetime | None = self.cursor
        self._prev: datetime | None = None
        self._restarted = False
        self._path = settings.EXECUTIONS_PATH.format(sync_id=sync_id)
        # An explicit backfill window loads what it names, even before `initial_since`.
        first = self.opts.initial_since if self.opts.since is None else None
        floors = (self.threshold, self.opts.since, first)
        self._lower = max((t for t in floors if t is not None), default=None)

    @property
    def threshold(self) -> datetime | None:
        """Rows older than this are loaded already; rows at or after it are (re)read."""
        return self.cursor - self.opts.lookback if self.cursor else None

    def batches(self) -> Generator[Batch | PageEnd, bool | None, None]:
        """Batches of rows; after each page with a next token, `PAGE_END`.

        At `PAGE_END` the walk pauses for the fan-out's turn-taking: it is resumed with
        `send(True)` (or `next`) to read the next page, or with `send(False)` to stop at this
        page as a checkpoint (the load's row budget is spent).
        """
        token, floor = self._start()
        params = {"only_terminal": "true", "ascending": "true", "limit": settings.PAGE_LIMIT}
        while True:
            try:
                finished = yield from self._walk(params, token, floor)
                break
            except _Restart as restart:
                log.warning("sync %s: %s", self.sync_id, restart.why)
                self.result.fallbacks += 1
                token, floor, self._prev = restart.token, restart.floor, None
                self.memory.chain = len(self.memory.pages)
        self.result.caught_up = finished
        steady = finished and self.opts.until is None and self.opts.since is None
        if steady:
            yield from self._listing()
        self.result.state = self._new_state(params if steady else None)

    def _start(self) -> tuple[str | None, datetime | None]:
        """Where this walk starts: this run's last checkpoint, else the stored resume page."""
        token, self.memory.next_token = self.memory.next_token, None
        if token is not None:
            if token in self.memory.continued:
                raise PaginationError(f"sync {self.sync_id}: a page token came back twice")
            self.memory.continued.add(token)
            return token, None
        self.memory.chain, self.memory.anchor = len(self.memory.pages), None
        token = (self.old.get("resume") or {}).get("token")
        return token, (self.threshold if token else None)

    def _walk(
        self, params: dict[str, Any], token: str | None, floor: datetime | None
    ) -> Generator[Batch | PageEnd, bool | None, bool]:
        """Walk from `token`; return True at the end of the list, False at a checkpoint."""
        pages = self.client.pages(self._path, params, kind="list_executions", token=token)
        progress = 0
        first = True
        while True:
            try:
                page = next(pages)
            except StopIteration:
                return True
            except ApiError as exc:
                if not first or token is None or exc.status not in _TOKEN_FAILURES:
                    raise
                if self._restarted:
                    raise
                self._restarted = True
                why = f"a stored page token failed ({exc}); walking afresh from the start"
                raise _Restart(None, None, why) from None
            first = False
            if floor is not None and (page.items or not page.next_token):
                self._check_overlap(page, floor)  # on the first page with rows, or the last
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
            if not page.next_token:
                continue  # the pager ends the list (or follows a few empty pages)
            if progress >= self.opts.checkpoint_pages or (yield PAGE_END) is False:
                self.memory.next_token = page.next_token
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
        stamps: list[datetime | None] = []
        done = False
        for raw in page.items:
            reason = rejection(raw)
            stamps.append(None if reason else parse_ts(raw["updated_at"]))
            if reason:
                batch.rejected.append(rejected_row(raw, self.sync_id, reason))
                log.warning("sync %s: quarantined a record: %s", self.sync_id, reason)
                continue
            ua = stamps[-1]
            assert ua is not None
            if self._prev is not None and ua < self._prev:
                raise PaginationError(
                    f"sync {self.sync_id}: executions arrived out of updated_at order "
                    f"({iso(ua)} after {iso(self._prev)}); refusing to guess"
                )
            self._prev = ua
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
        walked = [t for t in stamps if t is not None]
        if walked:
            # Resume only where a few rows of slack survive a shift of the page's start.
            margin = walked[min(len(walked), settings.RESUME_SLACK_ROWS) - 1]
            self.memory.pages.append(PageMark(page.token, walked[0], margin, tuple(stamps)))
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
        failed = self.hydrate(self.sync_id, missing) if missing else set()
        rows = [execution_row(r, self.sync_id) for r in records]
        for row in rows:
            self.memory.loaded[row["id"]] = row[UPDATED]
        for row in rows:
            if row["id"] in failed:
                # Its schema rows stay as they are until a detail request answers.
                row["schemas"] = None
                self.retry.setdefault(row["id"], 0)
        if len(self.retry) > settings.MAX_RETRY_IDS:
            # Too many to remember: fail the sync, so that its state does not move and the
            # next run asks again, rather than forget any.
            raise ApiError(
                f"sync {self.sync_id}: detail requests failed for {len(self.retry)} "
                "executions; the next run retries them"
            )
        self.result.executions += len(rows)
        self.result.schema_rows += sum(len(r["schemas"] or ()) for r in rows)
        return rows

    def _rewind(self, moved_from: datetime) -> None:
        if self.memory.rewinds >= settings.MAX_REWALKS_PER_SYNC:
            log.warning("sync %s: rows keep moving mid-walk; the next run re-checks", self.sync_id)
            return
        self.memory.rewinds += 1
        # The row skipped by the shift lies after this run's first page but may already be
        # below the lower bound: load every row of the re-walk this run has not seen.
        if self._lower is not None and self.memory.pages:
            self._lower = min(self._lower, self.memory.pages[0].first)
        # Start strictly before the moved row's old place, so a one-row shift still overlaps.
        marks = [m for m in self.memory.pages if m.first < moved_from]
        mark = max(marks, key=lambda m: m.first) if marks else None
        token = mark.token if mark else None
        raise _Restart(
            token, moved_from if token else None, "a row moved mid-walk; re-walking from before it"
        )

    def _listing(self) -> Iterator[Batch]:
        """The default listing and the detail re-checks (see `listing.py`, `recheck.py`)."""
        first = self.memory.pages[0].first if self.memory.pages else None
        walked = (first, self.max_seen) if first and self.max_seen else None

        def known(exec_id: str, ua: datetime) -> bool:
            stamp = iso(ua)
            return stamp in (
                self.inflight.get(exec_id),
                self.settled.get(exec_id),
                self.recent.get(exec_id),
            )

        found = read_listing(
            self.client,
            self._path,
            horizon=self.horizon,
            lookback=self.opts.lookback,
            whole=self.horizon is None and self.learned.get("terminal_filter") != "all",
            deep=self.learned.get("terminal_filter") != "all",
            known=known,
            walked=walked,
            seen=self.memory.seen,
        )
        if found.evidence:
            self.learned["terminal_filter"] = found.evidence
        listed = found.listed | set(self.memory.seen)
        vanished = {i: t for i, t in self.inflight.items() if i not in listed}
        checked = recheck(
            self.sync_id,
            self.detail,
            retry=self.retry,
            suspects=self.suspects,
            vanished=vanished,
            vanished_start=parse_ts(self.old.get("inflight_low")),
            listed=listed,
            covers=found.covers,
            run_id=self.opts.run_id,
        )
        self.inflight_low = found.first_low
        inflight = {**found.inflight, **checked.inflight}
        self.inflight = dict(list(inflight.items())[: settings.MAX_INFLIGHT_IDS])
        self.settled, self.horizon = found.settled, found.horizon
        self.retry, self.suspects, self.deleted = checked.retry, checked.suspects, checked.deleted
        rows = self._typed(found.rows + checked.rows)
        for row in rows:
            self.memory.seen[row["id"]] = row[UPDATED]
        if rows:
            yield Batch(rows=rows, rejected=[])

    def _new_state(self, params: dict[str, Any] | None) -> dict[str, Any]:
        cursor = self.max_seen
        if cursor is not None:
            cursor = min(cursor, self.client.present())
        threshold = cursor - self.opts.lookback if cursor else None
        if params is not None and threshold is not None:
            # A walk that reached the end may leave a resume page cut to size (`anchor.py`):
            # then an idle run reads one terminal page, whatever the page alignment.
            reanchor(self.client, self._path, self.memory, threshold, params)
        resume, recent = carried_over(self.memory, self.old.get("resume"), self.recent, threshold)
        return {
            "cursor": iso(cursor) if cursor else None,
            "resume": resume,
            "recent": recent,
            "inflight": self.inflight,
            "settled": self.settled,
            "horizon": iso(self.horizon) if self.horizon else None,
            "inflight_low": iso(self.inflight_low) if self.inflight_low else None,
            "retry": self.retry,
            "suspects": self.suspects,
            "caught_up": self.result.caught_up,
        }
