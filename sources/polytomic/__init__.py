"""Polytomic bulk-sync execution history, as a dlt source.

Three tables, merged on their ids, in the dataset you choose (`polytomic` by default):

* `bulk_syncs`: one row per bulk sync; nested configuration is kept as JSON columns.
* `bulk_sync_executions`: one row per execution, with `bulk_sync_id`.
* `bulk_sync_executions__schemas`: one row per (execution, schema), with `execution_id` and
  `bulk_sync_id`. Re-loading an execution replaces its schema rows.

Records that cannot be merged (no `id`, no parsable `updated_at`) go to `rejected_records`.

Credentials follow dlt conventions under `[sources.polytomic]`: `api_key` (Bearer), or
`deployment_key` + `organization_id` (Basic). Environment variables work too, for example
`SOURCES__POLYTOMIC__API_KEY`.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import dlt
from dlt.common.schema.typing import TColumnSchema
from dlt.sources import DltResource

from . import settings
from .client import PolytomicClient, auth_header
from .columns import timestamp_hints
from .context import RunContext
from .errors import ApiError, ConfigError
from .recheck import newest
from .records import execution_row, parse_ts, rejection, sync_row
from .walk import WalkOptions

__all__ = ["RunContext", "polytomic_source", "select_syncs"]
log = logging.getLogger("polytomic_etl")

_SYNC_COLUMNS: dict[str, TColumnSchema] = {
    "id": {"data_type": "text"},
    "name": {"data_type": "text"},
    "active": {"data_type": "bool"},
    "created_at": timestamp_hints(),
    "updated_at": timestamp_hints(),
    "last_seen_at": timestamp_hints(),
    # reserved: the views read it; deletions show as a stale last_seen_at
    "deleted_at": timestamp_hints(),
    "data_cutoff_timestamp": timestamp_hints(),
    **{name: {"data_type": "json"} for name in settings.SYNC_JSON_FIELDS},
}


def shard_of(sync_id: str, shards: int) -> int:
    """A stable shard number: sha256 of the id, never Python's salted `hash()`."""
    return int.from_bytes(hashlib.sha256(sync_id.encode()).digest()[:8], "big") % shards


def parse_shard(shard: str | None) -> tuple[int, int] | None:
    if not shard:
        return None
    try:
        index, total = (int(p) for p in shard.split("/"))
    except ValueError:
        raise ConfigError(f"shard must look like i/n (e.g. 0/4), got {shard!r}") from None
    if total < 1 or not 0 <= index < total:
        raise ConfigError(f"shard {shard!r}: need 0 <= i < n")
    return index, total


@dlt.source(name="polytomic", section="polytomic", max_table_nesting=1)
def polytomic_source(
    api_key: str | None = dlt.secrets.value,
    deployment_key: str | None = dlt.secrets.value,
    organization_id: str | None = dlt.config.value,
    base_url: str = settings.DEFAULT_BASE_URL,
    api_version: str = settings.DEFAULT_API_VERSION,
    bulk_sync_ids: Sequence[str] | None = None,
    active: bool | None = None,
    shard: str | None = None,
    lookback_seconds: int = settings.DEFAULT_LOOKBACK_SECONDS,
    checkpoint_pages: int = settings.DEFAULT_CHECKPOINT_PAGES,
    max_rows_per_load: int = settings.DEFAULT_MAX_ROWS_PER_LOAD,
    concurrency: int = settings.DEFAULT_CONCURRENCY,
    hydration_concurrency: int = settings.DEFAULT_HYDRATION_CONCURRENCY,
    initial_since: str | None = None,
    timeout_seconds: float = settings.DEFAULT_TIMEOUT_SECONDS,
    max_attempts: int = settings.DEFAULT_MAX_ATTEMPTS,
    backoff_factor: float = 1.0,
    max_retry_after_seconds: float = settings.DEFAULT_MAX_RETRY_AFTER_SECONDS,
    max_empty_pages: int = settings.DEFAULT_MAX_EMPTY_PAGES,
    verify_pages_per_run: int = settings.DEFAULT_VERIFY_PAGES_PER_RUN,
    backfill_since: str | None = None,
    backfill_until: str | None = None,
    full_reload: str | None = None,
    context: Any = None,
) -> list[DltResource]:
    """Bulk syncs and their execution history.

    Args:
        api_key: Polytomic API key, sent as `Authorization: Bearer`.
        deployment_key: On-prem deployment or partner key, sent as Basic auth with
            `organization_id` as the user name.
        organization_id: The organization the deployment key acts for.
        base_url: The deployment URL; plain http is refused except on loopback.
        api_version: Sent as `X-Polytomic-Version`.
        bulk_sync_ids: Load only these syncs. An unknown id is a configuration error.
        active: Only active (True) or paused (False) syncs; None for both.
        shard: `i/n` picks a stable, hash-based subset of syncs for sharded deployments.
        lookback_seconds: How far behind its cursor each walk re-reads, for late commits.
        checkpoint_pages: Pages per sync per load, at most (a cap within `max_rows_per_load`).
        max_rows_per_load: Execution plus schema rows gathered for one load, across all syncs;
            it bounds memory. Syncs take turns, a page each, until it is spent; a killed
            first load resumes from the last completed load.
        concurrency: Syncs walked at once.
        hydration_concurrency: Execution detail requests at once, when list items lack `schemas`.
        initial_since: Skip executions updated before this date on the first load.
        timeout_seconds: Total deadline of one request attempt, body included; timeouts
            are retried.
        max_attempts: Attempts per request (429, 5xx, resets and timeouts are retried).
        backoff_factor: Exponential backoff multiplier between attempts.
        max_retry_after_seconds: Longest `Retry-After` we sleep; longer stops the run.
        max_empty_pages: Empty pages in a row whose token is still followed; then the list
            is treated as ended, with a warning.
        verify_pages_per_run: List requests each run spends re-reading part of one sync's
            history against the warehouse (rolling verification); 0 turns it off.
        backfill_since: Re-read executions updated in `[backfill_since, backfill_until)`
            without moving the incremental cursors.
        backfill_until: End of the backfill window (exclusive); open-ended when None.
        full_reload: A key naming a `backfill --full`: the selected syncs' state is reset once,
            and the marker stays until the reload has caught up, so a killed one continues.
        context: A `RunContext` shared by successive loads of one run (the runner passes it).

    Returns:
        The `bulk_syncs` and `bulk_sync_executions` resources.
    """
    ctx: RunContext = context if isinstance(context, RunContext) else RunContext()
    # One client per run: its connection pool, rate gate and request count span all loads.
    client = ctx.client or PolytomicClient(
        base_url,
        auth_header(api_key, deployment_key, organization_id),
        api_version=api_version,
        timeout=timeout_seconds,
        max_attempts=max_attempts,
        backoff_factor=backoff_factor,
        max_retry_after=max_retry_after_seconds,
        secrets=(api_key, deployment_key),
    )
    ctx.client = client
    ctx.active = active
    client.max_empty_pages = max(0, max_empty_pages)
    # Sync ids are UUIDs, compared case-insensitively: stored lowercase everywhere.
    bulk_sync_ids = [i.lower() for i in bulk_sync_ids] if bulk_sync_ids else None
    selected = _selection(bulk_sync_ids, shard)
    window = (_ts("backfill_since", backfill_since), _ts("backfill_until", backfill_until))
    options = WalkOptions(
        lookback=timedelta(seconds=lookback_seconds),
        checkpoint_pages=max(1, checkpoint_pages),
        initial_since=_ts("initial_since", initial_since),
        since=window[0],
        until=window[1],
        run_id=ctx.run_id,
    )

    def listed() -> list[dict[str, Any]]:
        if ctx.syncs is None:
            ctx.syncs = [
                {**s, "id": s["id"].lower()}
                for s in client.list_syncs(active)
                if isinstance(s, dict) and isinstance(s.get("id"), str) and s["id"]
            ]
            known = {s["id"] for s in ctx.syncs}
            missing = sorted(set(bulk_sync_ids or ()) - known)
            if missing:
                raise ConfigError(f"unknown --bulk-sync-id: {', '.join(missing)}")
        return [s for s in ctx.syncs if selected(s["id"])]

    @dlt.resource(
        name="bulk_syncs",
        primary_key="id",
        write_disposition="merge",
        max_table_nesting=0,
        columns=_SYNC_COLUMNS,
    )
    def bulk_syncs() -> Iterator[list[dict[str, Any]]]:
        """Every bulk sync the credentials can see, with `last_seen_at` set to this run.

        A sync deleted in Polytomic keeps its row; its `last_seen_at` stops moving.
        """
        syncs = listed()
        if ctx.syncs_emitted:
            return
        ctx.syncs_emitted = True
        seen_at = datetime.now(UTC)
        yield [sync_row(s, seen_at) for s in syncs]

    @dlt.resource(name="bulk_sync_executions", write_disposition="merge")
    def bulk_sync_executions() -> Iterator[Any]:
        """Executions of each sync, walked incrementally on `updated_at` with per-sync cursors.

        Writes `bulk_sync_executions` (merged on `id`) and `bulk_sync_executions__schemas`
        (merged on `execution_id` as merge key, so a re-loaded execution's schema rows are
        replaced as a whole and stale ones disappear; (`execution_id`, `schema`) stays unique
        without being declared as a key), plus `rejected_records` (append).
        """
        syncs = listed()
        state = dlt.current.resource_state()
        key = f"{backfill_since}|{backfill_until}|{','.join(sorted(bulk_sync_ids or []))}"
        ctx.learned.setdefault("terminal_filter", state.get("terminal_filter"))
        if window[0] is None:
            states = state.setdefault("syncs", {})
            _prune(states, {s["id"] for s in ctx.syncs or []})
            if full_reload and state.get("full_reload") != full_reload:
                for sync_id in [i for i in states if selected(i)]:
                    del states[sync_id]
                state["full_reload"] = full_reload
            elif not full_reload:
                # A finished plain run ends an unfinished --full: the next --full starts over.
                state.pop("full_reload", None)
        else:
            states = _backfill_states(state.setdefault("backfills", {}), key)
        todo = [s["id"] for s in syncs if s["id"] not in ctx.failed and s["id"] not in ctx.gone]
        if ctx.loads and not ctx.pending:
            return
        if ctx.loads:
            todo = [i for i in todo if i in ctx.pending]
        else:
            ctx.counts["syncs_total"] = len(todo)  # for progress displays
        ctx.loads += 1
        # Arrow is imported only here, when there is something to load: `check`, `sql` and
        # `report` define the source without paying for it.
        from .fanout import walk_syncs
        from .tables import execution_tables, rejected_table

        batches = walk_syncs(
            client,
            todo,
            states,
            options,
            ctx,
            concurrency,
            hydration_concurrency,
            max(1, max_rows_per_load),
        )
        for batch in batches:
            if batch.tables is not None:
                yield from execution_tables(batch.tables)
            if batch.rejected:
                yield rejected_table(batch.rejected)
        if ctx.fatal is not None:
            raise ctx.fatal
        if ctx.learned.get("terminal_filter"):
            state["terminal_filter"] = ctx.learned["terminal_filter"]
        if window[0] is None and not ctx.pending and not ctx.verified:
            ctx.verified = True
            yield from _verification(states, [s["id"] for s in syncs], state)
        if full_reload and not ctx.pending and not ctx.failed:
            state.pop("full_reload", None)
        if window[0] is not None and not ctx.pending and not ctx.failed:
            state.get("backfills", {}).pop(key, None)  # a finished backfill leaves no state

    def _verification(
        states: dict[str, Any], sync_ids: list[str], state: dict[str, Any]
    ) -> Iterator[Any]:
        if ctx.warehouse is None or verify_pages_per_run <= 0:
            return
        from .tables import execution_tables, newest_versions, page_tables
        from .verify import verify

        live = [i for i in sync_ids if i not in ctx.failed and i not in ctx.gone]
        try:
            found = verify(
                client,
                live,
                state.setdefault("verify", {}),
                verify_pages_per_run,
                ctx.warehouse,
                # Rows this run loaded; rows it only saw are compared with the warehouse.
                lambda sync_id: ctx.walk_memory(sync_id).loaded,
                ctx.run_id,
                lambda sync_id: (states.get(sync_id) or {}).get("suspects") or {},
            )
        finally:
            ctx.warehouse.close()  # before dlt's load step opens the warehouse to write
        ctx.counts["verify_pages"] += found.pages
        for sync_id, suspects in found.suspects.items():
            sync_state = states.setdefault(sync_id, {})
            merged = {**suspects, **(sync_state.get("suspects") or {})}
            sync_state["suspects"] = newest(
                merged, settings.MAX_SUSPECT_IDS, sync_id, "deletion checks"
            )
        for sync_id, deleted in found.deleted.items():
            pending = (states.get(sync_id) or {}).get("suspects") or {}
            for exec_id in deleted:
                pending.pop(exec_id, None)
                log.warning("sync %s: execution %s was deleted upstream", sync_id, exec_id)
            ctx.deleted.setdefault(sync_id, []).extend(deleted)
        for sync_id, records in found.records.items():
            usable = [r for r in records if not rejection(r) and _complete(client, sync_id, r)]
            rows = [execution_row(r, sync_id) for r in usable]
            if not rows:
                continue
            log.warning("sync %s: verification found %d row(s) to load", sync_id, len(rows))
            tables = newest_versions([page_tables(rows)])
            ctx.counts["executions"] += tables.executions.num_rows
            yield from execution_tables(tables)

    return [bulk_syncs(), bulk_sync_executions()]


def _complete(client: PolytomicClient, sync_id: str, record: dict[str, Any]) -> bool:
    """A record found by the verification, with its `schemas`; False if they cannot be had."""
    if isinstance(record.get("schemas"), list):
        return True
    try:
        detail = client.get_execution(sync_id, record["id"])
    except ApiError:
        return False  # the next pass tries again
    schemas = detail.get("schemas")
    record["schemas"] = schemas if isinstance(schemas, list) else None
    return record["schemas"] is not None


def _backfill_states(backfills: dict[str, Any], key: str) -> dict[str, Any]:
    """This window's checkpoint; unfinished windows beyond the newest few are dropped."""
    states = backfills[key] = backfills.pop(key, {})  # the newest, whatever it was before
    for old in list(backfills)[: -settings.MAX_BACKFILL_CHECKPOINTS]:
        since, until, ids = [*old.split("|"), "", ""][:3]
        log.warning(
            "dropping the checkpoint of an unfinished backfill [%s, %s)%s; re-run that "
            "window to complete it",
            since,
            until if until not in ("", "None") else "now",
            f" for {ids}" if ids else "",
        )
        del backfills[old]
    return states


def _prune(states: dict[str, Any], listed: set[str]) -> None:
    """Forget the state of syncs the API no longer lists; their rows stay in the warehouse."""
    if not listed:
        return
    for sync_id in [s for s in states if s != s.lower()]:  # state of an older version
        states.setdefault(sync_id.lower(), states[sync_id])
        del states[sync_id]
    for sync_id in [s for s in states if s not in listed]:
        del states[sync_id]


def select_syncs(
    sync_ids: Sequence[str], bulk_sync_ids: Sequence[str] | None, shard: str | None
) -> list[str]:
    """The ids a run with `--bulk-sync-id` and `--shard` loads, out of `sync_ids`."""
    selected = _selection(bulk_sync_ids, shard)
    return [i for i in sync_ids if selected(i)]


def _selection(ids: Sequence[str] | None, shard: str | None) -> Any:
    wanted = set(ids or ())
    parsed = parse_shard(shard)

    def selected(sync_id: str) -> bool:
        if wanted and sync_id not in wanted:
            return False
        return parsed is None or shard_of(sync_id, parsed[1]) == parsed[0]

    return selected


def _ts(name: str, value: str | None) -> datetime | None:
    if value is None or value == "":
        return None
    parsed = parse_ts(value if "T" in value else f"{value}T00:00:00+00:00")
    if parsed is None:
        raise ConfigError(f"{name}: not a date or datetime: {value!r}")
    return parsed
