"""A self-contained HTML page for a report: inline CSS and SVG, no scripts, no network.

Every chart's data is also embedded as ``<script type="application/json" id="data-…">`` so
that other tools (and the tests) can read exactly what was drawn.  The page explains itself:
times say UTC, every colour has a legend entry, runs carry their execution ids, and a
glossary (``glossary.py``) at the end defines its words.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from pipelines.reports import charts, glossary, runs
from pipelines.reports.charts import utc
from pipelines.reports.html_digest import digest_html
from pipelines.reports.html_style import CSS
from pipelines.reports.model import (
    COLOURS,
    HEALTH_ORDER,
    Report,
    Row,
    clipped,
    digest_sections,
    fmt_seconds,
    sync_label,
    to_json,
)
from pipelines.reports.terminal import finished_shares, html_name, html_text, split_100


def _data_block(block_id: str, data: Any) -> str:
    return f'<script type="application/json" id="{block_id}">{to_json(data)}</script>'


def _chip(health: str) -> str:
    colour = COLOURS.get(health, "#888")
    return f'<span class="chip" style="background:{colour}">{html_text(health)}</span>'


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
    return f"<p>{chips}</p>{_week(report.syncs)}{digest_html(report)}", data


def _week(syncs: list[Row]) -> str:
    """All syncs' finished runs in the last 7 days, as the three shares."""
    counts = [0, 0, 0]
    for row in syncs:
        for i, key in enumerate(("success", "partial", "failed")):
            counts[i] += round((row[f"{key}_rate_7d"] or 0) * (row["runs_7d"] or 0))
    if not sum(counts):
        return '<p class="muted">No finished runs in the last 7 days.</p>'
    shares, total = split_100(counts), sum(counts)
    return (
        f'<p class="week">Last 7 days: {total} finished run{"" if total == 1 else "s"}: '
        + " · ".join(
            f"{p}% {k}" for p, k in zip(shares, ("success", "partial", "failed"), strict=True)
        )
        + "</p>"
    )


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
            f"<tr><td>{html_name(sync_label(sync))}</td><td>{_chip(sync['health'])}</td>"
            f"<td>{charts.run_strip(runs)}</td></tr>"
        )
    outcomes = {r["outcome"] for r in report.runs}
    legend = charts.outcome_legend(outcomes, "no run")
    table = '<table class="strips">' + "".join(rows) + "</table>"
    return legend + table, data


SCHEMA_OUTCOMES = ("success", "failed", "canceled", "in_flight")  # a schema is never partial


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
            f"<h3>{html_name(report.name_of(sid))}</h3>" + charts.schema_grid(runs, schemas, lookup)
        )
    if not html:
        return '<p class="muted">No failing schemas in the period.</p>', data
    drawn = {c["schema_outcome"] for c in report.schema_grid}
    legend = charts.outcome_legend(drawn, "not in run", SCHEMA_OUTCOMES)
    return legend + "".join(html), data


HEALTH_COLUMNS = (
    "sync",
    "health",
    "reason",
    "last run",
    "last success",
    "runs 7d",
    "success 7d",
    "partial 7d",
    "failed 7d",
    "p50",
    "p95",
    "streak",
)


def _health_row(report: Report, r: Row) -> str:
    last = [x for x in report.runs if x["bulk_sync_id"] == r["bulk_sync_id"]][-1:]
    tip = ""  # the latest run of the period, when it is the one sync_health names
    if last and last[0]["status"] == r["last_status"] and last[0]["run_at"] == r["last_run_at"]:
        tip = f"execution {last[0]['execution_id']} · {utc(last[0]['run_at'])}"
    shares = finished_shares(r)
    pcts = [f"{p}%" for p in shares] if shares else ["-"] * 3
    cells = [
        ("name", html_name(sync_label(r))),
        ("", _chip(r["health"])),
        ("reason", html_text(r["health_reason"])),
        ("", html_text(r["last_status"] or "-")),
        ("time", utc(r["last_success_at"])),
        ("num", str(r["runs_7d"])),
        *(("num", p) for p in pcts),
        ("num", fmt_seconds(r["p50_duration_s"])),
        ("num", fmt_seconds(r["p95_duration_s"])),
        ("num", str(r["failure_streak"])),
    ]
    out = []
    for (css, text), head in zip(cells, HEALTH_COLUMNS, strict=True):
        short = head if head == "runs 7d" else head.removesuffix(" 7d")  # one window per card
        label = "" if head in ("sync", "health", "reason") else f' data-label="{short}"'
        title = f' title="{html_text(tip)}"' if head == "last run" and tip else ""
        css = f' class="{css}"' if css else ""
        out.append(f"<td{css}{label}{title}>{text}</td>")
    return "<tr>" + "".join(out) + "</tr>"


def _health_table(report: Report) -> str:
    head = "".join(f"<th>{h}</th>" for h in HEALTH_COLUMNS)
    rows = "".join(_health_row(report, r) for r in report.syncs)
    note = (
        '<p class="muted small">success / partial / failed 7d: shares of the finished runs '
        "of the last 7 days (canceled and in-flight runs left out), adding up to 100%. "
        "Hover a last run for its execution id.</p>"
    )
    return f'<table class="health"><tr>{head}</tr>{rows}</table>{note}'


def _runlog(report: Report) -> str:
    """The run log's header lines: last successful load, staleness, the last failure."""
    return "".join(
        f'<p class="runlog {line.level}">{html_text(line.text)}</p>'
        for line in runs.header_lines(report.runlog, report.now)
    )


def render_html(report: Report) -> str:
    """One self-contained HTML page: digest, run strips, daily runs, durations, calendar,
    schema grids, the sync_health table and a glossary.  Texts are cut at
    ``model.MAX_TEXT`` characters: a page is for reading, and a 5 MB status message would
    make it 5 MB several times over."""
    report = clipped(report)
    digest, digest_data = _digest(report)
    strips_html, strips = _strips(report)
    grids_html, grids = _schema_grids(report)
    names = {r["bulk_sync_id"]: sync_label(r) for r in report.syncs}
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
    focus = f" · sync {html_name(report.sync)}" if report.sync else ""
    dur_legend = charts.legend(
        [(charts.P50, "p50 (median)"), (charts.P95, "p95"), (charts.MAX, "max")]
    )
    sections = [
        ("Last 20 runs per sync", strips_html, "data-run-strips", strips),
        (
            "Daily runs by outcome",
            charts.outcome_legend(set()) + charts.daily_stacked(daily),
            "data-daily-runs",
            daily,
        ),
        (
            "Durations of completed runs (p50, p95, max)",
            dur_legend + charts.duration_bars(durations),
            "data-durations",
            durations,
        ),
        (
            "Failures by day",
            charts.calendar_legend(calendar)
            + charts.failure_calendar(calendar, first, report.now.date()),
            "data-failure-calendar",
            calendar,
        ),
        ("Schemas by run for the worst syncs", grids_html, "data-schema-grid", grids),
    ]
    body = "".join(
        f"<h2>{html_text(heading)}</h2><section>{content}{_data_block(block_id, data)}</section>"
        for heading, content, block_id, data in sections
    )
    return (
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        f"<title>{html_text(title)}</title><style>{CSS}</style></head><body><main>"
        f"<header><h1>{html_text(title)}</h1><p class=muted>generated {utc(report.now)} · "
        f"period {utc(report.since)} to {utc(report.now)}{focus} · all times UTC · "
        '<a href="#glossary">what the words mean</a></p>'
        f"{_runlog(report)}<section>{digest}"
        f"{_data_block('data-digest', digest_data)}</section></header>{body}"
        f"<h2>Sync health</h2><section>{_health_table(report)}</section>"
        f"{glossary.render()}</main></body></html>\n"
    )
