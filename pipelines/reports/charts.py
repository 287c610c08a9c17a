"""Inline SVG charts for the HTML report, generated in Python (no scripts, no network)."""

from __future__ import annotations

from datetime import date, timedelta
from html import escape

from pipelines.reports.model import COLOURS, Row, fmt_seconds, fmt_time

STACK = ("success", "partial", "failed", "canceled", "in_flight")
EMPTY = "#eef0f3"


def _svg(width: float, height: float, body: list[str], label: str) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0f}" height="{height:.0f}" '
        f'viewBox="0 0 {width:.0f} {height:.0f}" role="img" aria-label="{escape(label)}">'
        + "".join(body)
        + "</svg>"
    )


def _rect(x: float, y: float, w: float, h: float, fill: str, tip: str = "", extra: str = "") -> str:
    title = f"<title>{escape(tip)}</title>" if tip else ""
    return (
        f'<rect x="{x:.1f}" y="{y:.1f}" width="{max(w, 0):.1f}" height="{max(h, 0):.1f}" '
        f'fill="{fill}"{extra}>{title}</rect>'
    )


def _text(x: float, y: float, text: str, anchor: str = "start", size: int = 11) -> str:
    return (
        f'<text x="{x:.1f}" y="{y:.1f}" font-size="{size}" text-anchor="{anchor}" '
        f'fill="#444">{escape(text)}</text>'
    )


def run_strip(runs: list[Row], slots: int = 20) -> str:
    """The last ``slots`` runs of one sync, oldest left, coloured by outcome."""
    size, gap = 14, 2
    body = []
    offset = slots - len(runs)
    for i in range(slots):
        x = i * (size + gap)
        if i < offset:
            body.append(_rect(x, 1, size, size, "none", extra=' stroke="#d5d8dc"'))
            continue
        run = runs[i - offset]
        tip = f"{fmt_time(run['run_at'])} · {run['status']} · {fmt_seconds(run['duration_s'])}"
        body.append(_rect(x, 1, size, size, COLOURS.get(run["outcome"], EMPTY), tip))
    return _svg(slots * (size + gap), size + 2, body, "last runs by outcome")


def daily_stacked(days: list[Row], width: int = 900, height: int = 200) -> str:
    """Runs per day stacked by outcome, with a y-axis maximum and date labels."""
    left, bottom, top = 36, 20, 10
    plot_w, plot_h = width - left - 4, height - bottom - top
    peak = max((sum(d[k] for k in STACK) for d in days), default=0) or 1
    step = plot_w / max(len(days), 1)
    body = [
        _text(left - 4, top + 8, str(peak), "end"),
        _text(left - 4, top + plot_h, "0", "end"),
        f'<line x1="{left}" y1="{top + plot_h}" x2="{width - 4}" y2="{top + plot_h}" '
        'stroke="#999"/>',
    ]
    for i, day in enumerate(days):
        x, y = left + i * step, top + plot_h
        for key in STACK:
            h = day[key] / peak * plot_h
            if h > 0:
                tip = f"{day['day']}: {day[key]} {key.replace('_', ' ')}"
                body.append(_rect(x + 0.5, y - h, max(step - 1, 1), h, COLOURS[key], tip))
                y -= h
        if i % 7 == 0 or i == len(days) - 1:
            body.append(_text(x + step / 2, height - 5, str(day["day"])[5:], "middle", 10))
    return _svg(width, height, body, "daily runs by outcome")


def duration_bars(rows: list[Row], width: int = 900) -> str:
    """Per sync: a bar to p95, a darker bar to p50 and a tick at the maximum."""
    label_w, info_w, row_h = 170, 290, 22
    plot_w = width - label_w - info_w
    scale = max((r["max_s"] or 0 for r in rows), default=0) or 1
    body = []
    for i, row in enumerate(rows):
        y = i * row_h + 4
        p50, p95, peak = row["p50_s"] or 0, row["p95_s"] or 0, row["max_s"] or 0
        body.append(_text(label_w - 8, y + 12, str(row["name"])[:28], "end"))
        body.append(
            _rect(
                label_w,
                y + 2,
                p95 / scale * plot_w,
                14,
                "#4a90d9",
                f"p95 {fmt_seconds(p95)}",
                ' fill-opacity="0.35"',
            )
        )
        body.append(
            _rect(label_w, y + 2, p50 / scale * plot_w, 14, "#4a90d9", f"p50 {fmt_seconds(p50)}")
        )
        mx = label_w + peak / scale * plot_w
        body.append(
            f'<line x1="{mx:.1f}" y1="{y}" x2="{mx:.1f}" y2="{y + 18}" stroke="#333">'
            f"<title>max {escape(fmt_seconds(peak))}</title></line>"
        )
        info = f"p50 {fmt_seconds(p50)} · p95 {fmt_seconds(p95)} · max {fmt_seconds(peak)}"
        if row.get("regressed_runs"):
            info += f" · {row['regressed_runs']} regressed"
        body.append(_text(label_w + plot_w + 8, y + 12, info))
    return _svg(width, max(len(rows), 1) * row_h + 8, body, "durations p50 and p95 per sync")


def failure_calendar(days: list[Row], first: date, last: date) -> str:
    """A week-by-weekday grid (Monday on top) shaded by the number of failed runs, from
    ``first`` to ``last`` (one day at least)."""
    size, gap, left, top = 16, 3, 30, 16
    last = max(first, last)
    start = first - timedelta(days=first.weekday())
    weeks = (last - start).days // 7 + 1
    by_day = {d["day"]: d for d in days}
    peak = max((d["failed"] for d in days), default=0) or 1
    body = [
        _text(0, top + i * (size + gap) + 10, name, size=9)
        for i, name in ((0, "Mon"), (2, "Wed"), (4, "Fri"), (6, "Sun"))
    ]
    for offset in range((last - start).days + 1):
        day = start + timedelta(days=offset)
        if day < first:
            continue
        x = left + (offset // 7) * (size + gap)
        y = top + day.weekday() * (size + gap)
        if day.day == 1 or day == first:
            body.append(_text(x, 10, day.strftime("%b"), size=9))
        row = by_day.get(day)
        failed = row["failed"] if row else 0
        fill = EMPTY if failed == 0 else COLOURS["failed"]
        opacity = 1.0 if failed == 0 else 0.3 + 0.7 * failed / peak
        tip = f"{day}: {failed} failed" + (f", {row['partial']} partial" if row else "")
        body.append(_rect(x, y, size, size, fill, tip, f' fill-opacity="{opacity:.2f}"'))
    return _svg(left + weeks * (size + gap), top + 7 * (size + gap), body, "failures by day")


def schema_grid(
    executions: list[Row], schemas: list[str], cells: dict[tuple[str, str], Row]
) -> str:
    """Schemas (rows) by executions (columns, oldest left), coloured by the schema's outcome."""
    size, gap, label_w = 14, 2, 150
    body = []
    for j, schema in enumerate(schemas):
        y = j * (size + gap)
        body.append(_text(label_w - 8, y + 11, schema[:22], "end"))
        for i, run in enumerate(executions):
            x = label_w + i * (size + gap)
            cell = cells.get((run["execution_id"], schema))
            if cell is None:
                body.append(_rect(x, y, size, size, "none", "not in this run", ' stroke="#d5d8dc"'))
                continue
            tip = f"{schema} · {fmt_time(cell['run_at'])} · {cell['status']}"
            if cell.get("status_message"):
                tip += f" · {cell['status_message']}"
            body.append(_rect(x, y, size, size, COLOURS.get(cell["schema_outcome"], EMPTY), tip))
    width = max(label_w + max(len(executions), 1) * (size + gap), label_w + 200)
    height = max(len(schemas), 1) * (size + gap)
    if executions:  # date the first and the last column, oldest left
        body.append(_text(label_w, height + 11, fmt_time(executions[0]["run_at"]), size=9))
        body.append(_text(width, height + 11, fmt_time(executions[-1]["run_at"]), "end", 9))
    return _svg(width, height + 14, body, "schema by run grid")
