"""A new user's first hour: the defaults work, and a wrong target fails up front with exit 2.

DuckDB names a database's catalog after its file, so a file stem equal to the dataset makes
every two-part name ambiguous; `system` and `temp` are catalogs of every database.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import duckdb
import pytest

from tests.conftest import POSTGRES_DSN, Etl, assert_matches_truth
from tests.conftest import cli_as_typed as typed

REMOTE = ("bigquery", "snowflake", "motherduck", "databricks", "postgres")


@pytest.fixture
def newcomer(make_sandbox, make_etl, tmp_path, monkeypatch) -> Etl:
    """A small org and an empty working directory, as `cd new-project` leaves it."""
    work = tmp_path / "project"
    work.mkdir()
    monkeypatch.chdir(work)
    sandbox = make_sandbox(seed=12, syncs=3, executions=40)
    etl = make_etl(sandbox)
    etl.db_path = work / "polytomic_etl.duckdb"
    return etl


def test_the_default_warehouse_is_polytomic_etl_duckdb_in_the_working_directory(newcomer):
    code, _, err = typed(newcomer, "run", "--quiet")
    assert code == 0, err
    assert sorted(p.name for p in Path.cwd().iterdir()) == ["polytomic_etl.duckdb"]
    assert_matches_truth(newcomer)
    code, out, err = typed(newcomer, "report")
    assert code == 0, err
    assert "run `polytomic-etl run` first" not in out + err


@pytest.mark.parametrize(
    ("duckdb_file", "dataset"),
    [
        ("polytomic.duckdb", None),
        ("Polytomic.db", None),
        (".polytomic.duckdb", None),  # DuckDB names a hidden file's catalog without the dot
        ("polytomic.v2.duckdb", None),
        ("sales.duckdb", "SALES"),
        ("warehouse.duckdb", "system"),
        ("warehouse.duckdb", "temp"),
    ],
)
def test_a_dataset_duckdb_cannot_tell_from_its_catalog_is_refused_before_dlt_starts(
    newcomer, duckdb_file, dataset
):
    extra = ["--dataset", dataset] if dataset else []
    for command in ("run", "report", "sql"):
        argv = [command, "--duckdb", duckdb_file, *extra]
        if command == "sql":
            argv.append("SELECT 1")
        code, out, err = typed(newcomer, *argv)
        assert code == 2, (command, err)
        lines = [line for line in err.splitlines() if "WARNING" not in line]
        assert len(lines) == 1 and "--dataset" in lines[0], err
        assert "Traceback" not in err and out == ""
    assert list(Path.cwd().iterdir()) == [], "nothing may be created"
    assert not (newcomer.tmp / "pl").exists() or not any((newcomer.tmp / "pl").iterdir())


def test_the_old_default_file_alone_is_never_replaced_by_a_second_warehouse(newcomer):
    duckdb.connect("polytomic.duckdb").close()
    for argv in (["run"], ["report"], ["sql", "SELECT 1"], ["views"]):
        code, _, err = typed(newcomer, *argv)
        assert code == 2, (argv, err)
        assert "polytomic.duckdb" in err and "polytomic_etl.duckdb" in err
        assert "--duckdb polytomic.duckdb --dataset" in err and "rename" in err
    assert not Path("polytomic_etl.duckdb").exists()

    Path("polytomic.duckdb").rename("polytomic_etl.duckdb")  # the fix the message names
    code, _, err = typed(newcomer, "run", "--quiet")
    assert code == 0, err
    assert_matches_truth(newcomer)


@pytest.mark.parametrize("destination", REMOTE)
def test_a_destination_without_credentials_is_exit_2_naming_the_setting(newcomer, destination):
    code, out, err = typed(newcomer, "run", "--destination", destination)
    env = f"DESTINATION__{destination.upper()}__CREDENTIALS"
    assert code == 2, err
    assert err.count("\n") == 1 and env in err and f"destination.{destination}." in err, err
    assert "Traceback" not in err and out == ""


def test_an_unparsable_postgres_url_is_exit_2_and_shows_no_secret(newcomer):
    url = "postgres//user:s3cret-pw@nowhere"
    code, _, err = typed(
        newcomer, "run", "--destination", "postgres", DESTINATION__POSTGRES__CREDENTIALS=url
    )
    assert code == 2, err
    assert err.count("\n") == 1 and "s3cret-pw" not in err


@pytest.mark.postgres
def test_postgres_without_a_password_loads_on_a_trust_auth_server(newcomer, postgres_dataset):
    assert ":" not in POSTGRES_DSN.split("//", 1)[1].split("@", 1)[0], "no password here"
    argv = ("run", "--json", "--destination", "postgres", "--dataset", postgres_dataset)
    code, out, err = typed(newcomer, *argv, DESTINATION__POSTGRES__CREDENTIALS=POSTGRES_DSN)
    assert code == 0, err
    assert json.loads(out)["executions"] == len(newcomer.sandbox.truth_executions())
    import psycopg2

    with psycopg2.connect(POSTGRES_DSN) as con, con.cursor() as cur:
        cur.execute(f"SELECT id, status FROM {postgres_dataset}.bulk_sync_executions")
        loaded = dict(cur.fetchall())
    truth = {e["id"]: e["status"] for e in newcomer.sandbox.truth_executions()}
    assert loaded == truth


HOLDER = textwrap.dedent(
    """
    import sys, time, duckdb
    con = duckdb.connect(sys.argv[1])
    print("holding", flush=True)
    time.sleep(float(sys.argv[2]))
    con.close()
    print("released", flush=True)
    time.sleep(60)
    """
)


def _hold(path: Path, seconds: float) -> subprocess.Popen[str]:
    """Another process (a DuckDB shell, a BI tool) with the warehouse open for `seconds`."""
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(path), str(seconds)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None and proc.stdout.readline().strip() == "holding"
    return proc


def test_a_run_waits_for_a_duckdb_file_another_process_holds_then_loads(newcomer):
    assert typed(newcomer, "run", "--quiet")[0] == 0
    newcomer.sandbox.add_executions(newcomer.sandbox.sync_ids()[0], 3)
    holder = _hold(newcomer.db_path, 1.5)
    try:
        code, _, err = typed(newcomer, "run", "--quiet", POLYTOMIC_ETL__LOCK_WAIT_SECONDS="60")
        assert code == 0, err
        assert holder.stdout is not None and holder.stdout.readline().strip() == "released"
    finally:
        holder.kill()
        holder.wait()
    assert_matches_truth(newcomer)


def test_a_duckdb_file_held_past_lock_wait_seconds_fails_naming_the_holders_pid(newcomer):
    assert typed(newcomer, "run", "--quiet")[0] == 0
    holder = _hold(newcomer.db_path, 600)
    try:
        code, out, err = typed(newcomer, "run", POLYTOMIC_ETL__LOCK_WAIT_SECONDS="0.5")
    finally:
        holder.kill()
        holder.wait()
    assert code == 1 and out == ""
    assert err.count("\n") == 1 and f"pid {holder.pid}" in err and "locked" in err, err
    assert typed(newcomer, "run", "--quiet")[0] == 0, "the next run goes on once it is free"
    assert_matches_truth(newcomer)


def test_a_file_opened_by_another_process_between_extract_and_load_is_waited_for(
    newcomer, monkeypatch
):
    """dlt reconnects in its load step; a reader that slipped in then delays, never fails."""
    import pipelines.runner as runner

    assert typed(newcomer, "run", "--quiet")[0] == 0
    newcomer.sandbox.add_executions(newcomer.sandbox.sync_ids()[0], 4)
    holders: list[subprocess.Popen[str]] = []

    def load_with_a_reader_in_between(pipeline, source, file_format, after_extract) -> None:
        pipeline.sync_destination()
        pipeline.extract(source, loader_file_format=file_format)
        after_extract()
        pipeline.normalize()
        holders.append(_hold(newcomer.db_path, 1.0))
        pipeline.load()

    monkeypatch.setattr(runner, "load_checkpoint", load_with_a_reader_in_between)
    try:
        code, _, err = typed(newcomer, "run", "--quiet", POLYTOMIC_ETL__LOCK_WAIT_SECONDS="60")
    finally:
        for holder in holders:
            holder.kill()
            holder.wait()
    assert code == 0, err
    assert holders, "the reader held the file during a load"
    assert_matches_truth(newcomer)


def test_report_and_check_during_a_first_load_say_a_load_is_in_progress(
    make_sandbox, make_etl, tmp_path
):
    import time

    from pipelines.lock import held_by

    etl = make_etl(make_sandbox(seed=13, syncs=2, executions=400, latency_ms=300))
    env = {**os.environ, **etl.env(), "HOME": str(tmp_path)}
    cli = str(Path(sys.executable).with_name("polytomic-etl"))
    loader = subprocess.Popen([cli, *etl.args("run", "--quiet")], env=env)
    try:
        locks = etl.tmp / "pl"
        for _ in range(600):  # the loader has taken its lock (it holds it until it ends)
            held = [p for p in locks.glob("*.lock") if held_by(p)] if locks.exists() else []
            if held or loader.poll() is not None:
                break
            time.sleep(0.05)
        assert held and loader.poll() is None, "the load is still running"
        code, out, err = etl.cli("report")
        assert code == 1 and "a load into" in err and "is in progress (pid" in err, err
        assert "run `polytomic-etl run` first" not in out + err
        code, out, err = etl.cli("check")
        assert code == 0 and "a load is in progress" in out, err
    finally:
        assert loader.wait(timeout=120) == 0
    assert_matches_truth(etl)
    assert etl.cli("report")[0] == 0


def test_sigterm_during_a_lock_wait_exits_5_at_once(newcomer):
    import signal
    import time

    assert typed(newcomer, "run", "--quiet")[0] == 0
    holder = _hold(newcomer.db_path, 600)
    env = {**os.environ, **newcomer.env(), "POLYTOMIC_ETL__LOCK_WAIT_SECONDS": "300"}
    cli = str(Path(sys.executable).with_name("polytomic-etl"))
    argv = [cli, "run", "--pipelines-dir", str(newcomer.tmp / "pl")]
    waiting = subprocess.Popen(argv, env=env, stderr=subprocess.PIPE, text=True)
    try:
        time.sleep(3)  # in its lock wait by now (the holder keeps the file for 10 minutes)
        assert waiting.poll() is None
        waiting.send_signal(signal.SIGTERM)
        _, err = waiting.communicate(timeout=20)  # well before the holder lets go
    finally:
        holder.kill()
        holder.wait()
        waiting.kill()
    assert waiting.returncode == 5, err
    assert "interrupted by SIGTERM while waiting for" in err


def test_a_long_dataset_name_loads(newcomer):
    dataset = "a_dataset_name_long_enough_to_overflow_dlts_pipeline_name_limit"
    code, _, err = typed(newcomer, "run", "--quiet", "--dataset", dataset)
    assert code == 0, err
    got = duckdb.connect(str(newcomer.db_path), read_only=True).execute(
        f"SELECT count(*) FROM {dataset}.bulk_sync_executions"
    )
    assert got.fetchone() == (len(newcomer.sandbox.truth_executions()),)
