"""The default listing (start time, newest first): what the terminal walk cannot see.

The terminal walk (`only_terminal=true`) never shows in-flight executions, and whether it
shows `errors` and `interrupted` is UNVERIFIED. So every sync also reads the default listing
from its newest page down to where the previous run stopped:

* Steady state: down to `horizon - lookback`, where `horizon` is the newest start time the
  previous run saw. One page when idle; after a long pause, every page that started since,
  so an `errors` run with more than 100 newer runs above it is still found. Once the server
  has shown that `only_terminal` includes `errors`/`interrupted`, the newest page is enough.
* First load: the whole listing, unless the server has shown that `only_terminal` includes
  `errors`/`interrupted` (then the terminal walk already brought them and one page will do).
* The evidence: an `errors`/`interrupted` row whose `updated_at` lies inside the range the
  terminal walk read in this run. If that walk saw it, the server includes them; if not, it
  does not.

Only rows that are not documented as terminal are taken here; the terminal walk brings the
rest. Start times never change once set, so this order is stable under updates.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from . import settings
from .client import PolytomicClient
from .records import iso, parse_ts, rejection

UNDOCUMENTED_TERMINAL = settings.TERMINAL_STATUSES - settings.DOCUMENTED_TERMINAL


@dataclass
class ListingResult:
    rows: list[dict[str, Any]] = field(default_factory=list)
    inflight: dict[str, str] = field(default_factory=dict)  # in flight on the first page
    settled: dict[str, str] = field(default_factory=dict)  # errors/interrupted on it
    listed: set[str] = field(default_factory=set)
    starts: dict[str, str] = field(default_factory=dict)  # start time of each listed id
    low: datetime | None = None  # the oldest start read
    first_low: datetime | None = None  # the oldest start on the first page
    complete: bool = False  # the listing was read to its end

    def covers(self, start: datetime | None) -> bool:
        """Whether an execution that started at `start` would have been on a page read."""
        if self.complete:
            return True
        return start is not None and self.low is not None and start >= self.low

    horizon: datetime | None = None
    evidence: str | None = None  # "all" or "documented": what only_terminal returns
    pages: int = 0


def start_of(raw: dict[str, Any]) -> datetime | None:
    """The default listing's sort key: `started_at`, else `created_at` (not started yet)."""
    return parse_ts(raw.get("started_at")) or parse_ts(raw.get("created_at"))


def read_listing(
    client: PolytomicClient,
    path: str,
    *,
    horizon: datetime | None,
    lookback: timedelta,
    whole: bool,
    deep: bool,
    known: Callable[[str, datetime], bool],
    walked: tuple[datetime, datetime] | None,
    seen: dict[str, datetime],
) -> ListingResult:
    """Read the default listing down to `horizon - lookback` (or to its end when `whole`);
    only its newest page unless `deep`.

    `known(id, updated_at)` says whether that version is loaded already; `walked` is the
    `updated_at` range the terminal walk read in this run and `seen` what it saw there.
    """
    out = ListingResult(horizon=horizon)
    present = client.present()
    stop_at = horizon - lookback if horizon is not None and not whole else None
    params = {"limit": settings.PAGE_LIMIT}
    for page in client.pages(path, params, kind="list_executions"):
        first_page = out.pages == 0
        out.pages += 1
        oldest: datetime | None = None
        for raw in page.items:
            if rejection(raw):
                continue  # the terminal walk quarantines it; nothing here can key it
            ua = parse_ts(raw["updated_at"])
            assert ua is not None
            start = start_of(raw) or ua
            oldest = start if oldest is None else min(oldest, start)
            # A start stamped by a fast clock must not push the horizon past the present.
            start = min(start, present)
            out.horizon = start if out.horizon is None else max(out.horizon, start)
            out.listed.add(raw["id"])
            out.starts[raw["id"]] = iso(start)
            status = raw.get("status") if isinstance(raw.get("status"), str) else None
            if status in settings.DOCUMENTED_TERMINAL:
                continue
            if status in UNDOCUMENTED_TERMINAL and walked and walked[0] <= ua <= walked[1]:
                out.evidence = "all" if seen.get(raw["id"]) == ua else "documented"
            if first_page:  # remembered, so that an idle run loads nothing again
                done = status in settings.TERMINAL_STATUSES
                (out.settled if done else out.inflight)[raw["id"]] = iso(ua)
            if seen.get(raw["id"]) == ua or known(raw["id"], ua):
                continue
            out.rows.append(raw)
        out.low = oldest if oldest is not None else out.low
        if first_page:
            out.first_low = oldest
        if not page.next_token:
            out.complete = True
            break
        if not deep and not whole:
            break
        if stop_at is not None and oldest is not None and oldest <= stop_at:
            break
        if whole and out.evidence == "all":
            break  # the terminal walk carries errors/interrupted: the rest is loaded
    return out
