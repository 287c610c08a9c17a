"""Plain-text rendering of a report: a digest first, then sync_health as a table.

Everything that reaches a terminal goes through ``printable``: names and messages come from
the API, and a control character in one (an escape sequence, OSC 52 that writes the
clipboard, a carriage return that overwrites a line) is shown, never obeyed.  Widths are
screen columns (``display_width``): a CJK character takes two, a combining mark none.
"""

from __future__ import annotations

import textwrap
import unicodedata
from collections.abc import Callable

from pipelines.reports.model import (
    HEALTH_ORDER,
    Report,
    Row,
    digest_sections,
    fmt_pct,
    fmt_seconds,
    fmt_time,
)
from pipelines.reports.runs import header_lines

ELLIPSIS = "…"
# C0 controls, DEL and C1 controls, each shown as a visible escape (\x1b, \n, \x9b, ...);
# also the bidirectional overrides, which reorder what a terminal shows
_ESCAPES = {c: f"\\x{c:02x}" for c in (*range(0x20), *range(0x7F, 0xA0))}
_ESCAPES.update({ord("\n"): "\\n", ord("\t"): "\\t", ord("\r"): "\\r"})
_ESCAPES.update({c: f"\\u{c:04x}" for c in (*range(0x202A, 0x202F), *range(0x2066, 0x206A))})


def printable(text: object) -> str:
    """``text`` with every C0/C1 control character (newline and tab too) and bidirectional
    override as a visible escape: ESC becomes the four characters ``\\x1b``."""
    return str(text).translate(_ESCAPES)


def display_width(text: str) -> int:
    """Screen columns: 2 for wide and fullwidth characters, 0 for combining marks."""
    return sum(_char_width(c) for c in text)


def _char_width(char: str) -> int:
    if char.isascii():
        return 1
    if unicodedata.combining(char) or unicodedata.category(char) in ("Mn", "Me", "Cf"):
        return 0
    return 2 if unicodedata.east_asian_width(char) in ("W", "F") else 1


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


def _pad(text: str, width: int, right: bool = False) -> str:
    """``text`` padded with spaces to ``width`` columns (on the left when ``right``)."""
    fill = " " * max(width - display_width(text), 0)
    return fill + text if right else text + fill


def _items(title: str, pairs: list[tuple[str, str]], width: int) -> list[str]:
    if not pairs:
        return []
    widest = max(display_width(printable(label)) for label, _ in pairs)
    label_width = min(widest, max(width // 3, 10))
    lines = ["", title]
    for label, detail in pairs:
        lines.append(
            _cut(f"  {_pad(_fit(label, label_width), label_width)}  {_fit(detail, width)}", width)
        )
    return lines


def _ratio(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}x"


# (header, width, cell) for the sync_health table; the name column takes what is left.
# Text columns (negative width) are left-aligned, numbers right-aligned.
_COLUMNS: tuple[tuple[str, int, Callable[[Row], str]], ...] = (
    ("HEALTH", -9, lambda r: r["health"]),
    ("LAST RUN", -11, lambda r: r["last_status"] or "-"),
    ("LAST OK", 7, lambda r: fmt_seconds(r["staleness_s"])),
    ("LATE", 5, lambda r: _ratio(r["lateness_ratio"])),
    ("RUNS 7D", 7, lambda r: str(r["runs_7d"])),
    ("OK 7D", 5, lambda r: fmt_pct(r["success_rate_7d"])),
    ("FAIL 7D", 7, lambda r: fmt_pct(r["failed_rate_7d"])),
    ("P50", 5, lambda r: fmt_seconds(r["p50_duration_s"])),
    ("P95", 5, lambda r: fmt_seconds(r["p95_duration_s"])),
    ("STREAK", 6, lambda r: str(r["failure_streak"])),
)


def _align(text: str, width: int) -> str:
    return _pad(text, abs(width), right=width > 0)


def _table(rows: list[Row], width: int) -> list[str]:
    fixed = sum(abs(w) + 1 for _, w, _ in _COLUMNS)
    name_width = max(width - fixed, 8)
    header = _pad("SYNC", name_width) + "".join(f" {_align(h, w)}" for h, w, _ in _COLUMNS)
    lines = [_cut(header, width)]
    for row in rows:
        cells = "".join(f" {_align(_fit(cell(row), abs(w)), w)}" for _, w, cell in _COLUMNS)
        name = _fit(row["name"] or row["bulk_sync_id"], name_width)
        lines.append(_cut(_pad(name, name_width) + cells, width))
    return lines


def _runlog(report: Report, width: int) -> list[str]:
    """The run log's header lines; a failure's reason wraps onto at most 3 more lines."""
    out = []
    for line in header_lines(report.runlog, report.now):
        text = " ".join(printable(line.text).split())
        if line.level != "fail":
            out.append(_cut(text, width))
            continue
        wrapped = textwrap.wrap(text, width, subsequent_indent="  ", max_lines=4, placeholder=" …")
        out += [_cut(part, width) for part in wrapped]
    return out


def render_terminal(report: Report, width: int = 100) -> str:
    """The report as text no wider than ``width`` columns."""
    counts = report.health_counts()
    focus = f" · sync {report.sync}" if report.sync else ""
    lines = [
        _fit(
            f"Polytomic sync report · dataset {report.dataset} · {fmt_time(report.now)} UTC"
            f" · since {fmt_time(report.since)}{focus}",
            width,
        ),
        _fit(
            f"{len(report.syncs)} sync{'' if len(report.syncs) == 1 else 's'}: "
            + " · ".join(
                f"{counts[h]} {h.replace('_', ' ')}" for h in HEALTH_ORDER if counts.get(h)
            ),
            width,
        ),
    ]
    lines += _runlog(report, width)
    for title, items in digest_sections(report):
        lines += _items(title, items, width)
    lines += ["", "Sync health", *_table(report.syncs, width)]
    return "\n".join(line.rstrip() for line in lines) + "\n"
