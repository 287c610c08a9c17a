"""Plain-text rendering of a report: a digest first, then sync_health as a table."""

from __future__ import annotations

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

ELLIPSIS = "…"


def _fit(text: object, width: int) -> str:
    """One line of ``text`` (whitespace collapsed) cut to ``width`` characters, marking the cut."""
    return _cut(" ".join(str(text).split()), width)


def _cut(line: str, width: int) -> str:
    return line if len(line) <= width else line[: max(width - 1, 0)] + ELLIPSIS


def _items(title: str, pairs: list[tuple[str, str]], width: int) -> list[str]:
    if not pairs:
        return []
    label_width = min(max(len(label) for label, _ in pairs), max(width // 3, 10))
    lines = ["", title]
    for label, detail in pairs:
        lines.append(
            _cut(f"  {_fit(label, label_width):<{label_width}}  {_fit(detail, width)}", width)
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
    return f"{text:<{-width}}" if width < 0 else f"{text:>{width}}"


def _table(rows: list[Row], width: int) -> list[str]:
    fixed = sum(abs(w) + 1 for _, w, _ in _COLUMNS)
    name_width = max(width - fixed, 8)
    header = f"{'SYNC':<{name_width}}" + "".join(f" {_align(h, w)}" for h, w, _ in _COLUMNS)
    lines = [_cut(header, width)]
    for row in rows:
        cells = "".join(f" {_align(_fit(cell(row), abs(w)), w)}" for _, w, cell in _COLUMNS)
        lines.append(
            _cut(
                f"{_fit(row['name'] or row['bulk_sync_id'], name_width):<{name_width}}" + cells,
                width,
            )
        )
    return lines


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
    for title, items in digest_sections(report):
        lines += _items(title, items, width)
    lines += ["", "Sync health", *_table(report.syncs, width)]
    return "\n".join(line.rstrip() for line in lines) + "\n"
