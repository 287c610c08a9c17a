"""Rolling verification: heal, over many runs, what no O(new) walk can see.

With offset-style page tokens, an old row re-updated or deleted while a walk is under way
shifts every later row by one place, and the row at the next page boundary is skipped for
good; nothing in the walk shows it. So each run also spends at most `verify_pages_per_run`
list requests re-reading part of one sync's history, from where the previous run stopped,
and compares it with the warehouse:

* a listed execution that is missing, or loaded at another `updated_at`, is loaded;
* a loaded execution whose start time lies in the stretch just read but which the listing
  no longer holds becomes a deletion suspect (confirmed by a second 404 on a later run).

It reads the default listing (start time, newest first): it holds every status whatever
`only_terminal` means, and start times never move, so the stretch boundaries are stable.
Progress is kept in the resource state; a full pass covers every sync over many runs.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from . import settings
from .client import PolytomicClient
from .errors import ApiError, AuthError, NotFound, RateLimitTooLong
from .listing import start_of
from .recheck import fetch_detail, suspect_entry, suspect_of
from .records import iso, parse_ts, rejection

log = logging.getLogger("polytomic_etl")
_TOKEN_FAILURES = (400, 404, 410)


class Warehouse(Protocol):
    """What is loaded already. The runner provides it; without one nothing is verified."""

    def loaded(self, sync_id: str, ids: list[str]) -> dict[str, datetime]:
        """`updated_at` of these executions, for those loaded and not marked deleted."""
        ...

    def started_between(
        self, sync_id: str, low: datetime | None, high: datetime | None
    ) -> dict[str, datetime]:
        """Loaded, not deleted executions whose start lies in `(low, high]`, with it."""
        ...

    def close(self) -> None: ...


@dataclass
class Verified:
    records: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # per sync
    suspects: dict[str, dict[str, list[Any]]] = field(default_factory=dict)  # per sync
    deleted: dict[str, list[str]] = field(default_factory=dict)  # per sync, confirmed
    pages: int = 0
    passes: int = 0
    details: int = 0  # detail requests, capped per run


def verify(
    client: PolytomicClient,
    sync_ids: list[str],
    progress: dict[str, Any],
    budget: int,
    warehouse: Warehouse,
    seen: Callable[[str], dict[str, datetime]],
    run_id: str,
    suspects: Callable[[str], dict[str, Any]],
) -> Verified:
    """Spend up to `budget` list requests; `progress` (resource state) is updated in place.

    Stops early once every sync has had a whole pass, from its first page, in this run. A
    sync whose listing fails is skipped until the next pass; the others go on.
    """
    out = Verified()
    order = sorted(sync_ids)
    if not order or budget <= 0:
        return out
    whole: set[str] = set()
    index = order.index(progress["sync"]) if progress.get("sync") in order else 0
    while out.pages < budget and len(whole) < len(order):
        sync_id = order[index]
        resumed = progress.get("sync") == sync_id and bool(progress.get("token"))
        if not resumed:
            progress.clear()
            progress["sync"] = sync_id
        context = _Sync(sync_id, seen(sync_id), suspects(sync_id), run_id)
        try:
            done = _verify_sync(client, context, progress, budget, warehouse, out)
        except (RateLimitTooLong, AuthError):
            raise
        except ApiError as exc:
            log.warning("sync %s: verification skipped this pass (%s)", sync_id, exc)
            done, resumed = True, True
        if not done:
            break  # out of budget: the next run continues here
        out.passes += 1
        if not resumed:
            whole.add(sync_id)
        index = (index + 1) % len(order)
        progress.clear()
        progress["sync"] = order[index]
    return out


@dataclass
class _Sync:
    sync_id: str
    seen: dict[str, datetime]  # yielded to load by this run already
    suspects: dict[str, Any]  # from earlier runs: id -> [run, start]
    run_id: str


def _verify_sync(
    client: PolytomicClient,
    ctx: _Sync,
    progress: dict[str, Any],
    budget: int,
    warehouse: Warehouse,
    out: Verified,
) -> bool:
    """Verify one sync from `progress`; True when its pass reached the end of the listing."""
    sync_id, seen = ctx.sync_id, ctx.seen
    path = settings.EXECUTIONS_PATH.format(sync_id=sync_id)
    token = progress.get("token")
    high = parse_ts(progress.get("high"))
    previous: set[str] = set(progress.get("edge") or [])
    pages = client.pages(path, {"limit": settings.PAGE_LIMIT}, kind="list_executions", token=token)
    first = True
    while out.pages < budget:
        try:
            page = next(pages)
        except StopIteration:
            return True
        except NotFound:
            if not first or token is None:
                log.warning("sync %s: not found while verifying; skipped", sync_id)
                return True
            page = None
        except ApiError as exc:
            if isinstance(exc, RateLimitTooLong) or not first or token is None:
                raise
            if exc.status not in _TOKEN_FAILURES:
                raise
            page = None
        out.pages += 1
        if page is None:  # the stored token failed: this sync's pass starts again
            log.warning("sync %s: verification token failed; starting its pass again", sync_id)
            token, high, previous = None, None, set()
            progress.clear()
            progress["sync"] = sync_id
            pages = client.pages(path, {"limit": settings.PAGE_LIMIT}, kind="list_executions")
            continue
        first = False
        rows = [r for r in page.items if not rejection(r)]
        if not rows and page.next_token:
            progress.update(token=page.next_token)  # an empty page mid-list: nothing to compare
            continue
        starts = [start_of(r) or parse_ts(r["updated_at"]) for r in rows]
        low = min((s for s in starts if s is not None), default=high) if page.next_token else None
        listed = {r["id"] for r in rows}
        _compare(sync_id, rows, warehouse, seen, out)
        between = warehouse.started_between(sync_id, low, high)
        gone = {i: t for i, t in between.items() if i not in listed | previous and i not in seen}
        if gone:
            _gone(client, ctx, gone, warehouse, out)
        if page.next_token is None:
            return True
        high, previous = low, listed
        # Ties at the boundary may sit on either page: remember the last start's ids.
        edge = [r["id"] for r, s in zip(rows, starts, strict=True) if s == low]
        progress.update(token=page.next_token, high=iso(low) if low else None, edge=edge)
    return False


def _compare(
    sync_id: str,
    rows: list[dict[str, Any]],
    warehouse: Warehouse,
    seen: dict[str, datetime],
    out: Verified,
) -> None:
    loaded = warehouse.loaded(sync_id, [r["id"] for r in rows]) if rows else {}
    for raw in rows:
        ua = parse_ts(raw["updated_at"])
        if seen.get(raw["id"]) == ua or loaded.get(raw["id"]) == ua:
            continue
        out.records.setdefault(sync_id, []).append(raw)


def _gone(
    client: PolytomicClient,
    ctx: _Sync,
    gone: dict[str, datetime],
    warehouse: Warehouse,
    out: Verified,
) -> None:
    """Loaded rows the listing no longer holds where they started: ask their detail.

    A 404 makes a suspect; a suspect from an earlier run that 404s again is deleted. The
    detail requests are capped per run; the rest wait for the next pass.
    """
    detail = fetch_detail(lambda exec_id: client.get_execution(ctx.sync_id, exec_id))
    for exec_id in sorted(gone):
        if out.details >= settings.MAX_SUSPECT_IDS:
            return
        out.details += 1
        try:
            record = detail(exec_id)
        except RateLimitTooLong:
            raise
        except ApiError as exc:
            log.warning("sync %s: verifying %s failed (%s)", ctx.sync_id, exec_id, exc)
            continue
        if record is None:  # 404
            earlier = ctx.suspects.get(exec_id)
            if earlier and suspect_of(earlier)[0] != ctx.run_id:
                out.deleted.setdefault(ctx.sync_id, []).append(exec_id)
            else:
                entry = suspect_entry(ctx.run_id, gone[exec_id])
                out.suspects.setdefault(ctx.sync_id, {})[exec_id] = entry
            continue
        loaded = warehouse.loaded(ctx.sync_id, [exec_id]).get(exec_id)
        if loaded != parse_ts(record["updated_at"]):
            out.records.setdefault(ctx.sync_id, []).append(record)
