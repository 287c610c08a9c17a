"""Plain-text rendering of a report: a digest first, then sync_health as a table.

Everything that reaches a terminal goes through ``printable``: names and messages come from
the API, and a control character in one (an escape sequence, OSC 52 that writes the
clipboard, a carriage return that overwrites a line) is shown, never obeyed.  Widths are
screen columns (``display_width``): a CJK character takes two, a combining mark none.

The report fits the terminal's width (``terminal_width``: ``COLUMNS``, else the terminal,
else 100).  Sync names are shown in full: a name wider than its column wraps onto the next
lines, indented.  When the table's columns leave a name less than ``MIN_NAME`` columns, the
least needed ones (P50, LATE, OK 7D, P95, LAST RUN) are left out, in that order; ``report
--json`` and the views have them all.

The HTML page shows API text the same way (``html_text``, ``html_name``), and the same
shares of finished runs (``finished_shares``), so the two renderings agree.
"""

from __future__ import annotations

import html
import math
import shutil
import unicodedata
from collections.abc import Callable

from pipelines.reports.model import (
    HEALTH_ORDER,
    Report,
    Row,
    digest_sections,
    fmt_seconds,
    fmt_time,
    sync_label,
)
from pipelines.reports.runs import header_lines

ELLIPSIS = "…"
DEFAULT_WIDTH = 100  # when the output is no terminal and COLUMNS is not set
MIN_WIDTH = 40
MIN_NAME = 20  # columns a sync name keeps before the table leaves out a column
NAME_LINES = 8  # a name longer than this many lines is cut (names are rarely > 1 line)
DETAIL_LINES = 3  # lines of a digest item's detail (an error message) before it is cut
# C0 controls, DEL and C1 controls, each shown as a visible escape (\x1b, \n, \x9b, ...);
# also the bidirectional overrides, which reorder what a terminal shows
_ESCAPES = {c: f"\\x{c:02x}" for c in (*range(0x20), *range(0x7F, 0xA0))}
_ESCAPES.update({ord("\n"): "\\n", ord("\t"): "\\t", ord("\r"): "\\r"})
_ESCAPES.update({c: f"\\u{c:04x}" for c in (*range(0x202A, 0x202F), *range(0x2066, 0x206A))})
# on an HTML page, tab, newline and carriage return are only white space: one space each
_HTML_ESCAPES = {**_ESCAPES, **dict.fromkeys(map(ord, "\t\n\r"), " ")}


def printable(text: object) -> str:
    """``text`` with every C0/C1 control character (newline and tab too) and bidirectional
    override as a visible escape: ESC becomes the four characters ``\\x1b``."""
    return str(text).translate(_ESCAPES)


def html_text(text: object) -> str:
    """``text`` for an HTML page: escaped, with its control characters and bidirectional
    overrides shown as ``printable`` shows them (tab, newline, CR as a space)."""
    return html.escape(str(text).translate(_HTML_ESCAPES))


def html_name(text: object) -> str:
    """A name (from the API) on an HTML page: ``html_text`` in a ``<bdi>``, so right-to-left
    text in it never reorders what stands around it."""
    return f"<bdi>{html_text(text)}</bdi>"


def split_100(counts: list[float]) -> list[int]:
    """Whole percentages of ``counts`` that add up to 100 (largest remainder); all 0 when
    the counts are."""
    total = sum(counts)
    if total <= 0:
        return [0] * len(counts)
    exact = [c * 100 / total for c in counts]
    shares = [math.floor(e) for e in exact]
    by_remainder = sorted(range(len(counts)), key=lambda i: (shares[i] - exact[i], i))
    for i in by_remainder[: 100 - sum(shares)]:
        shares[i] += 1
    return shares


def finished_shares(row: Row, window: str = "7d") -> list[int] | None:
    """Success, partial and failed percentages of a sync_health row's finished runs in the
    window (sum 100), as the terminal and the HTML page show them; None without runs."""
    runs_n = row[f"runs_{window}"] or 0
    if not runs_n:
        return None
    rates = [row[f"{k}_rate_{window}"] or 0 for k in ("success", "partial", "failed")]
    return split_100([round(rate * runs_n) for rate in rates])


def display_width(text: str) -> int:
    """Screen columns: 2 for wide and fullwidth characters, 0 for combining marks."""
    return sum(_char_width(c) for c in text)


def _char_width(char: str) -> int:
    if char.isascii():
        return 1
    if unicodedata.combining(char) or unicodedata.category(char) in ("Mn", "Me", "Cf"):
        return 0
    return 2 if unicodedata.east_asian_width(char) in ("W", "F") else 1


def terminal_width(default: int = DEFAULT_WIDTH) -> int:
    """Columns to render for: ``COLUMNS``, else the terminal's width, else ``default``."""
    return max(shutil.get_terminal_size((default, 24)).columns, MIN_WIDTH)


def _fit(text: object, width: int) -> str:
    """One line of ``text`` (made printable, whitespace collapsed) cut to ``width`` columns,
    marking the cut."""
    return _cut(" ".join(printable(text).split()), width)


def _cut(line: str, width: int) -> str:
    if display_width(line) <= width:
        return line
    out, used = [], 0
    for char in line:
        used += _char_width(char)
        if used > width - 1:
            break
        out.append(char)
    return "".join(out) + ELLIPSIS


def _clean(text: object) -> str:
    """``text`` made printable, its runs of whitespace one space."""
    return " ".join(printable(text).split())


def _wrap(text: str, width: int, max_lines: int = NAME_LINES, indent: int = 0) -> list[str]:
    """``text`` (``_clean``) in lines of at most ``width`` columns, broken between words
    (inside a word only when it is wider than a line); lines after the first are indented
    by ``indent`` spaces.  More than ``max_lines`` lines: the last one kept ends with "…"."""
    width = max(width, 2)
    rest_width = max(width - indent, 2)
    limit = max_lines * width * 4  # a 5 MB message is not split into words to show 3 lines
    clipped = len(text) > limit
    lines: list[str] = []
    line, used = "", 0
    for word in text[:limit].split(" "):
        room = width if not lines else rest_width
        size = display_width(word)
        if line and used + 1 + size <= room:
            line, used = f"{line} {word}", used + 1 + size
            continue
        if line:
            lines.append(line)
            room = rest_width
        while size > room:  # a word wider than a line
            head = _columns(word, room)
            lines.append(head)
            word = word[len(head) :]
            size, room = display_width(word), rest_width
        line, used = word, size
        if len(lines) > max_lines:
            break
    if line or not lines:
        lines.append(line)
    if len(lines) > max_lines or clipped:
        lines = lines[:max_lines]
        room = width if len(lines) == 1 else rest_width
        lines[-1] = _columns(lines[-1], room - 1) + ELLIPSIS
    return [lines[0], *(" " * indent + line for line in lines[1:])]


def _columns(text: str, width: int) -> str:
    """The longest start of ``text`` at most ``width`` columns wide (one character at least)."""
    used = 0
    for index, char in enumerate(text):
        used += _char_width(char)
        if used > width:
            return text[: max(index, 1)]
    return text


def _pad(text: str, width: int, right: bool = False) -> str:
    """``text`` padded with spaces to ``width`` columns (on the left when ``right``)."""
    fill = " " * max(width - display_width(text), 0)
    return fill + text if right else text + fill


def _items(title: str, pairs: list[tuple[str, str]], width: int) -> list[str]:
    """A digest section: each name (in full, wrapped) beside its detail (wrapped, at most
    ``DETAIL_LINES`` lines)."""
    if not pairs:
        return []
    labels = [_clean(label) for label, _ in pairs]
    label_width = min(max(display_width(label) for label in labels), max(width // 3, 10))
    detail_width = max(width - label_width - 4, 10)
    lines = ["", title]
    for label, (_, detail) in zip(labels, pairs, strict=True):
        left = _wrap(label, label_width, indent=1)
        right = _wrap(_clean(detail), detail_width, DETAIL_LINES, indent=2)
        for index in range(max(len(left), len(right))):
            name = left[index] if index < len(left) else ""
            text = right[index] if index < len(right) else ""
            lines.append(_cut(f"  {_pad(name, label_width)}  {text}", width))
    return lines


def _ratio(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}x"


def _share(row: Row, index: int) -> str:
    """Success (0) or failed (2) share of the last 7 days' finished runs, as on the page."""
    shares = finished_shares(row)
    return "-" if shares is None else f"{shares[index]}%"


# (header, widest cell, cell) for the sync_health table; each column is as wide as its
# header and its widest cell (up to "widest cell"), the name column takes what is left.
# Text columns (negative width) are left-aligned, numbers right-aligned.
_COLUMNS: tuple[tuple[str, int, Callable[[Row], str]], ...] = (
    ("HEALTH", -9, lambda r: r["health"]),
    ("LAST RUN", -11, lambda r: r["last_status"] or "-"),
    ("LAST OK", 7, lambda r: fmt_seconds(r["staleness_s"])),
    ("LATE", 7, lambda r: _ratio(r["lateness_ratio"])),
    ("RUNS 7D", 7, lambda r: str(r["runs_7d"])),
    ("OK 7D", 5, lambda r: _share(r, 0)),
    ("FAIL 7D", 7, lambda r: _share(r, 2)),
    ("P50", 7, lambda r: fmt_seconds(r["p50_duration_s"])),
    ("P95", 7, lambda r: fmt_seconds(r["p95_duration_s"])),
    ("STREAK", 6, lambda r: str(r["failure_streak"])),
)
# Left out in this order while a name would get fewer than MIN_NAME columns.
_OPTIONAL = ("P50", "LATE", "OK 7D", "P95", "LAST RUN")


def _table(rows: list[Row], width: int) -> list[str]:
    cells = [[_fit(cell(row), abs(w)) for _, w, cell in _COLUMNS] for row in rows]
    widths = [
        max([display_width(header)] + [display_width(c[i]) for c in cells])
        for i, (header, _, _) in enumerate(_COLUMNS)
    ]
    names = [_clean(sync_label(row)) for row in rows]
    longest = max([display_width("SYNC")] + [display_width(name) for name in names])
    shown = list(range(len(_COLUMNS)))

    def room() -> int:
        return width - sum(widths[i] + 1 for i in shown)

    for header in _OPTIONAL:
        if room() >= min(longest, MIN_NAME):
            break
        shown.remove([h for h, _, _ in _COLUMNS].index(header))
    name_width = min(longest, max(room(), MIN_NAME))

    def line(name: str, values: list[str]) -> str:
        row = "".join(f" {_pad(values[i], widths[i], right=_COLUMNS[i][1] > 0)}" for i in shown)
        return _cut((_pad(name, name_width) + row).rstrip(), width)

    lines = [line("SYNC", [h for h, _, _ in _COLUMNS])]
    for name, values in zip(names, cells, strict=True):
        first, *more = _wrap(name, name_width, indent=2)
        lines.append(line(first, values))
        lines += [_cut(part, width) for part in more]
    return lines


def _runlog(report: Report, width: int) -> list[str]:
    """The run log's header lines, each wrapped onto at most 3 more lines, indented."""
    out = []
    for line in header_lines(report.runlog, report.now):
        out += _wrap(_clean(line.text), width, max_lines=4, indent=2)
    return out


def render_terminal(report: Report, width: int = DEFAULT_WIDTH) -> str:
    """The report as text no wider than ``width`` columns.  Each section says its window:
    the header gives the report's clock, which the digest and the table describe; the volume
    anomalies are those of the period (``--since``); the table's columns name theirs."""
    width = max(width, MIN_WIDTH)
    counts = report.health_counts()
    focus = ""
    if report.sync is not None:
        one = report.syncs[0] if len(report.syncs) == 1 else None
        focus = f" · sync {sync_label(one) if one else report.sync}"
    title = f"Polytomic sync report · dataset {report.dataset} · {fmt_time(report.now)} UTC"
    lines = _wrap(_clean(title + focus), width, indent=2)
    count = len(report.syncs)
    states = " · ".join(f"{counts[h]} {h.replace('_', ' ')}" for h in HEALTH_ORDER if counts.get(h))
    syncs = f"{count} sync{'' if count == 1 else 's'}" + (f": {states}" if states else "")
    lines += _wrap(syncs, width, indent=2)
    lines += _runlog(report, width)
    for title, items in digest_sections(report):
        if title == "Volume anomalies":
            title = f"{title} since {fmt_time(report.since)} UTC"
        lines += _items(title, items, width)
    lines += ["", "Sync health", *_table(report.syncs, width)]
    return "\n".join(line.rstrip() for line in lines) + "\n"
