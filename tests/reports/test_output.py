"""Output people can read and scripts can parse.

- `report --json` is the whole report: the header (run log included), the digest and every
  section with its window; instants in ISO 8601 UTC.
- `--quiet` prints nothing, on stdout or stderr, for every command that offers it.
- `report --sync` takes an id or a part of a name; none or several matches list the syncs
  and exit 2.  A `--since` in the future exits 2.
- The terminal table shows names in full, wrapped to the terminal's width, aligned by screen
  columns (CJK characters take two).
- `run` and `backfill` say how many executions were new and how many changed.

The real CLI runs in-process against the sandbox API (tests/conftest.py).
"""

from __future__ import annotations

import json
import unicodedata
from datetime import UTC, datetime, timedelta

import duckdb
import pytest

from pipelines.sandbox import SyncPlan

LONG = "Salesforce accounts, contacts and opportunities → Snowflake (production, nightly refresh)"
CJK = "日本語の同期テスト名前がとても長いです"
SECTIONS = {
    "sync_health",
    "flapping",
    "chronic_schemas",
    "stuck_runs",
    "incidents",
    "volume_anomalies",
    "recovery",
    "daily_runs",
    "last_runs",
    "durations",
    "schema_grid",
}
DIGEST = {
    "broken",
    "degraded",
    "late",
    "flapping",
    "chronic_schemas",
    "stuck_runs",
    "open_incidents",
    "volume_anomalies",
}


def columns(text: str) -> int:
    """Screen columns, by the test's own rule: wide and fullwidth characters take two."""
    return sum(
        0 if unicodedata.combining(c) else 2 if unicodedata.east_asian_width(c) in "WF" else 1
        for c in text
    )


def head(text: str, width: int) -> str:
    """The start of ``text`` that is ``width`` screen columns wide."""
    out, used = [], 0
    for char in text:
        if used >= width:
            break
        out.append(char)
        used += columns(char)
    return "".join(out)


def utc(text: str) -> datetime:
    assert text.endswith("Z"), text
    value = datetime.fromisoformat(text)
    assert value.utcoffset() == timedelta(0)
    return value


@pytest.fixture
def named(make_sandbox, make_etl):
    """Five syncs, two of them "Orders", one with a long name and one with a CJK name."""
    plans = [
        SyncPlan("Orders", executions=12),
        SyncPlan("orders backfill", executions=6),
        SyncPlan("Marketo leads", executions=8, failure_rate=0.5),
        SyncPlan(LONG, executions=6),
        SyncPlan(CJK, executions=6),
    ]
    etl = make_etl(make_sandbox(seed=71, plans=plans))
    etl.run()
    return etl


def ids_by_name(etl) -> dict[str, str]:
    return {s["name"]: s["id"] for s in etl.sandbox.truth_syncs()}


def test_report_json_is_the_whole_report(named):
    code, out, err = named.cli("report", "--json")
    assert code == 0, err
    assert err == "" and out.count("\n") == 1
    data = json.loads(out)
    assert data["ok"] is True

    header = data["header"]
    assert header["dataset"] == "polytomic" and header["sync"] is None
    assert header["syncs"] == 5 and sum(header["health_counts"].values()) == 5
    now = utc(header["generated_at"])
    assert utc(header["period"]["until"]) == now
    assert utc(header["period"]["since"]) <= now - timedelta(days=29)
    (line,) = header["run_log"]["lines"]  # the line the terminal header shows
    assert line["level"] == "info" and line["text"].startswith("last successful load: ")
    assert utc(header["run_log"]["last_success_at"]) <= now

    assert set(data["digest"]) == DIGEST
    assert set(data["sections"]) == SECTIONS
    for name, section in data["sections"].items():
        assert section["window"] in ("period", "now", "fixed", "last_runs", "all"), name
        assert section["window_description"], name
        assert isinstance(section["rows"], list), name
    health = data["sections"]["sync_health"]["rows"]
    assert {r["name"] for r in health} == set(ids_by_name(named))
    assert all(utc(r["last_success_at"]) <= now for r in health if r["last_success_at"])
    runs = data["sections"]["last_runs"]["rows"]
    assert runs and all(utc(r["run_at"]) for r in runs)
    days = [r["day"] for r in data["sections"]["daily_runs"]["rows"]]
    assert days and all(len(d) == 10 for d in days)  # YYYY-MM-DD


def test_report_json_writes_the_page_and_names_it(named):
    page = named.tmp / "report.html"
    code, out, err = named.cli("report", "--json", "--html", str(page))
    assert code == 0, err
    assert json.loads(out)["html"] == str(page)
    assert page.read_text(encoding="utf-8").startswith("<!doctype html>")


def test_quiet_prints_nothing_for_every_command_that_offers_it(named):
    page = named.tmp / "quiet.html"
    commands = [
        ("run",),
        ("backfill", "--since", "2020-01-01"),
        ("report",),
        ("report", "--html", str(page)),
        ("views",),
        ("check",),
        ("sql", "SELECT count(*) FROM sync_health"),
    ]
    for command in commands:
        assert named.cli(command[0], "--quiet", *command[1:]) == (0, "", ""), command
    assert page.stat().st_size > 0  # quiet, and the page is written all the same


def test_sync_takes_an_id_or_a_part_of_a_name_whatever_the_case(named, monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")
    ids = ids_by_name(named)

    def focused(wanted: str) -> list[str]:
        code, out, err = named.cli("report", "--json", "--sync", wanted)
        assert code == 0, (wanted, err)
        chosen = json.loads(out)["header"]["sync"]
        assert chosen["query"] == wanted
        return chosen["bulk_sync_ids"]

    assert focused(ids["Marketo leads"].upper()) == [ids["Marketo leads"]]
    assert focused("RKETO") == [ids["Marketo leads"]]
    assert focused("nightly REFRESH") == [ids[LONG]]
    assert focused("テスト") == [ids[CJK]]
    assert focused("orders") == [ids["Orders"]]  # a whole name wins over a part of another

    code, out, err = named.cli("report", "--sync", "ORDERS B")
    assert code == 0, err
    assert out.splitlines()[0].endswith(" · sync orders backfill")


def test_several_matches_are_listed_and_exit_2(named):
    ids = ids_by_name(named)
    code, out, err = named.cli("report", "--sync", "order")
    assert (code, out) == (2, "")
    first, *listed = err.strip().splitlines()
    assert first == (
        "polytomic-etl: --sync 'order' matches 2 syncs in dataset 'polytomic': give more of "
        "the name, or the id"
    )
    assert listed == [f"  {ids['Orders']}  Orders", f"  {ids['orders backfill']}  orders backfill"]


def test_no_match_lists_every_sync_and_exits_2(named):
    code, out, err = named.cli("report", "--json", "--sync", "zendesk")
    assert (code, out) == (2, "")
    first, *listed = err.strip().splitlines()
    assert first == "polytomic-etl: no sync named 'zendesk' in dataset 'polytomic'"
    assert sorted(listed) == sorted(f"  {i}  {name}" for name, i in ids_by_name(named).items())


def test_a_since_in_the_future_exits_2_whatever_the_output(named):
    tomorrow = (datetime.now(UTC) + timedelta(days=1)).strftime("%Y-%m-%d")
    for extra in ((), ("--json",), ("--quiet",)):
        code, out, err = named.cli("report", "--since", tomorrow, *extra)
        assert (code, out) == (2, ""), extra
        assert "is in the future" in err


def table_rows(out: str) -> tuple[str, list[list[str]]]:
    """The table's header, and each sync's lines (its first line, then the wrapped ones)."""
    lines = out.splitlines()
    table = lines[lines.index("Sync health") + 1 :]
    rows: list[list[str]] = []
    for line in table[1:]:
        if not line.strip():
            break
        if line.startswith("  "):
            rows[-1].append(line)
        else:
            rows.append([line])
    return table[0], rows


@pytest.mark.parametrize("width", [80, 120])
def test_the_table_shows_whole_names_aligned_at_the_terminals_width(named, monkeypatch, width):
    monkeypatch.setenv("COLUMNS", str(width))
    code, out, err = named.cli("report")
    assert code == 0, err
    assert max(columns(line) for line in out.splitlines()) <= width
    header, rows = table_rows(out)
    name_width = columns(header[: header.index(" HEALTH ")])
    names = set()
    for first, *more in rows:
        name = head(first, name_width)
        assert columns(name) == name_width, first  # padded to the column by screen columns
        assert first[len(name) :].split()[0] in ("healthy", "late", "broken", "degraded")
        names.add(" ".join([name.rstrip(), *(line.strip() for line in more)]))
    # broken between words, or inside a word wider than the column (the CJK name)
    assert {n.replace(" ", "") for n in names} == {n.replace(" ", "") for n in ids_by_name(named)}
    wrapped = sorted(columns(row[0].split("  ")[0]) for row in rows if len(row) > 1)
    assert len(wrapped) == (2 if width == 80 else 1)  # the long name; at 80 the CJK one too


def test_run_and_backfill_count_new_and_changed_executions(make_sandbox, make_etl):
    sb = make_sandbox(seed=72, syncs=2, executions=40)
    etl = make_etl(sb)
    first = etl.run()
    loaded = len(etl.executions())
    assert first["executions"] == first["executions_new"] == loaded > 0
    assert first["executions_changed"] == 0

    busy, other = sb.sync_ids()
    sb.advance(600)
    changed = {sb.reupdate(busy, exec_id) for exec_id in sb.execution_ids(busy)[2:5]}
    added = set(sb.add_executions(other, n=2))
    before = set(etl.executions())
    assert not added & before and changed <= before
    second = etl.run()
    assert (second["executions_new"], second["executions_changed"]) == (2, 3)
    assert second["executions"] >= 5

    # a weekly reconciliation that finds nothing to repair says so
    code, out, err = etl.cli("backfill", "--json", "--since", "2000-01-01")
    assert code == 0, err
    quiet_week = json.loads(out)
    assert quiet_week["executions"] >= loaded  # it re-read everything ...
    assert (quiet_week["executions_new"], quiet_week["executions_changed"]) == (0, 0)

    # ... and one that repairs a lost row and a stale one says that
    lost, stale = sorted(before)[:2]
    with duckdb.connect(str(etl.db_path)) as con:
        con.execute("delete from polytomic.bulk_sync_executions where id = ?", [lost])
        con.execute(
            "update polytomic.bulk_sync_executions set updated_at = updated_at - interval 1 day"
            " where id = ?",
            [stale],
        )
    code, out, err = etl.cli("backfill", "--since", "2000-01-01")
    assert code == 0, err
    assert " new=1 changed=1 " in out and out.startswith("polytomic-etl backfill: ")


@pytest.mark.postgres
def test_new_and_changed_are_counted_on_postgres_too(make_sandbox, make_etl, postgres_dataset):
    from tests.conftest import POSTGRES_DSN

    sb = make_sandbox(seed=73, syncs=2, executions=30)
    etl = make_etl(sb, DESTINATION__POSTGRES__CREDENTIALS=POSTGRES_DSN)
    target = ("--destination", "postgres", "--dataset", postgres_dataset)

    def run(*extra: str) -> dict:
        code, out, err = etl.cli(*extra, "--json", *target)
        assert code == 0, err
        return json.loads(out)

    first = run("run")
    assert first["executions_new"] == first["executions"] > 0
    busy, other = sb.sync_ids()
    sb.advance(600)
    sb.reupdate(busy, sb.execution_ids(busy)[3])
    sb.add_executions(other, n=3)
    second = run("run")
    assert (second["executions_new"], second["executions_changed"]) == (3, 1)
    week = run("backfill", "--since", "2000-01-01")
    assert (week["executions_new"], week["executions_changed"]) == (0, 0)
