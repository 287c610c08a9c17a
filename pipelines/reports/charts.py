"""Inline SVG charts for the HTML report, generated in Python (no scripts, no network).

Every colour a chart draws with has a legend entry (``legend``): the charts and the legends
take their colours from the same constants.  Times are UTC, and say so.

The daily chart and the duration bars stretch to the page's width: their marks are an SVG
without text (``preserveAspectRatio="none"``), their labels are HTML placed by percentage,
so they stay readable on a phone.  Labels are spaced for a plot ``MIN_PLOT_PX`` wide.
"""

from __future__ import annotations

import math
from datetime import date, timedelta

from pipelines.reports.model import COLOURS, Row, fmt_seconds
from pipelines.reports.model import fmt_utc as utc
from pipelines.reports.terminal import html_name, html_text, split_100

STACK = ("success", "partial", "failed", "canceled", "in_flight")
EMPTY = "#eef0f3"  # a calendar day without a failed run
NO_RUN = "#ffffff"  # an empty slot: no run (strips), schema not in that run (grids)
BORDER = "#c4c8ce"  # the outline of the white cells
P50, P95, MAX = "#2f6fb5", "#a9c9ee", "#333333"  # duration bars and the max tick
MIN_PLOT_PX = 300  # the narrowest plot the labels are spaced for
CHAR_PX = 6.5  # width of one character of a 10-11 px label, generously
MONTH_GAP = 38  # px between calendar month labels: two week columns


def _svg(width: float, height: float, body: list[str], label: str) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0f}" height="{height:.0f}" '
        f'viewBox="0 0 {width:.0f} {height:.0f}" role="img" aria-label="{html_text(label)}">'
        + "".join(body)
        + "</svg>"
    )


def _stretched(width: float, height: float, body: list[str], label: str, css: str) -> str:
    """An SVG that fills its box whatever its aspect: marks only, no text."""
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" class="{css}" viewBox="0 0 {width:g} '
        f'{height:g}" preserveAspectRatio="none" role="img" aria-label="{html_text(label)}">'
        + "".join(body)
        + "</svg>"
    )


def _rect(x: float, y: float, w: float, h: float, fill: str, tip: str = "", extra: str = "") -> str:
    title = f"<title>{html_text(tip)}</title>" if tip else ""
    return (
        f'<rect x="{x:.1f}" y="{y:.1f}" width="{max(w, 0):.1f}" height="{max(h, 0):.1f}" '
        f'fill="{fill}"{extra}>{title}</rect>'
    )


def _text(x: float, y: float, text: str, anchor: str = "start", size: int = 11) -> str:
    return (
        f'<text x="{x:.1f}" y="{y:.1f}" font-size="{size}" text-anchor="{anchor}" '
        f'fill="#444">{html_text(text)}</text>'
    )


def _gridline(x1: float, y1: float, x2: float, y2: float) -> str:
    return (
        f'<line class="grid" x1="{x1:g}" y1="{y1:g}" x2="{x2:g}" y2="{y2:g}" stroke="#dde0e4" '
        'vector-effect="non-scaling-stroke"/>'
    )


def legend(entries: list[tuple[str, str]], opacity: dict[str, float] | None = None) -> str:
    """Swatches with labels: (colour, label); white swatches get an outline."""
    items = []
    for colour, label in entries:
        style = f"background:{colour}"
        if colour in (NO_RUN, EMPTY):  # pale: outlined, to be seen on white
            style += f";border:1px solid {BORDER}"
        if opacity and label in opacity:
            style += f";opacity:{opacity[label]:.2f}"
        css = "swatch tick" if colour == MAX else "swatch"  # the max is a tick, not a bar
        items.append(f'<span><i class="{css}" style="{style}"></i>{html_text(label)}</span>')
    return '<p class="legend">' + "".join(items) + "</p>"


def outcome_legend(
    outcomes: set[str], empty: str | None = None, base: tuple[str, ...] = STACK
) -> str:
    """The legend of an outcome-coloured chart: the ``base`` outcomes always, any other
    outcome drawn, and the white cell (``empty`` says what it means)."""
    keys = [*base, *sorted(o for o in outcomes if o not in base)]
    entries = [(COLOURS.get(k, EMPTY), k.replace("_", " ")) for k in keys]
    return legend(entries + ([(NO_RUN, empty)] if empty else []))


def _left(pct: float, text: str) -> str:
    """An axis label centred ``pct`` percent along its axis."""
    return f'<span style="left:{pct:.2f}%">{html_text(text)}</span>'


def run_strip(runs: list[Row], slots: int = 20) -> str:
    """The last ``slots`` runs of one sync, oldest left, coloured by outcome; white: no run."""
    size, gap = 14, 2
    body = []
    offset = slots - len(runs)
    for i in range(slots):
        x = i * (size + gap) + 1
        if i < offset:
            body.append(_rect(x, 1, size, size, NO_RUN, "no run", f' stroke="{BORDER}"'))
            continue
        run = runs[i - offset]
        tip = (
            f"execution {run['execution_id']} · {utc(run['run_at'])} · {run['status']} · "
            f"{fmt_seconds(run['duration_s'])}"
        )
        body.append(_rect(x, 1, size, size, COLOURS.get(run["outcome"], EMPTY), tip))
    return _svg(slots * (size + gap) + 2, size + 2, body, "last runs by outcome")


def _x_labels(count: int, text_of: list[str]) -> list[int]:
    """Indexes of the days to label: the last one, then every k-th back, k a whole number
    of weeks wide enough that no two labels meet on a ``MIN_PLOT_PX`` plot."""
    if not count:
        return []
    widest = max(len(t) for t in text_of) * CHAR_PX + 12
    weeks = math.ceil(count * widest / (MIN_PLOT_PX * 7))
    return list(range(count - 1, -1, -7 * max(weeks, 1)))[::-1]


def daily_stacked(days: list[Row]) -> str:
    """Runs per UTC day stacked by outcome; y axis 0 / half / peak, dates below."""
    count, height = max(len(days), 1), 100
    peak = max((sum(d[k] for k in STACK) for d in days), default=0) or 1
    body = [_gridline(0, height - f * height, count * 10, height - f * height) for f in (0.5, 1)]
    for i, day in enumerate(days):
        y = height
        done = [day["success"], day["partial"], day["failed"]]
        shares = zip(split_100(done), ("success", "partial", "failed"), strict=True)
        split = " · ".join(f"{p}% {k}" for p, k in shares)
        for key in STACK:
            h = day[key] / peak * height
            if h > 0:
                tip = f"{day['day']} (UTC day): {day[key]} {key.replace('_', ' ')}"
                tip += f" of {day['runs']} runs; finished: {split}" if sum(done) else ""
                body.append(_rect(i * 10 + 0.5, y - h, 9, h, COLOURS[key], tip))
                y -= h
    body.append(_gridline(0, height, count * 10, height))
    svg = _stretched(count * 10, height, body, "daily runs by outcome", "stretch daily-svg")
    texts = [str(d["day"])[5:] for d in days]
    x_axis = "".join(_left((i + 0.5) / count * 100, texts[i]) for i in _x_labels(len(days), texts))
    half = f"{peak / 2:g}" if peak > 1 else ""
    y_axis = f'<span style="top:0">{peak}</span><span style="top:50%">{half}</span>'
    return (
        f'<div class="daily"><div class="yaxis">{y_axis}<span style="top:100%">0</span></div>'
        f'<div class="plot">{svg}<div class="xaxis" aria-label="UTC days">{x_axis}</div>'
        "</div></div>"
    )


NICE_STEPS = (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600)


def _step(top: float) -> float:
    """A round tick step giving at most 5 intervals up to ``top`` seconds."""
    for step in NICE_STEPS:
        if top / step <= 5:
            return step
    return 43200 * math.ceil(top / 5 / 43200)


def tick_label(seconds: float) -> str:
    """An axis tick: exact, in the largest unit it is a whole or half number of."""
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and (seconds * 2) % size == 0:
            return f"{seconds / size:g}{unit}"
    return f"{seconds:g}s"


def duration_bars(rows: list[Row]) -> str:
    """Per sync: a light bar to p95, a dark bar to p50, a tick at the maximum, over a
    shared time axis; the figures are written beside each bar."""
    top = max((r["max_s"] or 0 for r in rows), default=0) or 1
    step = _step(top)
    axis_max = step * math.ceil(top / step)
    ticks = [step * i for i in range(round(axis_max / step) + 1)]
    lines = []
    for row in rows:
        p50, p95, peak = row["p50_s"] or 0, row["p95_s"] or 0, row["max_s"] or 0
        info = f"p50 {fmt_seconds(p50)} · p95 {fmt_seconds(p95)} · max {fmt_seconds(peak)}"
        if row.get("regressed_runs"):
            info += f" · {row['regressed_runs']} regressed"
        body = [_gridline(t / axis_max * 1000, 0, t / axis_max * 1000, 20) for t in ticks]
        body.append(_rect(0, 3, p95 / axis_max * 1000, 14, P95, f"p95 {fmt_seconds(p95)}"))
        body.append(_rect(0, 3, p50 / axis_max * 1000, 14, P50, f"p50 {fmt_seconds(p50)}"))
        mx = min(peak / axis_max * 1000, 998)
        body.append(
            f'<line x1="{mx:.1f}" y1="0" x2="{mx:.1f}" y2="20" stroke="{MAX}" stroke-width="2" '
            f'vector-effect="non-scaling-stroke"><title>max {html_text(fmt_seconds(peak))}</title>'
            "</line>"
        )
        svg = _stretched(1000, 20, body, f"durations of {row['name']}", "stretch dur-svg")
        lines.append(
            f'<div class="dur-row"><span class="dur-name">{html_name(row["name"])}</span>'
            f'<div class="dur-bar">{svg}</div><span class="dur-info">{html_text(info)}</span></div>'
        )
    labels = "".join(_left(t / axis_max * 100, tick_label(t)) for t in ticks)
    axis = (
        '<div class="dur-row dur-axis"><span class="dur-name"></span><div class="dur-bar">'
        f'<div class="xaxis" aria-label="duration">{labels}</div></div>'
        '<span class="dur-info muted">duration</span></div>'
    )
    return f'<div class="durations">{"".join(lines)}{axis if rows else ""}</div>'


def calendar_shade(failed: int, peak: int) -> float:
    """The opacity of a day with ``failed`` failed runs when the worst day had ``peak``."""
    return 1.0 if failed == 0 else 0.3 + 0.7 * failed / max(peak, 1)


def failure_calendar(days: list[Row], first: date, last: date) -> str:
    """A week-by-weekday grid (Monday on top) shaded by the number of failed runs, from
    ``first`` to ``last`` (one day at least).  A month is named above the week it starts
    in; a name that would come closer than ``MONTH_GAP`` to the next is left out."""
    size, gap, left, top = 16, 3, 30, 16
    last = max(first, last)
    start = first - timedelta(days=first.weekday())
    weeks = (last - start).days // 7 + 1
    by_day = {d["day"]: d for d in days}
    peak = max((d["failed"] for d in days), default=0)
    body = [
        _text(0, top + i * (size + gap) + 10, name, size=9)
        for i, name in ((0, "Mon"), (2, "Wed"), (4, "Fri"), (6, "Sun"))
    ]
    months: list[tuple[float, str]] = []
    for offset in range((last - start).days + 1):
        day = start + timedelta(days=offset)
        if day < first:
            continue
        x = left + (offset // 7) * (size + gap)
        y = top + day.weekday() * (size + gap)
        if day.day == 1 or day == first:
            if months and x - months[-1][0] < MONTH_GAP:
                months.pop()  # the month that starts here wins over the period's first days
            months.append((x, day.strftime("%b")))
        row = by_day.get(day)
        failed = row["failed"] if row else 0
        fill = EMPTY if failed == 0 else COLOURS["failed"]
        tip = f"{day} (UTC day): {failed} failed"
        tip += f", {row['partial']} partial of {row['runs']} runs" if row else ""
        opacity = calendar_shade(failed, peak)
        body.append(_rect(x, y, size, size, fill, tip, f' fill-opacity="{opacity:.2f}"'))
    body += [_text(x, 10, name, size=9) for x, name in months]
    return _svg(left + weeks * (size + gap), top + 7 * (size + gap), body, "failures by day")


def calendar_legend(days: list[Row]) -> str:
    """No failed run, then the shades of 1 failed run up to the worst day's count."""
    peak = max((d["failed"] for d in days), default=0)
    counts = sorted({c for c in (1, (peak + 1) // 2, peak) if c >= 1})
    labels = {c: f"{c} failed run{'s' if c > 1 else ''}" for c in counts}
    entries = [(EMPTY, "no failed run")] + [(COLOURS["failed"], labels[c]) for c in counts]
    return legend(entries, {labels[c]: calendar_shade(c, peak) for c in counts})


def schema_grid(
    executions: list[Row], schemas: list[str], cells: dict[tuple[str, str], Row]
) -> str:
    """Schemas (rows) by executions (columns, oldest left), coloured by the schema's outcome;
    white: the schema was not in that run.  The first and last columns' times follow."""
    size, gap = 14, 2
    label_w = min(max((len(s) for s in schemas), default=4), 22) * CHAR_PX + 10
    body = []
    for j, schema in enumerate(schemas):
        y = j * (size + gap)
        body.append(_text(label_w - 8, y + 11, schema[:22], "end"))
        for i, run in enumerate(executions):
            x = label_w + i * (size + gap)
            cell = cells.get((run["execution_id"], schema))
            where = f"{schema} · execution {run['execution_id']} · {utc(run['run_at'])}"
            if cell is None:
                tip = f"{where} · not in this run"
                body.append(_rect(x, y, size, size, NO_RUN, tip, f' stroke="{BORDER}"'))
                continue
            tip = f"{where} · {cell['status']}"
            if cell.get("status_message"):
                tip += f" · {cell['status_message']}"
            body.append(_rect(x, y, size, size, COLOURS.get(cell["schema_outcome"], EMPTY), tip))
    width = label_w + max(len(executions), 1) * (size + gap)
    height = max(len(schemas), 1) * (size + gap)
    svg = _svg(width, height, body, "schema by run grid")
    if not executions:
        return svg
    first, newest = executions[0], executions[-1]
    return svg + "".join(
        f'<p class="muted small runs">{side}: {html_text(utc(run["run_at"]))}, execution '
        f"<code>{html_text(str(run['execution_id']))}</code></p>"
        for side, run in (("oldest (left)", first), ("newest (right)", newest))
    )
