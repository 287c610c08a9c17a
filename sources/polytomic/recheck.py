"""Executions the listings cannot settle alone: failed details and rows that vanished.

* A detail request that fails while hydrating leaves the execution's schema rows untouched.
  Its id stays in `retry`, and its detail is asked again on every run until it answers (a
  day of misses at most, then it is named in a warning and let go; its schema rows stay).
* An execution is deleted upstream only when it is absent from the listing **and** its
  detail returns 404 on two separate runs. The first 404 makes it a suspect, stamped with
  that run and a lower bound of its start time. A later run confirms it only when the
  listing it read covers that start time (or the verification reached it); a listed id, or
  a detail that answers, clears it. A 404 on a listed execution is a broken detail
  endpoint, never a deletion.
* An in-flight execution that left the default listing's first page without showing up in
  the terminal walk (it ended as a status the server hides there, or it was deleted) gets
  one detail request.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from . import settings
from .errors import ApiError, NotFound, RateLimitTooLong
from .records import iso, parse_ts, rejection

log = logging.getLogger("polytomic_etl")

# The detail of one execution: its record (with `schemas`), or None when it answers 404.
Detail = Callable[[str], dict[str, Any] | None]
MAX_MISSES = 24  # runs a detail may keep failing before its id is let go, with a warning


def fetch_detail(get: Callable[[str], dict[str, Any]]) -> Detail:
    def detail(exec_id: str) -> dict[str, Any] | None:
        try:
            record = get(exec_id)
        except NotFound:
            return None
        if rejection(record):
            raise ApiError(f"execution {exec_id}: the detail has no usable id or updated_at")
        return record

    return detail


def suspect_entry(run_id: str, start: datetime | None) -> list[Any]:
    return [run_id, iso(start) if start else None]


@dataclass
class Rechecked:
    rows: list[dict[str, Any]] = field(default_factory=list)
    retry: dict[str, Any] = field(default_factory=dict)
    suspects: dict[str, list[Any]] = field(default_factory=dict)
    inflight: dict[str, str] = field(default_factory=dict)  # still in flight, carried over
    deleted: list[str] = field(default_factory=list)


def recheck(
    sync_id: str,
    detail: Detail,
    *,
    retry: dict[str, Any],
    suspects: dict[str, Any],
    vanished: dict[str, str],
    vanished_start: datetime | None,
    listed: set[str],
    covers: Callable[[datetime | None], bool],
    run_id: str,
) -> Rechecked:
    """Ask the detail endpoint about each id that needs it; never more than once per id."""
    out = Rechecked()
    asked: dict[str, dict[str, Any] | None] = {}

    def ask(exec_id: str) -> tuple[bool, dict[str, Any] | None]:
        if exec_id not in asked:
            try:
                asked[exec_id] = detail(exec_id)
            except RateLimitTooLong:
                raise
            except ApiError as exc:
                log.warning("sync %s: execution %s: detail failed (%s)", sync_id, exec_id, exc)
                return False, None
        return True, asked[exec_id]

    for exec_id, misses in retry.items():
        answered, record = ask(exec_id)
        if record is not None:
            out.rows.append(record)
        elif int(misses) + 1 < MAX_MISSES:
            out.retry[exec_id] = int(misses) + 1
        else:
            log.warning(
                "sync %s: the detail of execution %s failed on %d runs; its schema rows stay "
                "as last loaded",
                sync_id,
                exec_id,
                MAX_MISSES,
            )
    for exec_id, entry in suspects.items():
        since, start = suspect_of(entry)
        if exec_id in listed:
            continue  # listed again: not deleted
        if since == run_id or not covers(start):
            out.suspects[exec_id] = [since, iso(start) if start else None]
            continue  # the second look must come from another run, and see where it was
        answered, record = ask(exec_id)
        if record is not None:
            out.rows.append(record)
        elif answered:
            out.deleted.append(exec_id)
        else:
            out.suspects[exec_id] = [since, iso(start) if start else None]
    for exec_id, seen_ua in vanished.items():
        answered, record = ask(exec_id)
        if record is None:
            if answered:
                out.suspects.setdefault(exec_id, suspect_entry(run_id, vanished_start))
            else:
                out.inflight[exec_id] = seen_ua
            continue
        now_ua = parse_ts(record.get("updated_at"))
        if now_ua is None:
            continue
        if now_ua != parse_ts(seen_ua):
            out.rows.append(record)
        status = record.get("status")
        if not isinstance(status, str) or status not in settings.TERMINAL_STATUSES:
            out.inflight[exec_id] = iso(now_ua)
    for exec_id in out.deleted:
        log.warning("sync %s: execution %s was deleted upstream; its row is kept", sync_id, exec_id)
    out.suspects = newest(out.suspects, settings.MAX_SUSPECT_IDS, sync_id, "deletion checks")
    return out


def suspect_of(entry: Any) -> tuple[str, datetime | None]:
    """The run that first saw the 404, and a lower bound of the start (older states: a run)."""
    if isinstance(entry, list) and entry:
        return str(entry[0]), parse_ts(entry[1]) if len(entry) > 1 else None
    return str(entry), None


def newest(items: dict[str, Any], cap: int, sync_id: str, what: str) -> dict[str, Any]:
    """Bounded state: past the cap the oldest entries go, with a warning."""
    if len(items) <= cap:
        return items
    log.warning("sync %s: more than %d pending %s; dropping the oldest", sync_id, cap, what)
    return dict(list(items.items())[-cap:])
