"""The HTML page's charts explain themselves (issue #17, section 5): a legend entry for
every colour, white included; a time axis under the duration bars; month and date labels
spaced so that they cannot overlap; and charts that fit a phone's width.
"""

from __future__ import annotations

import itertools
import re
from datetime import date, timedelta
from typing import Any

import pytest

from pipelines.reports import charts
from pipelines.reports.model import COLOURS
from tests.reports.test_html import page, report, sections, tag, text

__all__ = ["page", "report"]  # the fixtures, shared with test_html


# -- legends and axes ------------------------------------------------------------------------


def colours_drawn(section: Any) -> set[str]:
    """Fills of the marks, and strokes of lines that are no grid line."""
    found = set()
    for e in section.iter():
        if tag(e) == "rect":
            found.add(e.get("fill").lower())
        elif tag(e) == "line" and e.get("class") != "grid":
            found.add(e.get("stroke").lower())
    return found


def legend_colours(section: Any) -> set[str]:
    legends = [e for e in section.iter() if tag(e) == "p" and e.get("class") == "legend"]
    styles = [i.get("style") for p in legends for i in p.iter("i")]
    return {re.search(r"background:(#[0-9a-f]{6})", s).group(1) for s in styles}


def test_every_colour_on_the_page_has_a_legend_entry(page):
    charts_seen = 0
    for title, section in sections(page).items():
        drawn = colours_drawn(section)
        if not drawn:
            continue
        charts_seen += 1
        assert drawn <= legend_colours(section), (title, drawn - legend_colours(section))
    assert charts_seen == 5
    strips = sections(page)["Last 20 runs per sync"]
    assert charts.NO_RUN in colours_drawn(strips)  # white is drawn, and in the legend
    assert COLOURS["unknown"] in colours_drawn(strips)  # a status from the future API
    assert "no run" in text(strips) and "unknown" in text(strips)


def test_the_calendar_legend_runs_up_to_the_worst_day(page, report):
    calendar = sections(page)["Failures by day"]
    worst = max(d["failed"] for d in report.daily)
    legend = text(next(e for e in calendar.iter() if e.get("class") == "legend"))
    assert "no failed run" in legend and f"{worst} failed runs" in legend


def month_labels(svg: str) -> list[tuple[float, str]]:
    found = re.findall(r'<text x="([\d.]+)" y="10\.0" font-size="9"[^>]*>(\w+)</text>', svg)
    return [(float(x), name) for x, name in found]


@pytest.mark.parametrize(
    ("first", "last"),
    [
        (date(2025, 1, 31), date(2025, 5, 2)),  # the period starts on a month's last day
        (date(2024, 12, 30), date(2025, 3, 12)),  # ... in the week of the 1st
        (date(2025, 1, 26), date(2025, 3, 12)),  # ... a Sunday: the 1st is one week on
        (date(2025, 2, 10), date(2025, 3, 12)),  # the 30-day default
        (date(2024, 3, 1), date(2025, 3, 12)),  # a year
    ],
)
def test_calendar_month_labels_never_overlap(first, last):
    labels = month_labels(charts.failure_calendar([], first, last))
    xs = [x for x, _ in labels]
    assert xs == sorted(xs)
    assert all(b - a >= charts.MONTH_GAP for a, b in itertools.pairwise(xs))
    assert charts.MONTH_GAP >= 3 * 9  # three letters of a 9 px font
    starts = {d.strftime("%b") for d in (first + timedelta(n) for n in range((last - first).days))
              if d.day == 1}  # fmt: skip
    assert {name for _, name in labels} >= starts  # every month that starts is named


def test_the_demo_periods_calendar_names_the_month_once():
    svg = charts.failure_calendar([], date(2026, 10, 31), date(2026, 11, 30))
    assert [name for _, name in month_labels(svg)] == ["Nov"]  # not "Oct" over "Nov"


def axis_labels(html: str) -> list[tuple[float, str]]:
    axis = re.search(r'<div class="xaxis"[^>]*>(.*?)</div>', html).group(1)
    return [(float(p), t) for p, t in re.findall(r'style="left:([\d.]+)%">([^<]*)<', axis)]


@pytest.mark.parametrize("days", [1, 8, 31, 92, 365])
def test_daily_date_labels_never_overlap_on_a_narrow_plot(days):
    start = date(2025, 1, 1)
    rows = [
        {"day": start + timedelta(i), "runs": 1, **dict.fromkeys(charts.STACK, 0), "success": 1}
        for i in range(days)
    ]
    labels = axis_labels(charts.daily_stacked(rows))
    assert labels[-1][1] == (start + timedelta(days - 1)).isoformat()[5:]  # the latest day
    widest = max(len(t) for _, t in labels) * charts.CHAR_PX
    pairs = itertools.pairwise(labels)
    gaps = [(b - a) / 100 * charts.MIN_PLOT_PX for (a, _), (b, _) in pairs]
    assert all(gap >= widest for gap in gaps), (days, gaps)


def test_the_duration_bars_have_a_time_axis_that_covers_the_longest_run(page, report):
    start = page.index("<h2>Durations of completed runs")
    html = page[start : page.index("<h2>", start + 4)]
    labels = axis_labels(html)
    assert labels[0] == (0.0, "0s") and labels[-1][0] == 100.0 and len(labels) >= 3
    assert [p for p, _ in labels] == sorted(p for p, _ in labels)
    top = seconds(labels[-1][1])
    assert top >= max(r["max_s"] for r in report.durations)
    # each bar is as long as its figure on that axis: the p95 bar of a 1000-wide plot
    widths = re.findall(rf'width="([\d.]+)" height="14.0" fill="{charts.P95}"', html)
    expected = [r["p95_s"] / top * 1000 for r in report.durations]
    assert [float(w) for w in widths] == pytest.approx(expected, abs=0.1)
    assert "duration" in html and ">p50 (median)<" in html and ">max<" in html


def seconds(label: str) -> float:
    unit = {"s": 1, "m": 60, "h": 3600, "d": 86400}[label[-1]]
    return float(label[:-1]) * unit


def test_tick_labels_are_exact():
    assert [charts.tick_label(s) for s in (0, 30, 90, 120, 5400, 86400)] == [
        "0s", "30s", "1.5m", "2m", "1.5h", "1d",
    ]  # fmt: skip


# -- a phone's width -------------------------------------------------------------------------


def test_charts_with_text_fit_a_phone_and_stretched_ones_have_no_text(page):
    for svg in re.findall(r"<svg [^>]*>.*?</svg>", page, re.S):
        opening = svg[: svg.index(">")]
        if 'preserveAspectRatio="none"' in opening:
            assert "<text" not in svg  # it would be squeezed with the marks
            assert 'class="stretch' in opening
        else:
            assert int(re.search(r'width="(\d+)"', opening).group(1)) <= 480
    assert "@media (max-width:640px)" in page
