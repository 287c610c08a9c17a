"""What the terminal, the HTML page and `report --json` show agrees, and shows it safely.

A name from the API is shown, never obeyed (no raw control character or bidirectional
override reaches the page), a sync without a name is shown by its id, every time says UTC,
the shares of finished runs are rounded the same way everywhere, and each section's window
is the one the settings in force give.  Each test runs on DuckDB and on PostgreSQL.
"""

from __future__ import annotations

import re

import html5lib

from pipelines.reports.model import report_data
from pipelines.reports.refresh import create_views
from pipelines.reports.report import build_report, render_html, render_terminal
from pipelines.reports.settings import ReportSettings
from tests.reports.history import NOW, H, History
from tests.reports.test_hostile import failing_sync

HOSTILE = {
    "s_esc": "esc \x1b[31mred",
    "s_bel": "bell \x07ring",
    "s_cr": "over\rwrite",
    "s_bidi": "invoice\u202egpj.exe",
    "s_c1": "csi \x9b2J",
}
BIDI = "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"


def raw_controls(text: str) -> list[str]:
    """C0 (but the newline), DEL, C1 and the bidi overrides and isolates, as found."""
    return [c for c in text if (ord(c) < 32 and c != "\n") or 0x7F <= ord(c) < 0xA0 or c in BIDI]


def test_the_page_shows_control_characters_in_names_and_messages_never_raw(load):
    h = History()
    for sid, name in HOSTILE.items():
        failing_sync(h, sid, name=name, message=f"failed: {name}")
    wh = load(h)
    page = render_html(build_report(wh.backend.query, wh.dataset))
    assert raw_controls(page) == []
    assert "<bdi>esc \\x1b[31mred</bdi>" in page
    assert "<bdi>invoice\\u202egpj.exe</bdi>" in page
    assert "<bdi>over write</bdi>" in page  # a carriage return is only white space in HTML
    assert "failed: bell \\x07ring" in page
    doc = html5lib.parse(page, namespaceHTMLElements=False)
    health = list(doc.iter("table"))[-1]
    for row in list(health.iter("tr"))[1:]:  # every sync name is isolated from its cell
        assert [child.tag for child in row[0]] == ["bdi"], row


def test_a_sync_without_a_name_is_shown_by_its_id_everywhere(load):
    h = History()
    failing_sync(h, "s_null")
    h.syncs[-1]["name"] = None
    failing_sync(h, "s_empty", name="")
    failing_sync(h, "s_blank", name="   ")
    wh = load(h)
    report = build_report(wh.backend.query, wh.dataset)
    text = render_terminal(report, width=120)
    page = render_html(report)
    assert "None" not in text and "None" not in page
    broken = text.split("\nBroken\n", 1)[1].split("\n\n", 1)[0].splitlines()
    assert sorted(line.split()[0] for line in broken) == ["s_blank", "s_empty", "s_null"]
    for sid in ("s_null", "s_empty", "s_blank"):
        assert f"<li><b><bdi>{sid}</bdi></b>: " in page  # the digest
        assert f'<td class="name"><bdi>{sid}</bdi></td>' in page  # the sync health table
        assert f'<span class="dur-name"><bdi>{sid}</bdi></span>' in page  # the durations
    digest = report_data(report)["digest"]
    assert {item["name"] for item in digest["broken"]} == {"s_null", "s_empty", "s_blank"}


def test_every_time_in_the_terminal_says_utc(load):
    h = History()
    failing_sync(h, "s_broken")  # an open incident
    wh = load(h)
    text = render_terminal(build_report(wh.backend.query, wh.dataset), width=120)
    stamps = re.findall(r"\d{4}-\d\d-\d\d \d\d:\d\d(?:\S*)(?: \w+)?", text)
    assert stamps and all(stamp.endswith(" UTC") for stamp in stamps), stamps
    assert "3 run(s) since 2025-03-09 12:01 UTC: boom" in text  # the open incident


def test_the_terminal_and_the_page_round_the_shares_of_finished_runs_alike(load):
    h = History()
    h.sync("s_mixed", "daily")
    h.run("s_mixed", NOW - 72 * H, "completed", 60)  # success
    h.run("s_mixed", NOW - 48 * H, "completed", 60, errors=1)  # partial
    h.run("s_mixed", NOW - 24 * H, "failed", 60)
    wh = load(h)
    report = build_report(wh.backend.query, wh.dataset)
    text = render_terminal(report, width=200)
    (row,) = [line for line in text.splitlines() if line.startswith("s-mixed ")]  # the table
    assert re.search(r" 3 +34% +33% ", row), row  # RUNS 7D, OK 7D, FAIL 7D
    page = render_html(report)
    cells = re.findall(r'<td class="num" data-label="(success|partial|failed)">(\d+)%', page)
    assert cells == [("success", "34"), ("partial", "33"), ("failed", "33")]
    assert "Last 7 days: 3 finished runs: 34% success · 33% partial · 33% failed" in page


def test_one_finished_run_is_singular_and_no_syncs_leaves_no_dangling_colon(load):
    h = History()
    h.sync("s_one", "daily")
    h.run("s_one", NOW - 2 * H, "completed", 60)
    wh = load(h)
    page = render_html(build_report(wh.backend.query, wh.dataset))
    assert "Last 7 days: 1 finished run: 100% success" in page
    empty = load(History())
    text = render_terminal(build_report(empty.backend.query, empty.dataset))
    assert text.splitlines()[1] == "0 syncs"


def test_the_flapping_window_described_is_the_one_in_force(backend, load):
    wh = load(History())
    report = build_report(wh.backend.query, wh.dataset)
    about = report_data(report)["sections"]["flapping"]["window_description"]
    assert about == "each sync's last 20 terminal runs"  # the default
    settings = ReportSettings(flapping_window_runs=8, flapping_min_flips=4)
    create_views(backend.connection, backend.dialect, wh.dataset, now=NOW, settings=settings)
    report = build_report(wh.backend.query, wh.dataset)
    about = report_data(report)["sections"]["flapping"]["window_description"]
    assert about == "each sync's last 8 terminal runs"
