"""The run log (``etl_runs``, written by ``pipelines/runlog.py``) in the report's header.

A loader that stopped leaves the views looking healthy up to its last load; the header says
when data was last loaded successfully and warns when that is too long ago:

- ``last successful load: 2026-11-30 01:07 UTC (42m ago)``: the ``finished_at`` of the newest
  run with outcome ``ok`` (a ``run`` or a ``backfill``; one limited by ``--bulk-sync-id``
  counts too).  Ages are taken at the report's clock (``report_clock``).
- ``STALE: ...`` when that age exceeds ``STALE_FACTOR`` (3) times the median interval between the
  start times of consecutive ``run``-mode runs (the scheduled ones: backfills are ad hoc),
  over the newest ``CADENCE_RUNS`` of them, whatever their outcome.  It needs at least
  ``MIN_RUNS`` (3) such runs, i.e. two intervals: before that there is no cadence to compare
  with and no warning.  Intervals shorter than ``MIN_INTERVAL_S`` count as that long, so
  runs started back to back by hand do not make the next minute look stale.
- ``last run FAILED at ... (exit 1): <error>`` (or ``INTERRUPTED``) when the newest run did
  not succeed; the error is stored redacted.
- A warehouse loaded by a version without the run log reports as before, with a line saying
  the run log starts with the next run.

Shards share the dataset and load on their own schedules, so each shard (and the unsharded
runs) is judged on its own runs, with its name in front when there is more than one; only
shards among the newest ``READ_LIMIT`` runs are shown.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from itertools import pairwise
from typing import Any

from pipelines.reports.model import MAX_TEXT, Row, fmt_seconds, fmt_time, normalize
from pipelines.reports.views import check_dataset

TABLE = "etl_runs"
READ_LIMIT = 500
CADENCE_RUNS = 21  # 20 intervals
STALE_FACTOR = 3
MIN_RUNS = 3
MIN_INTERVAL_S = 60.0
FIRST_RUN = "the run log (etl_runs) starts with the next `polytomic-etl run`"


@dataclass(frozen=True)
class RunLog:
    """What the report needs from ``etl_runs``; ``present`` is False without the table."""

    present: bool
    runs: list[Row] = field(default_factory=list)  # newest first, at most READ_LIMIT
    last_ok: dict[str | None, datetime] = field(default_factory=dict)  # per shard

    def latest(self) -> Row | None:
        return self.runs[0] if self.runs else None

    def any_ok(self) -> datetime | None:
        return max(self.last_ok.values(), default=None)


@dataclass(frozen=True)
class Line:
    level: str  # info | warn | fail
    text: str


def read_runlog(query: Callable[..., list[dict]], dataset: str) -> RunLog:
    """``query(sql, *args)`` returns rows as dicts (``db.Db.dicts``).  Only reads."""
    check_dataset(dataset)
    found = query(
        "select table_name from information_schema.tables"
        " where table_schema = %s and table_name = %s",
        dataset,
        TABLE,
    )
    if not found:
        return RunLog(present=False)
    try:
        runs = query(
            "select started_at, finished_at, mode, outcome, exit_code, error, shard"
            f" from {dataset}.{TABLE} where started_at is not null"
            f" order by started_at desc limit {READ_LIMIT}"
        )
        last_ok = query(
            f"select shard, max(finished_at) as last_ok from {dataset}.{TABLE}"
            " where outcome = 'ok' group by shard"
        )
    except Exception:  # a run log someone altered by hand: report without it
        return RunLog(present=False)
    rows = [normalize(dict(r)) for r in runs]
    return RunLog(
        present=True,
        runs=[r for r in rows if isinstance(r.get("started_at"), datetime)],
        last_ok={
            r["shard"]: ok
            for r in last_ok
            if isinstance(ok := normalize(dict(r))["last_ok"], datetime)
        },
    )


def header_lines(log: RunLog | None, now: datetime) -> list[Line]:
    """The header's run-log lines, in reading order (none when no run log was read)."""
    if log is None:
        return []
    if not log.present:
        return [Line("info", f"last successful load: unknown; {FIRST_RUN}")]
    if not log.runs:
        return [Line("info", "last successful load: unknown; the run log (etl_runs) is empty")]
    shards = sorted({r["shard"] for r in log.runs}, key=lambda s: (s is not None, s or ""))
    lines: list[Line] = []
    for shard in shards:
        prefix = "" if len(shards) == 1 else f"{_label(shard)}: "
        runs = [r for r in log.runs if r["shard"] == shard]
        lines += [Line(x.level, prefix + x.text) for x in _group(runs, log.last_ok.get(shard), now)]
    return lines


def last_failure(log: RunLog) -> str | None:
    """``failed at ... (exit 2): <error>`` when the newest run did not succeed."""
    latest = log.latest()
    if latest is None or latest["outcome"] == "ok":
        return None
    verb = "was interrupted" if latest["outcome"] == "interrupted" else "failed"
    error = _cut(latest["error"] or "no error recorded")
    return f"{verb} at {fmt_time(latest['finished_at'])} UTC (exit {latest['exit_code']}): {error}"


def _label(shard: str | None) -> str:
    return "unsharded runs" if shard is None else f"shard {shard}"


def _cut(text: str) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= MAX_TEXT else text[: MAX_TEXT - 1] + "…"


def _group(runs: list[Row], last_ok: datetime | None, now: datetime) -> list[Line]:
    lines = []
    if last_ok is None:
        first = fmt_time(runs[-1]["started_at"])
        lines.append(
            Line("warn", f"last successful load: none since the run log began ({first} UTC)")
        )
    else:
        age = max((now - last_ok).total_seconds(), 0.0)
        lines.append(
            Line("info", f"last successful load: {fmt_time(last_ok)} UTC ({fmt_seconds(age)} ago)")
        )
        median = cadence(runs)
        if median is not None and age > STALE_FACTOR * median:
            lines.append(
                Line(
                    "warn",
                    f"STALE: no successful load for {fmt_seconds(age)}, over {STALE_FACTOR}x "
                    f"the median interval between runs ({fmt_seconds(median)})",
                )
            )
    latest = runs[0]
    if latest["outcome"] != "ok":
        word = "INTERRUPTED" if latest["outcome"] == "interrupted" else "FAILED"
        lines.append(
            Line(
                "fail",
                f"last run {word} at {fmt_time(latest['finished_at'])} UTC "
                f"(exit {latest['exit_code']}): {_cut(latest['error'] or 'no error recorded')}",
            )
        )
    return lines


def cadence(runs: list[Row]) -> float | None:
    """The median seconds between consecutive ``run``-mode starts, or None (< MIN_RUNS)."""
    starts = sorted(r["started_at"] for r in runs if r["mode"] == "run")[-CADENCE_RUNS:]
    if len(starts) < MIN_RUNS:
        return None
    gaps = [(b - a).total_seconds() for a, b in pairwise(starts)]
    return max(statistics.median(gaps), MIN_INTERVAL_S)


def to_data(log: RunLog | None, now: datetime) -> dict[str, Any] | None:
    """The run log's part of the HTML page's ``data-digest`` block."""
    if log is None:
        return None
    latest = log.latest()
    return {
        "present": log.present,
        "last_success_at": log.any_ok(),
        "last_run": None
        if latest is None
        else {k: latest[k] for k in ("started_at", "finished_at", "mode", "outcome", "exit_code")}
        | {"error": _cut(latest["error"]) if latest["error"] else None},
        "lines": [{"level": x.level, "text": x.text} for x in header_lines(log, now)],
    }
