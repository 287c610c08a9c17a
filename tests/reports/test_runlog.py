"""The run log: every `run` and `backfill` leaves a row in `etl_runs`, and `report` reads it.

The real CLI runs in-process against the sandbox API (tests/conftest.py), into DuckDB and,
where marked, PostgreSQL. Histories (a loader that stopped, one that always fails) are planted
as rows in `etl_runs`, at times relative to the clock the report reads, so that no test
waits or depends on timing.
"""

from __future__ import annotations

import json
import re
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import duckdb
import pytest

from pipelines.output import STOP
from pipelines.reports.runs import FIRST_RUN
from pipelines.runlog import COLUMNS, redact_error
from pipelines.sandbox import Fault

COUNTS = ("syncs", "executions", "schema_rows", "skipped", "requests", "loads")
PG_DSN = "postgresql://postgres:postgres@127.0.0.1:5432/test"
SECRET = "hunter2-S3cret-pw"
LEAKY_URL = f"http://loader:{SECRET}@example.invalid"  # plain http: refused, URL in the error


def data_blocks(page: str) -> dict[str, Any]:
    blocks = re.findall(r'<script type="application/json" id="([^"]+)">(.*?)</script>', page, re.S)
    return {block_id: json.loads(text) for block_id, text in blocks}


def runs(etl: Any) -> list[dict[str, Any]]:
    with duckdb.connect(str(etl.db_path), read_only=True) as con:
        cur = con.execute("select * from polytomic.etl_runs order by started_at")
        names = [d[0] for d in cur.description]
        return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]


def header(out: str) -> list[str]:
    """The report's lines before its first section, a wrapped line joined again."""
    lines: list[str] = []
    for line in out.split("\n\n")[0].splitlines():
        if line.startswith("  ") and lines:
            lines[-1] += " " + line.strip()
        else:
            lines.append(line)
    return lines


def minute(value: datetime) -> str:
    return f"{value.astimezone(UTC):%Y-%m-%d %H:%M}"


def plant(etl: Any, hours_ago: tuple[int, ...], outcome: str = "ok") -> None:
    """Replace the run log with `run`-mode runs of a minute each, started `hours_ago`."""
    now = datetime.now(UTC)
    with duckdb.connect(str(etl.db_path)) as con:
        con.execute("delete from polytomic.etl_runs")
        for hours in hours_ago:
            start = now - timedelta(hours=hours)
            con.execute(
                "insert into polytomic.etl_runs (run_id, started_at, finished_at, mode, outcome,"
                " exit_code, error) values (?, ?, ?, 'run', ?, ?, ?)",
                [
                    str(uuid.uuid4()),
                    start,
                    start + timedelta(minutes=1),
                    outcome,
                    0 if outcome == "ok" else 1,
                    None if outcome == "ok" else "load step failed: disk full",
                ],
            )


def report_header(etl: Any) -> list[str]:
    code, out, err = etl.cli("report")
    assert code == 0, err
    assert "Sync health" in out
    return header(out)


def test_a_successful_run_writes_one_row_with_the_counts_of_its_summary(make_sandbox, make_etl):
    etl = make_etl(make_sandbox(seed=301, syncs=2, executions=10))
    before = datetime.now(UTC)
    summary = etl.run()
    after = datetime.now(UTC)
    [row] = runs(etl)
    assert set(row) == {name for name, _ in COLUMNS}
    assert {k: row[k] for k in COUNTS} == {k: summary[k] for k in COUNTS}
    assert (row["mode"], row["outcome"], row["exit_code"]) == ("run", "ok", 0)
    assert row["failed_syncs"] is None and row["error"] is None and row["shard"] is None
    assert before <= row["started_at"] <= row["finished_at"] <= after
    assert row["seconds"] == pytest.approx(summary["seconds"])
    assert uuid.UUID(row["run_id"]) and row["version"]

    lines = report_header(etl)
    assert f"last successful load: {minute(row['finished_at'])} UTC (" in lines[2], lines
    assert lines[2].endswith(" ago)") and len(lines) == 3


def test_failed_runs_are_logged_redacted_and_the_report_says_when_and_why(make_sandbox, make_etl):
    sb = make_sandbox(seed=302, syncs=2, executions=10)
    etl = make_etl(sb, MAX_ATTEMPTS="1")
    etl.run()
    bad = sb.sync_ids()[0]
    sb.advance(600)
    sb.add_executions(bad, n=3)
    sb.inject(Fault("500", times=None, sync_id=bad, kind_filter="list_executions"))
    code, out, _ = etl.cli("run", "--json")
    assert code == 1
    summary = json.loads(out.strip().splitlines()[-1])
    ok, failed = runs(etl)
    assert (failed["outcome"], failed["exit_code"], failed["failed_syncs"]) == ("failed", 1, bad)
    assert failed["error"] == f"1 sync(s) failed: {bad}"
    assert {k: failed[k] for k in COUNTS} == {k: summary[k] for k in COUNTS}
    lines = report_header(etl)
    assert any(
        line.startswith(f"last successful load: {minute(ok['finished_at'])} UTC (")
        for line in lines
    ), lines
    assert (
        f"last run FAILED at {minute(failed['finished_at'])} UTC (exit 1): 1 sync(s) failed: {bad}"
        in lines
    )

    # a secret in the error (here a password in the base_url) reaches neither table nor report
    code, _, _ = make_etl(sb, BASE_URL=LEAKY_URL).cli("run")
    assert code == 2
    leaked = runs(etl)[-1]
    assert (leaked["outcome"], leaked["exit_code"]) == ("failed", 2)
    assert "loader:***@example.invalid" in leaked["error"] and SECRET not in leaked["error"]
    assert (leaked["executions"], leaked["loads"]) == (0, 0)  # it failed before it loaded
    code, out, err = etl.cli("report", "--html", str(etl.tmp / "r.html"))
    assert code == 0, err
    assert any(
        line.startswith("last run FAILED at ") and "(exit 2): refusing plain-http" in line
        for line in header(out)
    ), out
    assert "polytomic-etl run` first" not in out
    page = (etl.tmp / "r.html").read_text(encoding="utf-8")
    assert SECRET not in out + page
    assert '<p class="runlog fail">last run FAILED at ' in page
    run_log = data_blocks(page)["data-digest"]["run_log"]
    assert run_log["last_run"]["exit_code"] == 2
    assert run_log["last_success_at"].startswith(minute(ok["finished_at"]).replace(" ", "T"))


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        ("connect to postgresql://etl:pa55word@db:5432/x failed", "pa55word"),
        ("GET https://h/api?page=2&api_key=k3y-value&x=1: 500", "k3y-value"),
        ("GET https://h/api?access_token=t0ken: 500", "t0ken"),
        ("sent Authorization: Bearer abc.def-123 and got 401", "abc.def-123"),
        ("Basic dXNlcjpwYXNz rejected", "dXNlcjpwYXNz"),
        ('{"password": "swordfish1"}', "swordfish1"),
        ("echo of the configured key sk_live_0123456789 in a body", "sk_live_0123456789"),
    ],
)
def test_the_logged_error_is_one_redacted_line(text, secret):
    redacted = redact_error(text + "\nsecond line", secrets=["sk_live_0123456789", None])
    assert secret not in redacted and "***" in redacted
    assert "\n" not in redacted
    assert len(redact_error("x" * 5000)) == 500


def test_a_run_refused_by_the_lock_writes_nothing(make_sandbox, make_etl):
    from pipelines.lock import PipelineLock
    from pipelines.target import Target

    etl = make_etl(make_sandbox(seed=304, syncs=1, executions=5))
    target = Target(duckdb_path=str(etl.db_path), pipelines_dir=str(etl.tmp / "pl"))
    with PipelineLock(target.working_root / f"{target.name}.lock"):
        code, _, _ = etl.cli("run")
    assert code == 3
    assert not etl.db_path.exists()  # not even a warehouse file for the row


def test_an_interrupted_run_is_logged_as_interrupted(make_sandbox, make_etl):
    sb = make_sandbox(seed=305, syncs=2, executions=10)
    etl = make_etl(sb)

    def stop_during_the_walk(sandbox: Any, record: Any) -> None:
        if record.kind == "list_executions":
            STOP.signal_name = "SIGTERM"
            STOP.set()

    sb.add_hook(stop_during_the_walk)
    code, _, err = etl.cli("run")
    sb.clear_hooks()
    assert code == 5, err
    [row] = runs(etl)
    assert (row["outcome"], row["exit_code"]) == ("interrupted", 5)
    assert row["error"].startswith("interrupted by SIGTERM")


def test_a_loader_that_stopped_or_keeps_failing_makes_the_report_warn(make_sandbox, make_etl):
    etl = make_etl(make_sandbox(seed=306, syncs=1, executions=5))
    etl.run()
    plant(etl, (10, 9, 8, 7, 6, 5))  # hourly, then nothing for 5 hours
    lines = report_header(etl)
    stale = [line for line in lines if line.startswith("STALE: ")]
    assert len(stale) == 1, lines
    assert re.fullmatch(
        r"STALE: no successful load for \d\.\dh, over 3x the median interval between runs "
        r"\(1\.0h\)",
        stale[0],
    ), stale
    assert not any("FAILED" in line for line in lines)

    plant(etl, (4, 3, 2, 1))  # hourly and on time
    assert not any(line.startswith("STALE") for line in report_header(etl))

    plant(etl, (8, 7))  # two runs: no cadence to judge by yet
    assert not any(line.startswith("STALE") for line in report_header(etl))

    plant(etl, (3, 2, 1), outcome="failed")  # still running, never succeeding
    lines = report_header(etl)
    assert any(
        line.startswith("last successful load: none since the run log began") for line in lines
    ), lines
    assert lines[-1].startswith("last run FAILED at ")
    assert lines[-1].endswith("(exit 1): load step failed: disk full")


def test_a_never_loaded_warehouse_says_run_first_and_why_the_last_run_failed(
    make_sandbox, make_etl
):
    etl = make_etl(make_sandbox(seed=308, syncs=1, executions=5), BASE_URL=LEAKY_URL)
    code, _, err = etl.cli("report")
    assert code == 2 and "`polytomic-etl run` first" in err  # no warehouse at all

    assert etl.cli("run")[0] == 2  # reaches the warehouse, loads nothing
    code, out, err = etl.cli("report")
    assert (code, out) == (2, "")
    assert "no loaded data in " in err and ": run `polytomic-etl run` first; the last run " in err
    assert "failed at " in err and "(exit 2): refusing plain-http base_url" in err
    assert SECRET not in err


def test_the_run_log_survives_backfill_full_and_views_and_an_old_warehouse_reports_normally(
    make_sandbox, make_etl
):
    etl = make_etl(make_sandbox(seed=309, syncs=2, executions=10))
    etl.run()
    code, _, err = etl.cli("backfill", "--full", "--yes")
    assert code == 0, err
    assert etl.cli("views")[0] == 0
    assert [(r["mode"], r["outcome"]) for r in runs(etl)] == [("run", "ok"), ("backfill", "ok")]

    with duckdb.connect(str(etl.db_path)) as con:  # as a version without the run log left it
        con.execute("drop table polytomic.etl_runs")
    assert f"last successful load: unknown; {FIRST_RUN}" in report_header(etl)


@pytest.mark.postgres
def test_postgres_gets_the_same_run_log_and_header(make_sandbox, make_etl, postgres_dataset):
    import psycopg2

    sb = make_sandbox(seed=311, syncs=2, executions=10)
    etl = make_etl(sb, DESTINATION__POSTGRES__CREDENTIALS=PG_DSN, MAX_ATTEMPTS="1")
    where = ("--destination", "postgres", "--dataset", postgres_dataset)
    code, out, err = etl.cli("run", "--json", *where)
    assert code == 0, err
    summary = json.loads(out)
    bad = sb.sync_ids()[0]
    sb.advance(600)
    sb.add_executions(bad, n=3)
    sb.inject(Fault("500", times=None, sync_id=bad, kind_filter="list_executions"))
    assert etl.cli("run", *where)[0] == 1

    with psycopg2.connect(PG_DSN) as con, con.cursor() as cur:
        cur.execute(
            "select column_name, data_type from information_schema.columns"
            " where table_schema = %s and table_name = 'etl_runs'",
            (postgres_dataset,),
        )
        types = dict(cur.fetchall())
        cur.execute(
            f"select outcome, exit_code, error, {', '.join(COUNTS)}"
            f" from {postgres_dataset}.etl_runs order by started_at"
        )
        rows = cur.fetchall()
    assert types["started_at"] == "timestamp with time zone" and types["exit_code"] == "bigint"
    assert types["seconds"] == "double precision" and types["error"] == "text"
    assert rows[0] == ("ok", 0, None, *(summary[k] for k in COUNTS))
    assert rows[1][:3] == ("failed", 1, f"1 sync(s) failed: {bad}")

    code, out, err = etl.cli("report", *where)
    assert code == 0, err
    lines = header(out)
    assert any(line.startswith("last successful load: ") for line in lines), lines
    assert lines[-1].endswith(f"(exit 1): 1 sync(s) failed: {bad}"), lines
