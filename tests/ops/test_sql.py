"""`polytomic-etl sql`: read-only SQL against the warehouse that never stands in a load's way.

Every answer is checked against the sandbox (ground truth), never against the source's code.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import pty
import re
import select
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pipelines.output import UsageError
from pipelines.sandbox import Sandbox
from tests.conftest import PINNED_NOW, Etl, ts

BIN = Path(sys.executable).with_name("polytomic-etl")
# dlt requires a password field; trust auth ignores it.
PG_DSN = "postgresql://postgres:postgres@127.0.0.1:5432/test"
COUNT = "SELECT count(*) AS n FROM bulk_sync_executions"


@pytest.fixture(scope="module")
def loaded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Etl]:
    """One small org loaded once; the tests here only read it."""
    tmp = tmp_path_factory.mktemp("sql")
    with Sandbox(seed=23, syncs=2, executions=30, schemas=(1, 2), now=PINNED_NOW) as sandbox:
        etl = Etl(sandbox=sandbox, tmp=tmp, db_path=tmp / "wh.duckdb")
        etl.run()
        yield etl


def table_cells(out: str) -> list[list[str]]:
    """Rows of the aligned table (no header, dashes or row count), split on the gaps."""
    lines = out.splitlines()
    assert re.fullmatch(r"[- ]+", lines[1]), out
    assert re.fullmatch(r"\(\d+ rows?\)", lines[-1]), out
    return [line.split() for line in lines[2:-1]]


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_table_output_counts_what_the_sandbox_holds(loaded: Etl) -> None:
    code, out, err = loaded.cli("sql", COUNT)
    assert (code, err) == (0, "")
    assert out.splitlines()[0].strip() == "n"
    assert table_cells(out) == [[str(len(loaded.sandbox.truth_executions()))]]
    assert out.splitlines()[-1] == "(1 row)"


def test_csv_and_json_parse_and_agree_with_the_sandbox(loaded: Etl) -> None:
    truth = Counter(e["bulk_sync_id"] for e in loaded.sandbox.truth_executions())
    query = "SELECT bulk_sync_id, count(*) AS n FROM bulk_sync_executions GROUP BY 1 ORDER BY 1"
    code, out, _ = loaded.cli("sql", "--csv", query)
    assert code == 0
    assert {r["bulk_sync_id"]: int(r["n"]) for r in csv.DictReader(io.StringIO(out))} == truth
    code, out, _ = loaded.cli("sql", "--json", query)
    assert code == 0
    assert {r["bulk_sync_id"]: r["n"] for r in json.loads(out)} == truth


def test_json_is_one_array_per_statement_with_dates_and_decimals(loaded: Etl) -> None:
    code, out, _ = loaded.cli(
        "sql",
        "--json",
        "SELECT max(updated_at) AS at, 1.50::DECIMAL(4,2) AS d, NULL AS x FROM "
        "bulk_sync_executions; SELECT 'a;b' AS s",
    )
    assert code == 0
    first, second = (json.loads(line) for line in out.splitlines())
    latest = max(ts(e["updated_at"]) for e in loaded.sandbox.truth_executions())
    assert first[0]["d"] == 1.5 and first[0]["x"] is None
    assert ts(first[0]["at"]) == latest
    assert second == [{"s": "a;b"}]


def test_statements_come_from_stdin_in_order(loaded: Etl, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO(f"{COUNT};\n-- two\nSELECT 'second' AS s;\n"))
    code, out, _ = loaded.cli("sql", "--csv")
    assert code == 0
    assert out.splitlines() == ["n", str(len(loaded.sandbox.truth_executions())), "s", "second"]


def test_the_dataset_is_the_default_schema_so_views_resolve(loaded: Etl) -> None:
    code, out, _ = loaded.cli("sql", "--json", "SELECT count(*) AS n FROM sync_health")
    assert code == 0
    assert json.loads(out) == [{"n": len(loaded.sandbox.truth_syncs())}]
    code, out, _ = loaded.cli("sql", "--csv", "SELECT current_schema() AS s")
    assert out.splitlines() == ["s", "polytomic"]


@pytest.mark.parametrize(
    "statement", ["SELEC 1", "SELECT * FROM no_such_table", "SELECT 1 +", "SELECT 'open"]
)
def test_bad_sql_is_one_line_and_exit_2(loaded: Etl, statement: str) -> None:
    code, out, err = loaded.cli("sql", statement)
    assert code == 2
    assert out == ""
    assert len(err.splitlines()) == 1 and err.startswith("polytomic-etl: sql: "), err
    assert "Traceback" not in err


@pytest.mark.parametrize(
    "statement",
    [
        "INSERT INTO bulk_syncs SELECT * FROM bulk_syncs",
        "DELETE FROM bulk_sync_executions",
        "UPDATE bulk_sync_executions SET status = 'x'",
        "CREATE TABLE scratch AS SELECT 1 AS a",
        "DROP VIEW sync_health",
        "COPY bulk_sync_executions TO '{tmp}/out.csv'",
        "EXPORT DATABASE '{tmp}/export'",
        "ATTACH '{tmp}/other.duckdb' AS other",
        "SELECT * FROM read_csv('/etc/passwd')",
        "INSTALL httpfs",
        "SET enable_external_access = true",
        "SET enable_progress_bar = true",
        "SET lock_configuration = false; COPY bulk_syncs TO '{tmp}/out.csv'",
        "SELECT 1; DELETE FROM bulk_sync_executions",
    ],
)
def test_writes_and_file_access_are_refused(loaded: Etl, tmp_path: Path, statement: str) -> None:
    before = digest(loaded.db_path)
    code, _, err = loaded.cli("sql", statement.format(tmp=tmp_path))
    assert code == 2
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    assert digest(loaded.db_path) == before
    assert list(tmp_path.iterdir()) == []


def test_duckdb_settings_lock_out_files_and_the_progress_bar(loaded: Etl) -> None:
    """DuckDB's progress bar writes to stdout: on, it would corrupt CSV and JSON output."""
    names = ("enable_external_access", "enable_progress_bar", "lock_configuration")
    query = "SELECT " + ", ".join(f"current_setting('{n}') AS {n}" for n in names)
    code, out, _ = loaded.cli("sql", "--json", query)
    assert code == 0
    assert json.loads(out) == [dict(zip(names, (False, False, True), strict=True))]


def test_a_missing_file_is_exit_2_and_not_created(loaded: Etl, tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.duckdb"
    code, _, err = loaded.cli("sql", "--duckdb", str(missing), "SELECT 1")
    assert code == 2
    assert f"no warehouse at {missing}" in err and "polytomic-etl run" in err
    assert not missing.exists() and list(tmp_path.iterdir()) == []


def test_a_missing_dataset_is_one_clear_line(loaded: Etl) -> None:
    code, _, err = loaded.cli("sql", "--dataset", "elsewhere", "SELECT 1")
    assert code == 2
    assert err.startswith("polytomic-etl: sql: no dataset 'elsewhere'") and err.count("\n") == 1


@pytest.mark.parametrize("text", ["", "  ;; ", "-- only a comment"])
def test_no_sql_is_exit_2(loaded: Etl, text: str) -> None:
    code, _, err = loaded.cli("sql", text)
    assert code == 2 and "no SQL given" in err


def test_quiet_prints_nothing_but_still_fails(loaded: Etl) -> None:
    assert loaded.cli("sql", "--quiet", COUNT) == (0, "", "")
    code, out, _ = loaded.cli("sql", "--quiet", "SELECT * FROM nothing_here")
    assert code == 2 and out == ""


def test_cells_show_control_characters_as_escapes(loaded: Etl) -> None:
    code, out, _ = loaded.cli("sql", "SELECT chr(27) || ']52;c;x' || chr(7) AS \"na\nme\"")
    assert code == 0
    assert "\x1b" not in out and "\x07" not in out
    assert "\\x1b]52;c;x\\x07" in out and "na\\nme" in out


def test_the_duckdb_path_imports_no_pyarrow(loaded: Etl) -> None:
    script = (
        "import sys; from types import SimpleNamespace; from pipelines.sql import DuckDbSession\n"
        f"s = DuckDbSession(SimpleNamespace(duckdb_path={str(loaded.db_path)!r}, "
        "dataset='polytomic'))\n"
        f"print(s.run(s.split({COUNT!r})[0])[1][0][0])\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'pyarrow'))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.stdout.splitlines() == [str(len(loaded.sandbox.truth_executions())), "[]"]


@pytest.mark.parametrize(
    ("text", "statements"),
    [
        ("SELECT 1; SELECT 2", ["SELECT 1;", " SELECT 2"]),
        ("SELECT ';' AS \"a;b\"; -- c;\n", ["SELECT ';' AS \"a;b\";"]),
        (
            "SELECT 'it''s;'; /* ; */ SELECT $x$;$x$",
            ["SELECT 'it''s;';", " /* ; */ SELECT $x$;$x$"],
        ),
        ("SELECT 'open; SELECT 2", ["SELECT 'open; SELECT 2"]),
        (" ;; -- nothing", []),
    ],
)
def test_the_server_splitter_keeps_quoted_semicolons(text: str, statements: list[str]) -> None:
    from pipelines.sql import Session

    assert Session().split(text) == statements


@pytest.mark.parametrize(
    "statement",
    ["DELETE FROM t", "-- SELECT\nDROP TABLE t", "/* select */ INSERT INTO t VALUES (1)"],
)
def test_where_read_only_cannot_be_enforced_only_reads_are_sent(statement: str) -> None:
    from pipelines.sql import _read_statement

    _read_statement("(SELECT 1) UNION (SELECT 2)", "bigquery")
    _read_statement("  with x as (select 1) select * from x", "bigquery")
    with pytest.raises(UsageError, match="only SELECT"):
        _read_statement(statement, "bigquery")


class Terminal:
    """`polytomic-etl sql` on a pseudo-terminal, read until a marker appears."""

    def __init__(self, argv: list[str], env: dict[str, str]) -> None:
        self.fd, child = pty.openpty()
        self.proc = subprocess.Popen(argv, stdin=child, stdout=child, stderr=child, env=env)
        os.close(child)
        self.seen = ""

    def until(self, marker: str, limit: float = 60.0) -> str:
        """Everything up to and including the next `marker`; a hang fails instead of waiting."""
        end = time.monotonic() + limit
        while marker not in self.seen:
            ready, _, _ = select.select([self.fd], [], [], max(end - time.monotonic(), 0))
            assert ready, f"no {marker!r} after {limit}s; got {self.seen!r}"
            try:
                chunk = os.read(self.fd, 4096).decode(errors="replace")
            except OSError:  # the child closed the terminal
                chunk = ""
            assert chunk, f"terminal closed before {marker!r}; got {self.seen!r}"
            self.seen += chunk
        head, _, self.seen = self.seen.partition(marker)
        return head + marker

    def send(self, line: str) -> None:
        os.write(self.fd, (line + "\n").encode())

    def close(self) -> int:
        code = self.proc.wait(timeout=60)
        os.close(self.fd)
        return code


def test_the_prompt_left_open_does_not_make_a_run_fail(make_sandbox: Any, make_etl: Any) -> None:
    sandbox = make_sandbox(seed=29, syncs=2, executions=20, schemas=(1, 2))
    # a run waits for a held file; here it must not need to
    etl = make_etl(sandbox, POLYTOMIC_ETL__LOCK_WAIT_SECONDS="0")
    # the prompt touches no file until it runs a statement, so it may start before the load
    term = Terminal([str(BIN), *etl.args("sql")], {**os.environ, **etl.env()})
    try:
        etl.run()
        term.until("polytomic> ")
        term.send("")  # an empty line asks again
        term.until("polytomic> ")
        term.send("SELECT 'n=' || count(*) AS n")  # a statement over two lines
        term.until("...> ")
        term.send("  FROM bulk_sync_executions;")
        assert f"n={len(sandbox.truth_executions())}" in term.until("polytomic> ")

        # the prompt is open and has answered; a load of new executions must still succeed
        sandbox.advance(600)
        sandbox.add_executions(sandbox.sync_ids()[0], n=3)
        code, out, err = etl.cli("run", "--json")
        assert code == 0, err
        assert json.loads(out)["executions"] >= 3

        term.send("SELECT nope;")  # an error is one line and the prompt goes on
        assert "polytomic-etl: sql: " in term.until("polytomic> ")
        term.send("SELECT 'n=' || count(*) FROM bulk_sync_executions;")
        assert f"n={len(sandbox.truth_executions())}" in term.until("polytomic> ")
        term.send(".quit")
        assert term.close() == 0
    finally:
        if term.proc.poll() is None:
            term.proc.kill()
            term.close()


def test_the_premise_a_reader_holding_the_file_blocks_a_writer(loaded: Etl) -> None:
    """Why `sql` reconnects per statement: DuckDB locks the file even for a read-only reader."""
    import duckdb

    hold = (
        f"import duckdb, sys; c = duckdb.connect({str(loaded.db_path)!r}, read_only=True); "
        "print('open', flush=True); sys.stdin.read()"
    )
    reader = subprocess.Popen(
        [sys.executable, "-c", hold], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert reader.stdout is not None and reader.stdout.readline() == "open\n"
        with pytest.raises(duckdb.IOException, match="lock"):
            duckdb.connect(str(loaded.db_path)).close()
    finally:
        reader.communicate("")


@pytest.mark.postgres
def test_postgres_reads_and_refuses_writes(
    make_sandbox: Any, make_etl: Any, postgres_dataset: str
) -> None:
    import psycopg2

    sandbox = make_sandbox(seed=31, syncs=2, executions=20, schemas=(1, 2))
    etl = make_etl(sandbox, DESTINATION__POSTGRES__CREDENTIALS=PG_DSN)
    where = ("--destination", "postgres", "--dataset", postgres_dataset)
    etl.run(*where)
    total = len(sandbox.truth_executions())

    code, out, err = etl.cli("sql", "--json", *where, f"{COUNT}; SELECT '50%' AS p")
    assert code == 0, err
    assert [json.loads(line) for line in out.splitlines()] == [[{"n": total}], [{"p": "50%"}]]
    code, out, _ = etl.cli("sql", *where, "SELECT count(*) AS n FROM sync_health")
    assert code == 0 and table_cells(out) == [[str(len(sandbox.truth_syncs()))]]

    for statement in (
        "DELETE FROM bulk_sync_executions",
        "COMMIT; DELETE FROM bulk_sync_executions",
        "SET SESSION CHARACTERISTICS AS TRANSACTION READ WRITE; DELETE FROM bulk_syncs",
        "SET default_transaction_read_only = off; CREATE TABLE scratch (a int)",
        "SELEC 1",
    ):
        code, _, err = etl.cli("sql", *where, statement)
        assert code == 2, (statement, err)
        assert len(err.splitlines()) == 1 and "Traceback" not in err
    with psycopg2.connect(PG_DSN) as con, con.cursor() as cur:
        cur.execute(f"SELECT count(*) FROM {postgres_dataset}.bulk_sync_executions")
        assert cur.fetchone() == (total,)
        cur.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = %s "
            "AND table_name = 'scratch'",
            (postgres_dataset,),
        )
        assert cur.fetchone() == (0,)
