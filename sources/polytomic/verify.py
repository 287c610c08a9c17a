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
from .errors import ApiError, NotFound, RateLimitTooLong
from .listing import start_of
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
    ) -> set[str]:
        """Ids of loaded, not deleted executions whose start lies in `(low, high]`."""
        ...

    def close(self) -> None: ...


@dataclass
class Verified:
    records: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # per sync
    suspects: dict[str, dict[str, str]] = field(default_factory=dict)  # per sync: id -> run
    pages: int = 0
    passes: int = 0


def verify(
    client: PolytomicClient,
    sync_ids: list[str],
    progress: dict[str, Any],
    budget: int,
    warehouse: Warehouse,
    seen: Callable[[str], dict[str, datetime]],
    run_id: str,
) -> Verified:
    """Spend up to `budget` list requests; `progress` (resource state) is updated in place.

    Stops early once every sync has had a whole pass, from its first page, in this run.
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
        memory = seen(sync_id)
        if not _verify_sync(client, sync_id, progress, budget, warehouse, memory, run_id, out):
            break  # out of budget: the next run continues here
        out.passes += 1
        if not resumed:
            whole.add(sync_id)
        index = (index + 1) % len(order)
        progress.clear()
        progress["sync"] = order[index]
    return out


def _verify_sync(
    client: PolytomicClient,
    sync_id: str,
    progress: dict[str, Any],
    budget: int,
    warehouse: Warehouse,
    seen: dict[str, datetime],
    run_id: str,
    out: Verified,
) -> bool:
    """Verify one sync from `progress`; True when its pass reached the end of the listing."""
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
        starts = [start_of(r) or parse_ts(r["updated_at"]) for r in rows]
        low = min((s for s in starts if s is not None), default=high) if page.next_token else None
        listed = {r["id"] for r in rows}
        _compare(sync_id, rows, warehouse, seen, out)
        gone = warehouse.started_between(sync_id, low, high) - listed - previous - set(seen)
        if gone:
            _suspect(client, sync_id, sorted(gone), run_id, out)
        if page.next_token is None:
            return True
        high, previous = low, listed
        progress.update(token=page.next_token, high=iso(low) if low else None, edge=[])
        # Ties at the boundary may sit on either page: remember the last start's ids.
        progress["edge"] = [r["id"] for r, s in zip(rows, starts, strict=True) if s == low]
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


def _suspect(
    client: PolytomicClient, sync_id: str, ids: list[str], run_id: str, out: Verified
) -> None:
    """Loaded rows the listing no longer holds: ask their detail once (bounded per run)."""
    for exec_id in ids[: settings.MAX_SUSPECT_IDS]:
        try:
            record = client.get_execution(sync_id, exec_id)
        except NotFound:
            out.suspects.setdefault(sync_id, {})[exec_id] = run_id
            continue
        except RateLimitTooLong:
            raise
        except ApiError as exc:
            log.warning("sync %s: verifying %s failed (%s)", sync_id, exec_id, exc)
            continue
        out.records.setdefault(sync_id, []).append(record)
