"""Walk many syncs at once with a bounded pool, taking turns, within one load's row budget;
apply each sync's new state when it stops.

Workers only fetch. Rows and state changes reach dlt from the extracting thread, so a sync's
cursor is written after all of its rows were yielded into the same load package. A sync that
fails keeps its old state; the rows it did yield are whole pages and the merge absorbs them.
"""

from __future__ import annotations

import logging
import queue
from collections import deque
from collections.abc import Generator, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import pyarrow.compute as pc

from .client import PolytomicClient
from .context import RunContext
from .errors import ApiError, AuthError, NotFound, PolytomicError, RateLimitTooLong
from .recheck import fetch_detail
from .tables import PageTables, concat, newest_versions, page_tables
from .walk import PAGE_END, Batch, PageEnd, SyncWalk, WalkMemory, WalkOptions

log = logging.getLogger("polytomic_etl")


@dataclass
class _Walker:
    walk: SyncWalk
    steps: Generator[Batch | PageEnd, bool | None, None]
    started: bool = False


def walk_syncs(
    client: PolytomicClient,
    sync_ids: list[str],
    states: dict[str, Any],
    options: WalkOptions,
    context: RunContext,
    concurrency: int,
    hydration_workers: int,
    max_rows: int,
) -> Iterator[Batch]:
    """Yield one load's batches from all syncs; write `states[sync_id]` as each sync stops.

    The load's row budget (`max_rows`: execution plus schema rows) is shared fairly: pages
    are taken round-robin across the syncs, one page per turn, until the budget is spent.
    Then every sync that was walking stops at its page boundary (a checkpoint), and the
    syncs that got no turn go first in the next load. A page is started only while the rows
    gathered, plus a page's worth for each page in flight, fit the budget; a page's worth is
    the largest page seen so far in this run (before the first one, one page at a time).
    So memory is bounded by the budget, not by syncs x `checkpoint_pages`, and a load
    overshoots by at most about one page.
    """
    inbox: queue.Queue[tuple[str, str, Any]] = queue.Queue()
    for memory in context.memory.values():
        # The verification compares rows with the warehouse, where earlier loads of this
        # run are by now: only this load's rows need remembering.
        memory.loaded.clear()
    hydrators = ThreadPoolExecutor(hydration_workers, thread_name_prefix="hydrate")

    def hydrate(sync_id: str, records: list[dict[str, Any]]) -> set[str]:
        """Fill in `schemas` from the detail endpoint; return the ids whose request failed.

        A failure (even a 404: the execution is listed) is not "no schemas": the caller
        leaves that execution's schema rows alone and retries on the next run.
        """

        def fetch(record: dict[str, Any]) -> str | None:
            try:
                detail = client.get_execution(sync_id, record["id"])
            except RateLimitTooLong:
                raise
            except ApiError as exc:
                log.warning("sync %s: no detail for %s yet (%s)", sync_id, record["id"], exc)
                return record["id"]
            schemas = detail.get("schemas")
            if not isinstance(schemas, list):
                return record["id"]
            record["schemas"] = schemas
            return None

        return {i for i in hydrators.map(fetch, records) if i is not None}

    def walker(sync_id: str) -> _Walker:
        memory = context.walk_memory(sync_id)
        detail = fetch_detail(lambda exec_id: client.get_execution(sync_id, exec_id))
        walk = SyncWalk(
            client, sync_id, states.get(sync_id), options, memory, hydrate, detail, context.learned
        )
        return _Walker(walk, walk.batches())

    def step(sync_id: str, current: _Walker, go_on: bool) -> None:
        """Advance one walk to its next page boundary, or its end; report to the inbox.

        Every path ends with exactly one final message ("page" or an outcome), or the
        consumer would wait forever.
        """
        rows = 0
        try:
            item = current.steps.send(go_on) if current.started else next(current.steps)
            current.started = True
            while item is not PAGE_END:
                assert isinstance(item, Batch)
                if item.rows:  # to Arrow here, in the walking thread, and compact early
                    item.tables, item.rows = page_tables(item.rows), []
                    rows += item.tables.executions.num_rows + item.tables.children.num_rows
                inbox.put(("batch", sync_id, item))
                item = next(current.steps)
            inbox.put(("page", sync_id, rows))
        except StopIteration:
            inbox.put(("done", sync_id, (current.walk, rows)))
        except (AuthError, RateLimitTooLong) as exc:
            inbox.put(("fatal", sync_id, exc))
        except NotFound:
            inbox.put(("gone", sync_id, None))
        except PolytomicError as exc:
            inbox.put(("failed", sync_id, exc))
        except Exception as exc:  # an unexpected bug in one sync must not hide the others
            log.exception("sync %s: unexpected error", sync_id)
            inbox.put(("failed", sync_id, exc))

    # A sync's rows are held until its walk stops in this load, so each execution leaves at
    # most once per load, in its newest version: its schema rows are then replaced as a
    # whole, never mixed from two versions.
    buffers: dict[str, list[PageTables]] = {}
    finished: list[PageTables] = []  # each sync's rows of this load, once it stopped
    walkers: dict[str, _Walker] = {}
    todo = set(sync_ids)
    first = [i for i in context.first_next if i in todo]
    ready = deque(dict.fromkeys(first + sync_ids))  # the syncs left out last time go first
    in_flight: set[str] = set()  # syncs with a page being read
    used = 0

    def room() -> bool:
        if not in_flight and used == 0:
            return True  # every load reads at least one page
        if context.page_rows is None:
            return not in_flight  # one page at a time until a page's size is known
        return used + (len(in_flight) + 1) * context.page_rows <= max_rows

    def outcome(kind: str, sync_id: str, payload: Any) -> None:
        pages = buffers.pop(sync_id, [])
        if pages and kind != "fatal":
            finished.append(_merged(context, pages))
        if kind == "done":
            _finish(context, states, sync_id, payload)
        elif kind == "gone":
            log.warning("sync %s: not found (deleted?); skipped, its history stays", sync_id)
            context.gone.add(sync_id)
            context.pending.discard(sync_id)
            context.counts["syncs_done"] += 1
        elif kind == "fatal":
            context.fatal = payload
        else:
            context.failed[sync_id] = str(payload)
            context.pending.discard(sync_id)
            context.counts["syncs_done"] += 1
            log.error("sync %s failed: %s", sync_id, payload)
        if sync_id not in context.pending and sync_id in context.memory:
            # Not walked again in this run: what it saw mid-walk can go (memory stays flat in
            # the number of syncs); this load's rows stay for the verification.
            context.memory[sync_id] = WalkMemory(loaded=context.memory[sync_id].loaded)
            walkers.pop(sync_id, None)

    pool = ThreadPoolExecutor(max(1, concurrency), thread_name_prefix="walk")
    try:
        while True:
            while ready and len(in_flight) < max(1, concurrency) and room():
                sync_id = ready.popleft()
                current = walkers.get(sync_id) or walkers.setdefault(sync_id, walker(sync_id))
                in_flight.add(sync_id)
                pool.submit(step, sync_id, current, True)
            if not in_flight:
                break
            kind, sync_id, payload = inbox.get()
            if kind == "batch":
                context.counts["skipped"] += len(payload.rejected)
                if payload.rejected:
                    yield Batch(rows=[], rejected=payload.rejected)
                if payload.tables is not None:
                    buffers.setdefault(sync_id, []).append(payload.tables)
                    used += payload.tables.executions.num_rows + payload.tables.children.num_rows
                continue
            in_flight.discard(sync_id)
            rows = payload if kind == "page" else payload[1] if kind == "done" else None
            if rows is not None:
                context.page_rows = max(context.page_rows or 0, rows)
            if kind == "page":
                ready.append(sync_id)  # round-robin: its next page waits for the others
                continue
            outcome(kind, sync_id, payload[0] if kind == "done" else payload)
            if kind == "fatal":
                return
        # The budget is spent: walks paused between pages stop there (no request is made),
        # and the syncs that got no turn go first in the next load.
        context.first_next = [i for i in ready if i not in walkers]
        context.pending.update(context.first_next)
        for sync_id in [i for i in ready if i in walkers]:
            step(sync_id, walkers[sync_id], False)
            kind, _, payload = inbox.get()
            while kind == "batch":  # none is expected: a stopping walk reads nothing
                buffers.setdefault(sync_id, []).append(payload.tables)
                kind, _, payload = inbox.get()
            outcome(kind, sync_id, payload[0] if kind == "done" else payload)
            if kind == "fatal":
                return
        if finished:  # one pair of tables per load, not per sync: dlt's cost is per item
            yield Batch(rows=[], rejected=[], tables=concat(finished))
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
        hydrators.shutdown(wait=True, cancel_futures=True)


def _merged(context: RunContext, pages: list[PageTables]) -> PageTables:
    """One sync's rows of this load, each execution in its newest version."""
    merged = newest_versions(pages)
    context.counts["executions"] += merged.executions.num_rows
    children = merged.children
    if "_tombstone" in children.column_names:
        children = children.filter(pc.invert(pc.fill_null(children["_tombstone"], False)))
    context.counts["schema_rows"] += children.num_rows
    return merged


def _finish(context: RunContext, states: dict[str, Any], sync_id: str, walk: SyncWalk) -> None:
    result = walk.result
    states[sync_id] = result.state
    log.info(
        "sync %s: %d page(s), %d execution(s), %d schema row(s), %d fallback(s); cursor %s%s",
        sync_id,
        result.pages,
        result.executions,
        result.schema_rows,
        result.fallbacks,
        (result.state or {}).get("cursor"),
        "" if result.caught_up else "; continues in the next load",
    )
    for name in ("pages", "fallbacks"):
        context.counts[name] += getattr(result, name)
    if walk.deleted:
        context.deleted.setdefault(sync_id, []).extend(walk.deleted)
    if result.caught_up:
        context.pending.discard(sync_id)
        context.counts["syncs_done"] += 1
    elif walk.memory.next_token is None:
        # A checkpoint with nowhere to continue would repeat forever: stop this sync.
        context.failed[sync_id] = "the walk made no progress past its cursor"
        context.pending.discard(sync_id)
        context.counts["syncs_done"] += 1
    else:
        context.pending.add(sync_id)
