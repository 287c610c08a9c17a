"""Walk many syncs at once with a bounded pool; apply each sync's new state when it finishes.

Workers only fetch. Rows and state changes reach dlt from the extracting thread, so a sync's
cursor is written after all of its rows were yielded into the same load package. A sync that
fails keeps its old state; the rows it did yield are whole pages and the merge absorbs them.
"""

from __future__ import annotations

import logging
import queue
import threading
import uuid
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import pyarrow.compute as pc

from .client import PolytomicClient
from .errors import ApiError, AuthError, NotFound, PolytomicError, RateLimitTooLong
from .recheck import fetch_detail
from .tables import PageTables, newest_versions, page_tables
from .walk import Batch, SyncWalk, WalkMemory, WalkOptions

log = logging.getLogger("polytomic_etl")


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

    def walk_memory(self, sync_id: str) -> WalkMemory:
        return self.memory.setdefault(sync_id, WalkMemory())


_STOP = object()


def walk_syncs(
    client: PolytomicClient,
    sync_ids: list[str],
    states: dict[str, Any],
    options: WalkOptions,
    context: RunContext,
    concurrency: int,
    hydration_workers: int,
) -> Iterator[Batch]:
    """Yield batches from all syncs; write `states[sync_id]` as each sync finishes its part."""
    inbox: queue.Queue[tuple[str, str, Any]] = queue.Queue(maxsize=max(4, concurrency * 4))
    stop = threading.Event()
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

    def put(item: tuple[str, str, Any]) -> None:
        while not stop.is_set():
            try:
                inbox.put(item, timeout=0.2)
                return
            except queue.Full:
                continue

    def work(sync_id: str) -> None:
        try:  # every path ends with exactly one final message, or the consumer would wait forever
            memory = context.walk_memory(sync_id)
            detail = fetch_detail(lambda exec_id: client.get_execution(sync_id, exec_id))
            walk = SyncWalk(
                client,
                sync_id,
                states.get(sync_id),
                options,
                memory,
                hydrate,
                detail,
                context.learned,
            )
            for batch in walk.batches():
                if stop.is_set():
                    return
                if batch.rows:  # to Arrow here, in the walking thread, and compact early
                    batch.tables, batch.rows = page_tables(batch.rows), []
                put(("batch", sync_id, batch))
            put(("done", sync_id, walk))
        except (AuthError, RateLimitTooLong) as exc:
            put(("fatal", sync_id, exc))
        except NotFound:
            put(("gone", sync_id, None))
        except PolytomicError as exc:
            put(("failed", sync_id, exc))
        except Exception as exc:  # an unexpected bug in one sync must not hide the others
            log.exception("sync %s: unexpected error", sync_id)
            put(("failed", sync_id, exc))

    # A sync's rows are held until its walk finishes this load (at most `checkpoint_pages`
    # pages), so each execution leaves at most once per load, in its newest version: its
    # schema rows are then replaced as a whole, never mixed from two versions.
    buffers: dict[str, list[PageTables]] = {}
    pool = ThreadPoolExecutor(max(1, concurrency), thread_name_prefix="walk")
    try:
        for sync_id in sync_ids:
            pool.submit(work, sync_id)
        remaining = len(sync_ids)
        while remaining:
            kind, sync_id, payload = inbox.get()
            if kind == "batch":
                context.counts["skipped"] += len(payload.rejected)
                if payload.rejected:
                    yield Batch(rows=[], rejected=payload.rejected)
                if payload.tables is not None:
                    buffers.setdefault(sync_id, []).append(payload.tables)
                continue
            remaining -= 1
            pages = buffers.pop(sync_id, [])
            if pages and kind != "fatal":
                merged = newest_versions(pages)
                context.counts["executions"] += merged.executions.num_rows
                children = merged.children
                if "_tombstone" in children.column_names:
                    children = children.filter(
                        pc.invert(pc.fill_null(children["_tombstone"], False))
                    )
                context.counts["schema_rows"] += children.num_rows
                yield Batch(rows=[], rejected=[], tables=merged)
            if kind == "done":
                _finish(context, states, sync_id, payload)
            elif kind == "gone":
                log.warning("sync %s: not found (deleted?); skipped, its history stays", sync_id)
                context.gone.add(sync_id)
                context.pending.discard(sync_id)
                context.counts["syncs_done"] += 1
            elif kind == "fatal":
                context.fatal = payload
                stop.set()
                return
            else:
                context.failed[sync_id] = str(payload)
                context.pending.discard(sync_id)
                context.counts["syncs_done"] += 1
                log.error("sync %s failed: %s", sync_id, payload)
    finally:
        stop.set()
        pool.shutdown(wait=True, cancel_futures=True)
        hydrators.shutdown(wait=True, cancel_futures=True)


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
