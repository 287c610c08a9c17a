"""Text from the API is data: it never becomes SQL, markup, terminal commands or page weight.

Sync ids, names and status messages below are what a hostile (or unlucky) organisation could
send.  Each test runs on DuckDB and on PostgreSQL (see conftest.py).
"""

from __future__ import annotations

import json
import re
import unicodedata
from datetime import UTC, date, datetime, timedelta

import html5lib
import pytest

from pipelines.reports import charts
from pipelines.reports.report import build_report, render_html, render_terminal
from tests.reports.history import NOW, H, History

EVIL = "evil'{where}{ds}%s?--"  # an id that quotes, placeholders, a parameter mark, a comment
SECTIONS = [
    "Last 20 runs per sync",
    "Daily runs by outcome",
    "Durations of completed runs (p50, p95, max)",
    "Failures by day",
    "Schemas by run for the worst syncs",
    "Sync health",
]
NAMES = (
    "innocent <!--<script>",
    "</script><script>alert(1)</script>",
    "]]> & &amp; <b>bold",
)
ESCAPES = "\x1b]52;c;aGk=\x07\x9b"  # OSC 52 writes the clipboard; 0x9b is a C1 CSI
ESCAPED_MESSAGE = "\x1b[2J\t\r\nmsg"  # clears the screen; a tab, a carriage return


def failing_sync(h: History, sid: str, name: str | None = None, message: str = "boom") -> None:
    """A daily sync whose last runs fail with a failed schema: broken, and among the worst."""
    h.sync(sid, "daily")
    if name is not None:
        h.syncs[-1]["name"] = name
    for day in range(-5, 0):
        status = "failed" if day >= -3 else "completed"
        schemas = {"t": "failed" if status == "failed" else "completed", "u": "completed"}
        h.run(sid, NOW + day * 24 * H, status, 60, message=message, schemas=schemas)


def hostile_history() -> History:
    h = History()
    failing_sync(h, EVIL)
    failing_sync(h, "s_other")
    for i, name in enumerate(NAMES):
        failing_sync(h, f"s_name{i}", name=name, message=name)
    failing_sync(h, "s_escapes", name=ESCAPES, message=ESCAPED_MESSAGE)
    return h


@pytest.fixture
def hostile(load):
    return load(hostile_history())


def test_ids_and_names_are_bind_parameters_never_sql(hostile):
    seen: list[str] = []

    def query(sql, *args):
        seen.append(sql)
        return hostile.backend.query(sql, *args)

    report = build_report(query, hostile.dataset, sync=EVIL.replace("_", "-"))
    assert [r["bulk_sync_id"] for r in report.syncs] == [EVIL]
    for part in (report.runs, report.incidents, report.schema_grid, report.durations):
        assert part and {r["bulk_sync_id"] for r in part} == {EVIL}
    assert report.worst_syncs == [EVIL]
    assert sum(d["runs"] for d in report.daily) == 5
    assert not [sql for sql in seen if "evil" in sql]  # values travel as parameters


def test_the_page_keeps_every_section_whatever_the_names(hostile):
    report = build_report(hostile.backend.query, hostile.dataset)
    page = render_html(report)
    doc = html5lib.parse(page, namespaceHTMLElements=False)  # parsed as a browser does
    assert ["".join(h.itertext()) for h in doc.iter("h2")] == SECTIONS
    assert len(list(doc.iter("table"))) == 2  # the run strips and sync health
    svgs = [e for e in doc.iter() if isinstance(e.tag, str) and e.tag.endswith("svg")]
    assert len(svgs) >= 5 + len(report.worst_syncs)
    blocks = {s.get("id"): json.loads(s.text) for s in doc.iter("script")}
    assert len(blocks) == 6
    strip_names = {s["name"] for s in blocks["data-run-strips"]}
    assert set(NAMES) <= strip_names and ESCAPES in strip_names
    health = list(doc.iter("table"))[-1]
    shown = {"".join(tr[0].itertext()) for tr in health.iter("tr")}
    assert set(NAMES) <= shown
    for raw in ("<!--<", "</script><script>", "]]>"):
        for text in re.findall(r"<script[^>]*>(.*?)</script>", page, re.S):
            assert raw not in text


def test_the_terminal_gets_control_characters_as_visible_escapes(hostile):
    text = render_terminal(build_report(hostile.backend.query, hostile.dataset))
    controls = [c for c in text if (ord(c) < 32 and c != "\n") or 0x7F <= ord(c) < 0xA0]
    assert controls == []
    (row,) = [line for line in text.splitlines() if line.startswith("\\x1b]52;c;aGk=\\x07\\x9b ")]
    assert row.split()[1:3] == ["broken", "failed"]  # one row, its columns in place
    assert "in a row): \\x1b[2J\\t\\r\\nmsg" in text  # the digest's reason


def test_long_messages_are_cut_in_the_page_and_kept_whole_in_sql(load):
    h = History()
    h.sync("s_loud", "daily")
    for day in range(-5, 0):
        message = f"run {day}: " + "x" * 5_000_000
        h.run("s_loud", NOW + day * 24 * H, "failed", 60, message=message, schemas={"t": "failed"})
    wh = load(h)
    page = render_html(build_report(wh.backend.query, wh.dataset))
    assert len(page) < 300_000
    assert "run -1: xxxx" in page
    lengths = wh.query("select length(status_message) as n from {ds}.execution_outcomes")
    assert {r["n"] for r in lengths} == {5_000_000 + len("run -1: ")}


def test_a_since_long_before_the_data_starts_at_the_data(load):
    h = History()
    failing_sync(h, "s_a")
    wh = load(h)
    report = build_report(wh.backend.query, wh.dataset, since=datetime(1, 1, 1, tzinfo=UTC))
    assert report.since == datetime.combine(date(2025, 3, 7), datetime.min.time(), UTC)
    page = render_html(report)
    assert len(page) < 100_000
    calendar = re.search(r'<svg [^>]*aria-label="failures by day"', page).group(0)
    assert int(re.search(r'width="(\d+)"', calendar).group(1)) < 300


def test_a_since_in_the_future_is_refused(load):
    wh = load(hostile_history())
    with pytest.raises(ValueError, match="in the future"):
        build_report(wh.backend.query, wh.dataset, since=NOW + timedelta(minutes=1))


def test_the_calendar_never_has_a_negative_width():
    svg = charts.failure_calendar([], date(2999, 1, 1), date(2025, 3, 12))
    assert int(re.search(r'width="(-?\d+)"', svg).group(1)) > 0


def columns(text: str) -> int:
    """Screen columns, by the test's own rule: wide and fullwidth take two."""
    return sum(
        0 if unicodedata.combining(c) else 2 if unicodedata.east_asian_width(c) in "WF" else 1
        for c in text
    )


def test_the_table_counts_screen_columns_not_characters(load):
    h = History()
    fullwidth = "".join(chr(ord(c) + 0xFEE0) for c in "Fullwidth")  # the fullwidth forms
    names = ("日本語の同期テスト名前がとても長いです", f"{fullwidth} sync", "plain")
    for i, name in enumerate(names):
        h.sync(f"s{i}", "daily")
        h.syncs[-1]["name"] = name
        h.run(f"s{i}", NOW - 2 * H, "completed", 60)
    wh = load(h)
    text = render_terminal(build_report(wh.backend.query, wh.dataset), width=100)
    lines = text.splitlines()
    assert max(columns(line) for line in lines) <= 100
    table = lines[lines.index("Sync health") + 1 :]
    starts = set()
    for line in table:
        if line.startswith("  "):  # a name wider than its column goes on, wrapped
            continue
        at = line.index(" healthy ") if " healthy " in line else line.index(" HEALTH ")
        starts.add(columns(line[:at]))
    assert len(starts) == 1, table
