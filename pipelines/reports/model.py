"""The data a report is rendered from, plus small formatting helpers shared by the renderers."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field, fields, replace
from datetime import UTC, date, datetime, timedelta
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
    settings: Row = field(default_factory=dict)  # report_settings: the thresholds in force

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
                return sync_label(row)
        return bulk_sync_id


def sync_label(row: Row) -> str:
    """A sync's name as shown; its id when it has no name (null, empty or blank)."""
    name = row.get("name")
    return str(name) if name is not None and str(name).strip() else str(row["bulk_sync_id"])


class SyncChoice(ValueError):
    """``--sync`` matched no sync, or several: ``candidates`` are the ones to choose from
    (every sync when none matched, else the matches), sorted by name."""

    def __init__(self, message: str, candidates: list[Row]) -> None:
        super().__init__(message)
        self.candidates = candidates


def match_syncs(syncs: list[Row], wanted: str, dataset: str) -> list[Row]:
    """The sync_health rows ``--sync wanted`` means: the sync with that id; else those named
    exactly that; else those whose name contains it.  Case does not matter.  ``SyncChoice``
    unless exactly one matches (several syncs may share one exact name: give the id)."""
    key = wanted.strip().casefold()

    def name(row: Row) -> str:
        return str(row["name"] or "").casefold()

    found = [r for r in syncs if str(r["bulk_sync_id"]).casefold() == key]
    found = found or [r for r in syncs if name(r) == key]
    found = found or [r for r in syncs if key in name(r)]
    by_name = sorted(found or syncs, key=lambda r: (name(r), str(r["bulk_sync_id"])))
    if not found:
        raise SyncChoice(f"no sync named {wanted!r} in dataset {dataset!r}", by_name)
    if len(found) > 1:
        raise SyncChoice(
            f"--sync {wanted!r} matches {len(found)} syncs in dataset {dataset!r}: give more of "
            "the name, or the id",
            by_name,
        )
    return found


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


def fmt_utc(value: datetime | None) -> str:
    """A time for people: ``2025-03-12 12:00 UTC`` ("-" for none)."""
    return "-" if value is None else f"{fmt_time(value)} UTC"


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


# `report --json`: each section's rows and the window they cover.  `period` is the report's
# period (header.period: --since up to the report's clock); `now` is the state at
# generated_at; `fixed` are the view's own windows (24 h / 7 d / 30 d, named by the column
# suffixes); `last_runs` counts runs back from now; `all` is every loaded run.
SECTIONS: tuple[tuple[str, str, str, str], ...] = (
    # (JSON key, Report field, window, what the window is)
    (
        "sync_health",
        "syncs",
        "fixed",
        "health as of generated_at; *_24h / *_7d / *_30d over those windows up to "
        "generated_at; durations over 30 days",
    ),
    ("flapping", "flapping", "last_runs", "each sync's last {flapping_window_runs} terminal runs"),
    (
        "chronic_schemas",
        "chronic",
        "last_runs",
        "each schema's last 5 runs in executions that completed",
    ),
    ("stuck_runs", "stuck", "now", "executions in flight at generated_at, past their threshold"),
    ("incidents", "incidents", "period", "open incidents, and those that started in the period"),
    ("volume_anomalies", "anomalies", "period", "anomalous runs in the period"),
    ("recovery", "recovery", "all", "incidents over all loaded history"),
    ("daily_runs", "daily", "period", "runs by UTC day, over the days of the period"),
    ("last_runs", "runs", "period", "each sync's last 20 runs in the period, oldest first"),
    ("durations", "durations", "period", "runs that completed in the period"),
    (
        "schema_grid",
        "schema_grid",
        "period",
        "schema runs of the worst syncs' last 20 runs in the period",
    ),
)


def report_data(report: Report, html: str | None = None) -> dict[str, Any]:
    """The whole report as plain data: the header (with the run log's lines), the digest as
    the terminal shows it, and every section's rows with its window.  Texts are cut at
    ``MAX_TEXT`` characters, as on the HTML page (the full text stays in SQL)."""
    from pipelines.reports.runs import to_data

    report = clipped(report)
    chosen = None
    if report.sync is not None:
        chosen = {
            "query": report.sync,
            "bulk_sync_ids": [r["bulk_sync_id"] for r in report.syncs],
            "names": [r["name"] for r in report.syncs],
        }
    header = {
        "title": "Polytomic sync report",
        "dataset": report.dataset,
        "generated_at": report.now,
        "period": {"since": report.since, "until": report.now},
        "sync": chosen,
        "syncs": len(report.syncs),
        "health_counts": report.health_counts(),
        "run_log": to_data(report.runlog, report.now),
    }
    digest = {
        _key(title): [{"name": name, "detail": detail} for name, detail in items]
        for title, items in digest_sections(report)
    }
    from pipelines.reports.settings import ReportSettings

    runs = report.settings.get("flapping_window_runs") or ReportSettings().flapping_window_runs
    sections: dict[str, Any] = {
        key: {
            "window": window,
            "window_description": about.format(flapping_window_runs=runs),
            "rows": getattr(report, name),
        }
        for key, name, window, about in SECTIONS
    }
    sections["schema_grid"]["worst_syncs"] = report.worst_syncs
    sections["last_runs"]["rows"] = [
        {k: v for k, v in row.items() if k != "rn"} for row in report.runs
    ]
    return {"ok": True, "header": header, "digest": digest, "sections": sections, "html": html}


def report_json(report: Report, html: str | None = None) -> str:
    """``report_data`` as one line of JSON: instants in ISO 8601 UTC (``...Z``), days as
    ``YYYY-MM-DD``, no NaN; ASCII only, so no text from the API can steer a terminal."""
    return json.dumps(_plain(report_data(report, html)), ensure_ascii=True, allow_nan=False)


def _key(title: str) -> str:
    return "_".join(title.lower().split())


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, datetime):
        value = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
        return value.isoformat().replace("+00:00", "Z")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, Decimal):
        value = float(value)
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).hex()
    return str(value)


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
        f"{fmt_utc(row['run_at'])}: {row['record_count']} rows vs median "
        f"{row['baseline_median']:.0f}{change}"
    )


def digest_sections(report: Report) -> list[tuple[str, list[tuple[str, str]]]]:
    """The digest as (title, [(label, detail)]) in reading order; empty sections included."""
    sections = [
        (
            health.capitalize(),
            [(sync_label(r), r["health_reason"]) for r in report.with_health(health)],
        )
        for health in ("broken", "degraded", "late")
    ]
    sections.append(
        (
            "Flapping",
            [
                (
                    sync_label(r),
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
                    f"{sync_label(r)} / {r['schema']}",
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
                    sync_label(r),
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
                    sync_label(r),
                    f"{r['length_runs']} run(s) since {fmt_utc(r['started_at'])}"
                    + (f": {r['first_error_message']}" if r["first_error_message"] else ""),
                )
                for r in report.incidents
                if r["state"] == "open"
            ],
        )
    )
    anomalies = [
        (sync_label(r) + (f" / {r['schema']}" if r["schema"] else ""), _anomaly_detail(r))
        for r in report.anomalies[:DIGEST_ANOMALIES]
    ]
    hidden = len(report.anomalies) - DIGEST_ANOMALIES
    if hidden > 0:  # a digest, not a dump: the view holds them all
        anomalies.append(("…", f"{hidden} more in volume_anomalies (WHERE is_anomaly)"))
    sections.append(("Volume anomalies", anomalies))
    return sections
