"""The data a report is rendered from, plus small formatting helpers shared by the renderers."""

from __future__ import annotations

import json
from dataclasses import dataclass, field, fields, replace
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pipelines.reports.runs import RunLog

Row = dict[str, Any]

# Most to least urgent; the order the digest and the tables use.
HEALTH_ORDER: tuple[str, ...] = ("broken", "degraded", "late", "never_run", "healthy", "inactive")
OUTCOMES: tuple[str, ...] = ("success", "partial", "failed", "canceled", "in_flight", "unknown")
COLOURS: dict[str, str] = {
    "success": "#2e9d5b",
    "partial": "#e6a23c",
    "failed": "#d64541",
    "canceled": "#9aa0a6",
    "in_flight": "#4a90d9",
    "unknown": "#c9ccd1",
    "broken": "#d64541",
    "degraded": "#e6a23c",
    "late": "#b0689e",
    "never_run": "#7d8793",
    "healthy": "#2e9d5b",
    "inactive": "#b5bac1",
}


@dataclass(frozen=True)
class Report:
    """Everything a renderer needs, already filtered to the period and the sync asked for."""

    dataset: str
    now: datetime
    since: datetime
    sync: str | None
    syncs: list[Row]  # sync_health rows, most urgent first
    flapping: list[Row]  # flapping rows with flapping = true
    chronic: list[Row]  # schema_health rows with chronic = true
    incidents: list[Row]  # open incidents and those started in the period, newest first
    recovery: list[Row]  # one per sync
    stuck: list[Row]  # stuck_executions
    anomalies: list[Row]  # volume_anomalies flagged in the period, newest first
    daily: list[Row]  # daily_executions summed over the syncs, one per day of the period
    runs: list[Row]  # the last 20 runs per sync in the period, oldest first
    durations: list[Row]  # per sync: p50 / p95 / max duration of completed runs in the period
    schema_grid: list[Row]  # schema runs of the worst syncs' last 20 executions
    worst_syncs: list[str] = field(default_factory=list)  # bulk_sync_ids, worst first
    runlog: RunLog | None = None  # etl_runs, for the header (None: not read)

    def health_counts(self) -> dict[str, int]:
        counts = dict.fromkeys(HEALTH_ORDER, 0)
        for row in self.syncs:
            counts[row["health"]] = counts.get(row["health"], 0) + 1
        return counts

    def with_health(self, health: str) -> list[Row]:
        return [row for row in self.syncs if row["health"] == health]

    def name_of(self, bulk_sync_id: str) -> str:
        for row in self.syncs:
            if row["bulk_sync_id"] == bulk_sync_id:
                return str(row["name"] or bulk_sync_id)
        return bulk_sync_id


def normalize(row: Row) -> Row:
    """Driver-neutral values: Decimal becomes float, naive datetimes are taken as UTC."""
    out: Row = {}
    for key, value in row.items():
        if isinstance(value, Decimal):
            value = float(value)
        elif isinstance(value, datetime):
            value = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
        out[key] = value
    return out


def fmt_seconds(seconds: float | None) -> str:
    """A compact duration: 45s, 12m, 3.5h, 2.1d."""
    if seconds is None:
        return "-"
    if seconds < 60:
        return f"{seconds:.0f}s"
    if seconds < 3600:
        return f"{seconds / 60:.0f}m"
    if seconds < 86400:
        return f"{seconds / 3600:.1f}h"
    return f"{seconds / 86400:.1f}d"


def fmt_pct(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:.0f}%"


def fmt_time(value: datetime | None) -> str:
    return "-" if value is None else value.astimezone(UTC).strftime("%Y-%m-%d %H:%M")


def to_json(data: Any) -> str:
    """JSON for embedding in a <script> block: dates as ISO strings, and ``<``, ``>``, ``&`` as
    ``\\u003c``, ``\\u003e``, ``\\u0026``, so that no text can end the block or open a
    comment an HTML parser would read (``<!--<script>`` makes it swallow the rest)."""

    def default(value: Any) -> Any:
        if isinstance(value, datetime | date):
            return value.isoformat()
        if isinstance(value, Decimal):
            return float(value)
        return str(value)

    text = json.dumps(data, default=default, sort_keys=True)  # ASCII: U+2028 is escaped too
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


MAX_TEXT = 500  # characters of one value the HTML page shows (the full text stays in SQL)


def clipped(report: Report, limit: int = MAX_TEXT) -> Report:
    """``report`` with every text longer than ``limit`` characters cut, the cut marked."""

    def cut(value: Any) -> Any:
        if isinstance(value, str) and len(value) > limit:
            return value[: limit - 1] + "…"
        return value

    lists = {
        f.name: [
            {k: cut(v) for k, v in item.items()} if isinstance(item, dict) else cut(item)
            for item in getattr(report, f.name)
        ]
        for f in fields(report)
        if isinstance(getattr(report, f.name), list)
    }
    return replace(report, sync=cut(report.sync), **lists)


DIGEST_ANOMALIES = 10  # newest first


def _anomaly_detail(row: Row) -> str:
    change = (
        " (zero after non-zero)"
        if row["zero_after_nonzero"]
        else f" ({row['pct_change'] * 100:+.0f}%)"
        if row["pct_change"] is not None
        else ""
    )
    return (
        f"{fmt_time(row['run_at'])}: {row['record_count']} rows vs median "
        f"{row['baseline_median']:.0f}{change}"
    )


def digest_sections(report: Report) -> list[tuple[str, list[tuple[str, str]]]]:
    """The digest as (title, [(label, detail)]) in reading order; empty sections included."""
    sections = [
        (health.capitalize(), [(r["name"], r["health_reason"]) for r in report.with_health(health)])
        for health in ("broken", "degraded", "late")
    ]
    sections.append(
        (
            "Flapping",
            [
                (
                    r["name"],
                    f"{r['flips']} flips in the last {r['terminal_runs']} runs: {r['sequence']}",
                )
                for r in report.flapping
            ],
        )
    )
    sections.append(
        (
            "Chronic schemas",
            [
                (
                    f"{r['name']} / {r['schema']}",
                    f"failed {r['chronic_failures']} of its last "
                    f"{r['chronic_window_runs']} completed runs"
                    + (f": {r['latest_error_message']}" if r["latest_error_message"] else ""),
                )
                for r in report.chronic
            ],
        )
    )
    sections.append(
        (
            "Stuck runs",
            [
                (
                    r["name"],
                    f"{r['status']} for {fmt_seconds(r['running_s'])}, threshold "
                    f"{fmt_seconds(r['threshold_s'])} ({r['threshold_basis']})",
                )
                for r in report.stuck
            ],
        )
    )
    sections.append(
        (
            "Open incidents",
            [
                (
                    r["name"],
                    f"{r['length_runs']} run(s) since {fmt_time(r['started_at'])}"
                    + (f": {r['first_error_message']}" if r["first_error_message"] else ""),
                )
                for r in report.incidents
                if r["state"] == "open"
            ],
        )
    )
    anomalies = [
        (r["name"] + (f" / {r['schema']}" if r["schema"] else ""), _anomaly_detail(r))
        for r in report.anomalies[:DIGEST_ANOMALIES]
    ]
    hidden = len(report.anomalies) - DIGEST_ANOMALIES
    if hidden > 0:  # a digest, not a dump: the view holds them all
        anomalies.append(("…", f"{hidden} more in volume_anomalies (WHERE is_anomaly)"))
    sections.append(("Volume anomalies", anomalies))
    return sections
