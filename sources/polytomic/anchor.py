"""Cut the resume page to size, so that an idle run reads the terminal walk in one request.

The stored resume page must begin `RESUME_SLACK_ROWS` rows behind `cursor - lookback` (see
`walk.py`). A walk's pages are cut every 100 rows from where it began, so when the last page
is short, the newest page that qualifies is the one before it, and every idle run would read
two pages. So, after a walk that reached the end of the list, the best place to resume is
worked out from the rows just walked: the `RESUME_SLACK_ROWS`-th row at or before
`cursor - lookback`, counted back from the end. When resuming there is worth a request,
the page that holds that row is asked for once more, with `limit` set to the rows before
it. Its next token then starts exactly there: the anchor.

The request re-reads rows already loaded and loads nothing. It is worth making when it
saves a request on every idle run to come, or frees half a page for the next executions
(so that the next load rarely spills onto one more page): at most one per run, and none on
an idle run, whose walk starts at the anchor already. The anchor is kept only if the page
came back with the very rows expected; it is then checked like any stored token (the
overlap check), and the slack absorbs a few rows that move before the next run.
"""

from __future__ import annotations

import logging
import math
from datetime import datetime

from . import settings
from .client import PolytomicClient
from .errors import ApiError, RateLimitTooLong
from .progress import PageMark, WalkMemory
from .records import parse_ts, rejection

log = logging.getLogger("polytomic_etl")


def _stamps(items: list[object]) -> tuple[datetime | None, ...]:
    """Each listed item's `updated_at`; None for a record the walk quarantines."""
    return tuple(
        None if rejection(raw) else parse_ts(raw["updated_at"])  # type: ignore[index]
        for raw in items
    )


def plan(
    chain: list[PageMark], threshold: datetime, slack: int
) -> tuple[PageMark, int, PageMark] | None:
    """(page to ask again, rows to ask for, the anchor to keep), or None when not worth it.

    `chain` is the pages of one unbroken walk that ended at the end of the list, in order.
    """
    # The page size the server serves: every page but the last one is full.
    size = max((len(m.stamps) for m in chain[:-1]), default=settings.PAGE_LIMIT)
    tail = behind = 0  # rows from here to the end; those at or before the threshold
    newest: datetime | None = None  # the newest row at or before the threshold
    for k in range(len(chain) - 1, -1, -1):
        stamps = chain[k].stamps
        for i in range(len(stamps) - 1, -1, -1):
            tail += 1
            stamp = stamps[i]
            if stamp is None or stamp > threshold:
                continue
            newest = newest or stamp
            behind += 1
            if behind < slack:
                continue
            if i > 0 and worth_a_request(tail + i, tail, size):
                return chain[k], i, PageMark(None, stamp, newest)
            return None
    return None  # fewer than `slack` rows behind the threshold: resume from the start


def worth_a_request(now: int, cut: int, size: int) -> bool:
    """Whether resuming `cut` rows before the end instead of `now` is worth one request."""
    pages_now, pages_cut = math.ceil(now / size), math.ceil(cut / size)
    fill_now, fill_cut = (now - 1) % size + 1, (cut - 1) % size + 1
    return pages_cut < pages_now or fill_now - fill_cut >= size / 2


def reanchor(
    client: PolytomicClient,
    path: str,
    memory: WalkMemory,
    threshold: datetime,
    params: dict[str, object],
) -> None:
    """Leave in `memory.anchor` a resume page cut to size, when one saves idle requests."""
    memory.anchor = None
    found = plan(memory.pages[memory.chain :], threshold, settings.RESUME_SLACK_ROWS)
    if found is None:
        return
    mark, limit, anchor = found
    try:
        pages = client.pages(path, {**params, "limit": limit}, "list_executions", mark.token)
        page = next(pages)
    except RateLimitTooLong:
        raise
    except ApiError as exc:
        log.warning("%s: the resume page was not cut to size (%s)", path, exc)
        return
    if page.next_token and _stamps(page.items) == mark.stamps[:limit]:
        anchor.token = page.next_token
        memory.anchor = anchor
