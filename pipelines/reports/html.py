"""A self-contained HTML page for a report: inline CSS and SVG, no scripts, no network.

Every chart's data is also embedded as ``<script type="application/json" id="data-…">`` so
that other tools (and the tests) can read exactly what was drawn.
"""

from __future__ import annotations

from datetime import date
from html import escape
from typing import Any

from pipelines.reports import charts, runs
from pipelines.reports.model import (
    COLOURS,
    HEALTH_ORDER,
    Report,
    clipped,
    digest_sections,
    fmt_pct,
    fmt_seconds,
    fmt_time,
    to_json,
)

CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;color:#222;margin:0;
background:#f6f7f9}main{max-width:1000px;margin:0 auto;padding:24px}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 8px}
section{background:#fff;border:1px solid #e3e5e8;border-radius:8px;padding:14px 18px;
margin-bottom:14px;overflow-x:auto}.muted{color:#666}
.chip{display:inline-block;border-radius:12px;padding:2px 10px;margin:2px 6px 2px 0;
color:#fff;font-weight:600;font-size:13px}
table{border-collapse:collapse;width:100%;font-size:13px}
th,td{text-align:left;padding:4px 8px;border-bottom:1px solid #eee;vertical-align:middle}
th{font-weight:600;color:#555}td.num{text-align:right;font-variant-numeric:tabular-nums}
ul{margin:4px 0 8px 18px;padding:0}.legend span{margin-right:14px}
.swatch{display:inline-block;width:10px;height:10px;margin-right:4px;border-radius:2px}
.runlog{margin:2px 0}.runlog.warn{color:#9a5b00;font-weight:600}
.runlog.fail{color:#c0392b;font-weight:600;overflow-wrap:anywhere}
"""


def _data_block(block_id: str, data: Any) -> str:
    return f'<script type="application/json" id="{block_id}">{to_json(data)}</script>'


def _chip(health: str) -> str:
    colour = COLOURS.get(health, "#888")
    return f'<span class="chip" style="background:{colour}">{escape(health)}</span>'


def _legend(keys: tuple[str, ...]) -> str:
    return (
        '<p class="legend">'
        + "".join(
            f'<span><i class="swatch" style="background:{COLOURS[k]}"></i>'
            f"{escape(k.replace('_', ' '))}</span>"
            for k in keys
        )
        + "</p>"
    )


def _digest(report: Report) -> tuple[str, dict[str, Any]]:
    counts = report.health_counts()
    sections = digest_sections(report)
    data = {
        "dataset": report.dataset,
        "now": report.now,
        "since": report.since,
        "sync": report.sync,
        "health_counts": counts,
        "sections": {t: [{"name": n, "detail": d} for n, d in items] for t, items in sections},
    }
    if report.runlog is not None:
        data["run_log"] = runs.to_data(report.runlog, report.now)
    chips = "".join(_chip(h) + f"{counts[h]} " for h in HEALTH_ORDER if counts[h])
    lists = "".join(
        f"<h3>{escape(title)}</h3><ul>"
        + "".join(f"<li><b>{escape(str(n))}</b>: {escape(d)}</li>" for n, d in items)
        + "</ul>"
        for title, items in sections
        if items
    )
    return f"<p>{chips}</p>{lists or '<p>Nothing needs attention.</p>'}", data


def _strips(report: Report) -> tuple[str, list[dict[str, Any]]]:
    data, rows = [], []
    for sync in report.syncs:
        runs = [r for r in report.runs if r["bulk_sync_id"] == sync["bulk_sync_id"]]
        data.append(
            {
                "bulk_sync_id": sync["bulk_sync_id"],
                "name": sync["name"],
                "health": sync["health"],
                "runs": [
                    {k: r[k] for k in ("execution_id", "run_at", "status", "outcome", "duration_s")}
                    for r in runs
                ],
            }
        )
        rows.append(
            f"<tr><td>{escape(str(sync['name']))}</td><td>{_chip(sync['health'])}</td>"
            f"<td>{charts.run_strip(runs)}</td></tr>"
        )
    return "<table>" + "".join(rows) + "</table>", data


def _schema_grids(report: Report) -> tuple[str, list[dict[str, Any]]]:
    data, html = [], []
    for sid in report.worst_syncs:
        cells = [c for c in report.schema_grid if c["bulk_sync_id"] == sid]
        runs = [r for r in report.runs if r["bulk_sync_id"] == sid]
        schemas = sorted({c["schema"] for c in cells})
        lookup = {(c["execution_id"], c["schema"]): c for c in cells}
        data.append(
            {
                "bulk_sync_id": sid,
                "name": report.name_of(sid),
                "executions": [r["execution_id"] for r in runs],
                "schemas": schemas,
                "cells": [
                    {k: c[k] for k in ("execution_id", "schema", "status", "schema_outcome")}
                    for c in cells
                ],
            }
        )
        html.append(
            f"<h3>{escape(report.name_of(sid))}</h3>" + charts.schema_grid(runs, schemas, lookup)
        )
    return "".join(html) or '<p class="muted">No failing schemas in the period.</p>', data


def _health_table(report: Report) -> str:
    head = (
        "sync",
        "health",
        "reason",
        "last run",
        "last success",
        "runs 7d",
        "ok 7d",
        "fail 7d",
        "p50",
        "p95",
        "streak",
    )
    rows = "".join(
        f"<tr><td>{escape(str(r['name']))}</td><td>{_chip(r['health'])}</td>"
        f"<td>{escape(r['health_reason'])}</td><td>{escape(r['last_status'] or '-')}</td>"
        f"<td>{fmt_time(r['last_success_at'])}</td><td class=num>{r['runs_7d']}</td>"
        f"<td class=num>{fmt_pct(r['success_rate_7d'])}</td>"
        f"<td class=num>{fmt_pct(r['failed_rate_7d'])}</td>"
        f"<td class=num>{fmt_seconds(r['p50_duration_s'])}</td>"
        f"<td class=num>{fmt_seconds(r['p95_duration_s'])}</td>"
        f"<td class=num>{r['failure_streak']}</td></tr>"
        for r in report.syncs
    )
    return "<table><tr>" + "".join(f"<th>{h}</th>" for h in head) + "</tr>" + rows + "</table>"


def _runlog(report: Report) -> str:
    """The run log's header lines: last successful load, staleness, the last failure."""
    return "".join(
        f'<p class="runlog {line.level}">{escape(line.text)}</p>'
        for line in runs.header_lines(report.runlog, report.now)
    )


def render_html(report: Report) -> str:
    """One self-contained HTML page: digest, run strips, daily runs, durations, calendar,
    schema grids and the sync_health table.  Texts are cut at ``model.MAX_TEXT`` characters:
    a page is for reading, and a 5 MB status message would make it 5 MB several times over."""
    report = clipped(report)
    digest_html, digest = _digest(report)
    strips_html, strips = _strips(report)
    grids_html, grids = _schema_grids(report)
    names = {r["bulk_sync_id"]: r["name"] for r in report.syncs}
    durations = [
        {**r, "name": names.get(r["bulk_sync_id"], r["bulk_sync_id"])} for r in report.durations
    ]
    daily = [{k: r[k] for k in ("day", *charts.STACK, "runs")} for r in report.daily]
    calendar = [
        {"day": r["day"], "failed": r["failed"], "partial": r["partial"], "runs": r["runs"]}
        for r in report.daily
    ]
    first: date = report.since.date()
    title = f"Polytomic sync report: {report.dataset}"
    focus = f" · sync {escape(report.sync)}" if report.sync else ""
    sections = [
        ("Last 20 runs per sync", _legend(charts.STACK) + strips_html, "data-run-strips", strips),
        (
            "Daily runs by outcome",
            _legend(charts.STACK) + charts.daily_stacked(daily),
            "data-daily-runs",
            daily,
        ),
        (
            "Durations of completed runs (p50, p95, max)",
            charts.duration_bars(durations),
            "data-durations",
            durations,
        ),
        (
            "Failures by day",
            charts.failure_calendar(calendar, first, report.now.date())
            + '<p class="muted">Darker red: more failed runs that day (at most '
            + f"{max((d['failed'] for d in calendar), default=0)}).</p>",
            "data-failure-calendar",
            calendar,
        ),
        (
            "Schemas by run for the worst syncs",
            _legend(("success", "failed", "canceled", "in_flight")) + grids_html,
            "data-schema-grid",
            grids,
        ),
    ]
    body = "".join(
        f"<h2>{escape(heading)}</h2><section>{content}{_data_block(block_id, data)}</section>"
        for heading, content, block_id, data in sections
    )
    return (
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        f"<title>{escape(title)}</title><style>{CSS}</style></head><body><main>"
        f"<header><h1>{escape(title)}</h1><p class=muted>{fmt_time(report.now)} UTC · since "
        f"{fmt_time(report.since)}{focus}</p>{_runlog(report)}<section>{digest_html}"
        f"{_data_block('data-digest', digest)}</section></header>{body}"
        f"<h2>Sync health</h2><section>{_health_table(report)}</section>"
        "</main></body></html>\n"
    )
