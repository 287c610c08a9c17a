"""The HTML page explains itself (issue #17, section 5).

A reader who only has the page learns what each word means (a glossary that says what the
views compute), in which time zone each time is, what share of the finished runs succeeded,
were partial or failed (adding up to 100), and which run each mark or list item is (its
execution id, to find it in Polytomic).  The charts' legends and axes: test_html_charts.py.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import html5lib
import pytest

from pipelines.reports import charts, glossary
from pipelines.reports.model import COLOURS, Report
from pipelines.reports.report import build_report, render_html
from pipelines.reports.settings import SETTINGS, ReportSettings

SQL = Path(__file__).parents[2] / "pipelines" / "reports" / "sql" / "common"
TIME = re.compile(r"\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}")


@pytest.fixture(scope="module")
def report(warehouse) -> Report:
    return build_report(warehouse.backend.query, warehouse.dataset)


@pytest.fixture(scope="module")
def page(report) -> str:
    return render_html(report)


def parse(page: str) -> Any:
    return html5lib.parse(page, namespaceHTMLElements=False)


def tag(element: Any) -> str:
    """The local name (html5lib names SVG elements with their namespace)."""
    return element.tag.rsplit("}", 1)[-1] if isinstance(element.tag, str) else ""


def text(element: Any) -> str:
    return "".join(element.itertext())


def sections(page: str) -> dict[str, Any]:
    """Each h2's title -> the <section> after it."""
    main = next(e for e in parse(page).iter() if tag(e) == "main")
    children = list(main)
    return {
        text(h): children[i + 1]
        for i, h in enumerate(children)
        if tag(h) == "h2" and i + 1 < len(children)
    }


def glossary_terms(page: str) -> dict[str, str]:
    doc = parse(page)
    footer = next(e for e in doc.iter() if tag(e) == "footer" and e.get("id") == "glossary")
    terms = [e for e in footer.iter() if tag(e) in ("dt", "dd")]
    return {text(dt): text(dd) for dt, dd in zip(terms[::2], terms[1::2], strict=True)}


def sync_row(**values: Any) -> dict[str, Any]:
    """A sync_health row with what the page shows; ``values`` override."""
    row = {
        "bulk_sync_id": "s1",
        "name": "orders",
        "health": "healthy",
        "health_reason": "fine",
        "last_status": "completed",
        "last_run_at": datetime(2025, 3, 12, 11, tzinfo=UTC),
        "last_success_at": datetime(2025, 3, 12, 11, 5, tzinfo=UTC),
        "runs_7d": 0,
        "success_rate_7d": None,
        "partial_rate_7d": None,
        "failed_rate_7d": None,
        "p50_duration_s": 60.0,
        "p95_duration_s": 90.0,
        "failure_streak": 0,
    }
    return {**row, **values}


def small_report(*syncs: dict[str, Any]) -> Report:
    now = datetime(2025, 3, 12, 12, tzinfo=UTC)
    lists = ("flapping", "chronic", "incidents", "recovery", "stuck", "anomalies", "daily")
    return Report(
        dataset="ds",
        now=now,
        since=now - timedelta(days=30),
        sync=None,
        syncs=list(syncs),
        runs=[],
        durations=[],
        schema_grid=[],
        **{name: [] for name in lists},
    )


# -- the glossary ----------------------------------------------------------------------------


def test_the_glossary_defines_each_health_state_and_each_word_of_the_digest(page):
    terms = glossary_terms(page)
    for state in ("broken", "degraded", "late", "never run", "healthy", "inactive"):
        assert state in terms, state
    for word in ("flips, S P F", "chronic", "(history)", "regressed", "streak", "times"):
        assert terms.get(word), word
    assert "S success, P partial, F failed" in terms["flips, S P F"]
    assert "history:" in terms["(history)"] and "fixed:" in terms["(history)"]
    assert "#glossary" in page  # the header points to it


def test_the_glossary_says_what_the_views_compute():
    """Each constant the glossary states is the one in the view's definition comment."""
    terms = {term: definition for term, definition, _ in glossary.entries()}
    cases = [
        ("chronic", "failed in 3 or more of its last 5 runs", "schema_health", "in 3 or more"),
        ("chronic", "last 5 runs", "schema_health", "last 5 runs"),
        ("regressed", "over 1.5x its baseline", "execution_durations", "> 1.5 * baseline_s"),
        ("regressed", "3 such days", "execution_durations", "null below 3 days"),
        ("volume anomaly", "last 8 runs on the same weekday", "volume_anomalies", "last 8"),
        ("streak", "failed in a row", "sync_health", "consecutive terminal runs that failed"),
        ("late", "(hourly, daily, weekly)", "sync_health", "hourly 3600, daily 86400"),
        ("(history)", "no completed run in 30", "stuck_executions", "others without"),
    ]
    for term, said, view, defined in cases:
        assert said in terms[term], (term, said)
        assert defined in (SQL / f"{view}.sql").read_text(), (view, defined)


def test_each_threshold_in_the_glossary_is_the_default_of_its_setting():
    text = " ".join(definition for _, definition, _ in glossary.entries())
    found = re.findall(r"(\d+(?:\.\d+)?)(?:x|%| minutes| hours)? \(setting (\w+)\)", text)
    stated = {name: float(value) for value, name in found}
    # the defaults the view comments give: "--   late_grace_minutes       (15)  late: ..."
    commented = {
        name: float(value)
        for name, value in re.findall(
            r"^--\s+(\w+)\s+\(([\d.]+)\)", (SQL / "report_settings.sql").read_text(), re.M
        )
    }
    defaults = ReportSettings()
    assert set(stated) == {s.name for s in SETTINGS}  # each one, with a number
    for name, value in stated.items():
        assert value == getattr(defaults, name) == commented[name], name
    assert "report_settings" in glossary.render()  # where the values in force are


def test_the_health_states_in_the_glossary_wear_their_colours(page):
    footer = page[page.index('<footer id="glossary"') :]
    for state in ("broken", "degraded", "late", "never_run", "healthy", "inactive"):
        chip = f'<span class="chip" style="background:{COLOURS[state]}">'
        assert chip + state.replace("_", " ") + "</span>" in footer


# -- time zones, percentages, execution ids --------------------------------------------------


def test_every_time_on_the_page_says_utc(page):
    doc = parse(page)
    shown: list[str] = []
    for element in doc.iter():
        if tag(element) in ("script", "style"):
            continue
        shown += [element.text or "", element.tail or "", element.get("title") or ""]
    times = [m for s in shown for m in TIME.finditer(s)]
    assert len(times) > 100  # the header, the digest, the tooltips, the table
    for match in times:
        after = match.string[match.end() : match.end() + 4]
        assert after == " UTC", match.string


def test_days_say_they_are_utc_days(page):
    assert "(UTC day)" in page
    daily = sections(page)["Daily runs by outcome"]
    assert any(e.get("aria-label") == "UTC days" for e in daily.iter())


def test_success_partial_and_failed_shares_add_up_to_100():
    # 3 + 3 + 2 runs: 37.5 / 37.5 / 25, which rounds to 38 + 38 + 25 = 101 one by one
    odd = sync_row(runs_7d=8, success_rate_7d=3 / 8, partial_rate_7d=3 / 8, failed_rate_7d=2 / 8)
    # 1 + 1 + 1 runs: 33.3 each, which rounds to 99 one by one
    thirds = sync_row(
        bulk_sync_id="s2", name="thirds", runs_7d=3, success_rate_7d=1 / 3, partial_rate_7d=1 / 3,
        failed_rate_7d=1 / 3,
    )  # fmt: skip
    none = sync_row(bulk_sync_id="s3", name="idle")
    page = render_html(small_report(odd, thirds, none))
    table = sections(page)["Sync health"].find(".//table")
    rows = {}
    for tr in table.iter("tr"):
        cells = {td.get("data-label"): text(td) for td in tr.iter("td")}
        if cells:
            rows[text(tr[0])] = [cells[k] for k in ("success", "partial", "failed")]
    shares = [[int(v.rstrip("%")) for v in values] for values in list(rows.values())[:2]]
    assert [sum(s) for s in shares] == [100, 100]
    assert sorted(shares[0]) == [25, 37, 38] and sorted(shares[1]) == [33, 33, 34]
    assert list(rows.values())[2] == ["-", "-", "-"]  # no finished run: no shares
    week = re.search(r"Last 7 days: (\d+) finished runs: (\d+)% success · (\d+)% partial · "
                     r"(\d+)% failed", page)  # fmt: skip
    assert week and week.group(1) == "11" and sum(map(int, week.groups()[1:])) == 100


def test_the_page_shares_match_sync_health_and_add_up_to_100(page, report):
    table = sections(page)["Sync health"].find(".//table")
    checked = 0
    for tr, sync in zip(list(table.iter("tr"))[1:], report.syncs, strict=True):
        cells = {td.get("data-label"): text(td) for td in tr.iter("td")}
        if not sync["runs_7d"]:
            continue
        values = [int(cells[k].rstrip("%")) for k in ("success", "partial", "failed")]
        assert sum(values) == 100
        assert abs(values[0] - 100 * sync["success_rate_7d"]) < 1
        checked += 1
    assert checked >= 5


def test_each_run_square_names_its_execution(page, report):
    strips = sections(page)["Last 20 runs per sync"]
    tips = [text(e) for e in strips.iter() if tag(e) == "title"]
    for run in report.runs:
        assert any(f"execution {run['execution_id']} · " in tip for tip in tips)
    grid = sections(page)["Schemas by run for the worst syncs"]
    grid_tips = [text(e) for e in grid.iter() if tag(e) == "title"]
    for cell in report.schema_grid:
        assert any(f"execution {cell['execution_id']} · " in tip for tip in grid_tips)


def test_the_digest_lists_the_execution_of_each_run_it_names(page, report):
    digest = [text(li) for li in parse(page).iter("li")]

    def listed(name: str, execution_id: str) -> bool:
        return any(item.startswith(name) and f"execution {execution_id}" in item for item in digest)

    assert report.stuck and report.anomalies
    for row in report.stuck:
        assert listed(row["name"], row["execution_id"])
    for row in report.incidents:
        if row["state"] == "open":
            assert listed(row["name"], row["first_failed_execution_id"])
    for row in report.anomalies:
        assert listed(row["name"], row["execution_id"])
    broken = [
        r for r in report.runs if r["bulk_sync_id"] == "s_broken" and r["outcome"] == "failed"
    ]
    assert listed("s-broken", broken[-1]["execution_id"])


def test_the_last_run_in_the_health_table_names_its_execution(page, report):
    table = sections(page)["Sync health"].find(".//table")
    tips = [td.get("title") for td in table.iter("td") if td.get("data-label") == "last run"]
    latest = [r for r in report.runs if r["bulk_sync_id"] == "s_flap"][-1]
    assert f"execution {latest['execution_id']} · " + charts.utc(latest["run_at"]) in tips
