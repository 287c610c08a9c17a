"""Executions the listings cannot settle alone: failed details and rows that vanished.

* A detail request that fails while hydrating leaves the execution's schema rows untouched.
  Its id stays in `retry`, and its detail is asked again on every run until it answers.
* An execution is deleted upstream only when it is absent from the listing **and** its
  detail returns 404 on two separate runs. The first 404 makes it a suspect (stamped with
  that run); a later run asks again and confirms, or clears it.
* An in-flight execution that left the default listing's first page without showing up in
  the terminal walk (it ended as a status the server hides there, or it was deleted) gets
  one detail request.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from . import settings
from .errors import ApiError, NotFound, RateLimitTooLong
from .records import iso, parse_ts

log = logging.getLogger("polytomic_etl")

# The detail of one execution: its record (with `schemas`), or None when it answers 404.
Detail = Callable[[str], dict[str, Any] | None]


def fetch_detail(get: Callable[[str], dict[str, Any]]) -> Detail:
    def detail(exec_id: str) -> dict[str, Any] | None:
        try:
            return get(exec_id)
        except NotFound:
            return None

    return detail


@dataclass
class Rechecked:
    rows: list[dict[str, Any]] = field(default_factory=list)
    retry: dict[str, Any] = field(default_factory=dict)
    suspects: dict[str, str] = field(default_factory=dict)
    inflight: dict[str, str] = field(default_factory=dict)  # still in flight, carried over
    deleted: list[str] = field(default_factory=list)


def recheck(
    sync_id: str,
    detail: Detail,
    *,
    retry: dict[str, Any],
    suspects: dict[str, str],
    vanished: dict[str, str],
    listed: set[str],
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
        elif not answered or exec_id in listed:
            out.retry[exec_id] = int(misses) + (1 if answered else 0)
        else:
            out.suspects.setdefault(exec_id, run_id)
    for exec_id, since in suspects.items():
        if exec_id in listed:
            continue  # listed again: not deleted
        if since == run_id:
            out.suspects[exec_id] = since  # the second look must come from another run
            continue
        answered, record = ask(exec_id)
        if record is not None:
            out.rows.append(record)
        elif answered:
            out.deleted.append(exec_id)
        else:
            out.suspects[exec_id] = since
    for exec_id, seen_ua in vanished.items():
        answered, record = ask(exec_id)
        if record is None:
            if answered:
                out.suspects.setdefault(exec_id, run_id)
            else:
                out.inflight[exec_id] = seen_ua
            continue
        now_ua = parse_ts(record.get("updated_at"))
        if now_ua is None:
            continue
        if now_ua != parse_ts(seen_ua):
            out.rows.append(record)
        if record.get("status") not in settings.TERMINAL_STATUSES:
            out.inflight[exec_id] = iso(now_ua)
    for exec_id in out.deleted:
        log.warning("sync %s: execution %s was deleted upstream; its row is kept", sync_id, exec_id)
    out.retry = _newest(out.retry, settings.MAX_RETRY_IDS, sync_id, "detail retries")
    out.suspects = _newest(out.suspects, settings.MAX_SUSPECT_IDS, sync_id, "deletion checks")
    return out


def _newest(items: dict[str, Any], cap: int, sync_id: str, what: str) -> dict[str, Any]:
    """Bounded state: past the cap the oldest entries go, with a warning."""
    if len(items) <= cap:
        return items
    log.warning("sync %s: more than %d pending %s; dropping the oldest", sync_id, cap, what)
    return dict(list(items.items())[-cap:])
