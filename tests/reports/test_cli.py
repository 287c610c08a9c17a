"""`report` only reads; `run` and `views` write the views; the CLI's edges around them.

The real CLI runs in-process against the sandbox API (tests/conftest.py), into DuckDB and,
where marked, into PostgreSQL.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import uuid

import duckdb
import pytest

from pipelines.sandbox import SyncPlan
from tests.reports.conftest import PG_DSN

FIX = "run `polytomic-etl run`, or `polytomic-etl views` for a warehouse loaded elsewhere"
DSN = f"postgresql://{PG_DSN['user']}:unused@{PG_DSN['host']}:{PG_DSN['port']}/{PG_DSN['dbname']}"


def one_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    return lines[0]


def file_state(path) -> tuple[str, int]:
    return hashlib.sha256(path.read_bytes()).hexdigest(), path.stat().st_mtime_ns


@pytest.fixture
def loaded(make_sandbox, make_etl):
    etl = make_etl(make_sandbox(seed=11, syncs=2, executions=40))
    etl.run()
    return etl


def test_report_only_reads_the_duckdb_file(loaded):
    """It opens the file read-only: another reader does not stop it, and nothing changes."""
    path = loaded.db_path
    before = file_state(path)
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import duckdb, sys; c = duckdb.connect(sys.argv[1], read_only=True);"
            " print('ready', flush=True); sys.stdin.read()",
            str(path),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "ready"
        code, out, err = loaded.cli("report", "--html", str(loaded.tmp / "r.html"))
    finally:
        holder.stdin.close()
        holder.wait(timeout=30)
    assert code == 0, err
    assert "Sync health" in out
    assert file_state(path) == before
    assert not path.with_name(path.name + ".wal").exists()


def test_report_during_a_load_says_so_in_one_line_and_leaves_the_file_alone(loaded):
    path = loaded.db_path
    writer = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import duckdb, sys; c = duckdb.connect(sys.argv[1]);"
            " print('ready', flush=True); sys.stdin.read()",
            str(path),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert writer.stdout.readline().strip() == "ready"
        code, out, err = loaded.cli("report")
    finally:
        writer.stdin.close()
        writer.wait(timeout=30)
    assert (code, out) == (1, "")
    assert "try again when the load has finished" in one_line(err)


def test_report_names_the_fix_when_the_views_are_missing_or_of_another_version(loaded):
    with duckdb.connect(str(loaded.db_path)) as con:
        con.execute("update polytomic._polytomic_etl_views set version = 'older'")
    code, _, err = loaded.cli("report")
    assert code == 2
    assert one_line(err).endswith(f"are from another version of polytomic-etl: {FIX}")

    with duckdb.connect(str(loaded.db_path)) as con:
        con.execute("drop view polytomic.stuck_executions")
    code, _, err = loaded.cli("report")
    assert code == 2
    assert "the reporting views are missing" in one_line(err) and one_line(err).endswith(FIX)

    # `views` for a warehouse loaded elsewhere: another working directory, no pipeline state
    elsewhere = ("--pipelines-dir", str(loaded.tmp / "elsewhere"))
    code, out, err = loaded.cli("views", *elsewhere)
    assert code == 0, err
    assert out.startswith("polytomic-etl views: created or refreshed in ")
    code, out, err = loaded.cli("views", *elsewhere)
    assert (code, "already current" in out) == (0, True)
    code, out, err = loaded.cli("report")
    assert code == 0, err


def test_run_writes_the_views_and_their_version(loaded):
    from pipelines.reports.views import views_version

    rows = loaded.query("select version from polytomic._polytomic_etl_views")
    assert rows == [(views_version("duckdb"),)]


def test_a_mistyped_duckdb_path_is_a_usage_error_and_creates_nothing(loaded):
    wrong = loaded.tmp / "wharehouse.duckdb"
    for command in ("report", "views"):
        code, out, err = loaded.cli(command, "--duckdb", str(wrong))
        assert code == 2, err
        assert "no DuckDB warehouse at" in one_line(err) and out == ""
        assert not wrong.exists()


def test_report_takes_since_as_backfill_does(loaded):
    for since in ("2026-10-01", "2026-10-01 00:00", "2026-10-01T00:00:00+02:00"):
        code, _, err = loaded.cli("report", "--since", since)
        assert code == 0, (since, err)
    code, _, err = loaded.cli("report", "--since", "last tuesday")
    assert code == 2 and "is not a UTC date or datetime" in one_line(err)


def test_since_in_the_future_is_a_usage_error_and_a_very_old_one_is_clamped(loaded):
    code, out, err = loaded.cli("report", "--since", "2999-01-01")
    assert code == 2
    assert "--since 2999-01-01 00:00 UTC is in the future" in one_line(err) and out == ""
    page = loaded.tmp / "old.html"
    code, out, err = loaded.cli("report", "--since", "0001-01-01", "--html", str(page))
    assert code == 0, err
    assert "since 0001" not in out
    assert page.stat().st_size < 500_000


def test_an_unknown_sync_is_a_usage_error_that_lists_the_syncs(loaded):
    code, out, err = loaded.cli("report", "--sync", "no such sync")
    first, *listed = err.strip().splitlines()
    assert (code, out) == (2, "")
    assert first == "polytomic-etl: no sync named 'no such sync' in dataset 'polytomic'"
    assert sorted(line.split()[0] for line in listed) == sorted(loaded.sandbox.sync_ids())


def test_a_sync_without_executions_is_reported_as_never_run(make_sandbox, make_etl):
    etl = make_etl(make_sandbox(plans=[SyncPlan("brand new sync", executions=0)]))
    assert etl.run()["executions"] == 0
    code, out, err = etl.cli("report")
    assert code == 0, err
    (row,) = [line for line in out.splitlines() if line.startswith("brand new sync ")]
    assert row.split()[3] == "never_run"


HOSTILE = "evil \x1b]52;c;cHduZWQ=\x07 \x1b[2J\x9b31m\r\nname"


def test_check_and_report_print_control_characters_as_visible_escapes(
    make_sandbox, make_etl, monkeypatch
):
    monkeypatch.setenv("COLUMNS", "200")  # the name on one line
    etl = make_etl(make_sandbox(plans=[SyncPlan(HOSTILE, executions=5)]))
    etl.run()
    for command in ("check", "report"):
        code, out, err = etl.cli(command)
        assert code == 0, err
        controls = [c for c in out if (ord(c) < 32 and c != "\n") or 0x7F <= ord(c) < 0xA0]
        assert controls == [], command
        shown = "evil \\x1b]52;c;cHduZWQ=\\x07 \\x1b[2J\\x9b31m\\r\\nname"
        assert (shown if command == "check" else shown[:30]) in out, command


@pytest.fixture
def pg_dataset():
    import psycopg2

    try:
        psycopg2.connect(**PG_DSN, connect_timeout=3).close()
    except psycopg2.OperationalError as exc:
        if os.environ.get("CI") == "true":
            pytest.fail(f"PostgreSQL must answer in CI: {exc}")
        pytest.skip(f"PostgreSQL does not answer: {str(exc).strip().splitlines()[0]}")
    dataset = f"reports_cli_{uuid.uuid4().hex[:8]}"
    yield dataset
    with psycopg2.connect(**PG_DSN) as con, con.cursor() as cur:
        cur.execute(f"drop schema if exists {dataset} cascade")
        cur.execute(f"drop schema if exists {dataset}_staging cascade")


@pytest.mark.postgres
def test_a_postgres_role_that_can_only_select_can_run_report(make_sandbox, make_etl, pg_dataset):
    import psycopg2

    sandbox = make_sandbox(seed=12, syncs=2, executions=30)
    target = ("--destination", "postgres", "--dataset", pg_dataset)
    etl = make_etl(sandbox, DESTINATION__POSTGRES__CREDENTIALS=DSN)
    code, _, err = etl.cli("run", *target)
    assert code == 0, err
    role = f"report_reader_{uuid.uuid4().hex[:8]}"
    admin = psycopg2.connect(**PG_DSN)
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute(f"create role {role} login")
        cur.execute(f"grant usage on schema {pg_dataset} to {role}")
        cur.execute(f"grant select on all tables in schema {pg_dataset} to {role}")
    try:
        reader = make_etl(
            sandbox,
            DESTINATION__POSTGRES__CREDENTIALS=DSN.replace(f"{PG_DSN['user']}:", f"{role}:"),
        )
        code, out, err = reader.cli("report", *target)
        assert code == 0, err
        assert "Sync health" in out
    finally:
        with admin.cursor() as cur:
            cur.execute(f"drop owned by {role}")
            cur.execute(f"drop role {role}")
        admin.close()
