"""`polytomic-etl demo --duckdb FILE` replaces only a file an earlier demo made.

The demo starts from scratch, so it deletes its old warehouse first; any other file at that
path (a real warehouse, something that is not DuckDB at all, a file another process has
open) is a usage error naming the file, and stays exactly as it was.
"""

from __future__ import annotations

import contextlib
import io
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from pipelines.demo import replace_demo_file
from pipelines.output import UsageError
from tests.conftest import environ

REPO = Path(__file__).resolve().parents[2]
REFUSED = "; the demo replaces only a DuckDB file an earlier demo made: pass another --duckdb path"


def demo(*argv: str, **env: str) -> tuple[int, str, str]:
    from pipelines.cli import main

    out, err = io.StringIO(), io.StringIO()
    with environ(env), contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(["demo", *argv])
    return code, out.getvalue(), err.getvalue()


def demo_file(path: Path, *modes: str) -> Path:
    """A DuckDB file with a run log, as a run of each mode leaves it."""
    with duckdb.connect(str(path)) as con:
        con.execute("create schema polytomic")
        con.execute("create table polytomic.etl_runs (mode text)")
        for mode in modes:
            con.execute("insert into polytomic.etl_runs values (?)", [mode])
    return path


def test_a_real_warehouse_is_refused_and_left_as_it_was(make_sandbox, make_etl, tmp_path):
    etl = make_etl(make_sandbox(seed=9, syncs=1, executions=4), "prod")
    etl.run()
    before = etl.db_path.read_bytes()
    code, out, err = demo("--duckdb", str(etl.db_path), "--html", str(tmp_path / "d.html"))
    assert (code, out) == (2, "")
    assert err.strip() == (
        f"polytomic-etl: --duckdb {etl.db_path} holds runs other than the demo's "
        f"(in etl_runs){REFUSED}"
    )
    assert etl.db_path.read_bytes() == before
    assert not (tmp_path / "d.html").exists()


@pytest.mark.parametrize(
    ("make", "problem"),
    [
        (lambda p: p.write_text("my notes\n"), "is no DuckDB file"),
        (lambda p: p.mkdir(), "is not a file"),
        (lambda p: demo_file(p, "demo", "run"), "holds runs other than the demo's (in etl_runs)"),
        (
            lambda p: duckdb.connect(str(p)).execute("create table t (x int)").close(),
            "is a DuckDB file with tables and no run log of a demo",
        ),
        (
            lambda p: Path(f"{p}.wal").write_bytes(b"wal"),
            "is gone, but its write-ahead log x.duckdb.wal is there",
        ),
    ],
)
def test_any_other_file_is_refused_and_kept(tmp_path, make, problem):
    path = tmp_path / "x.duckdb"
    make(path)
    before = sorted(tmp_path.rglob("*"))
    code, out, err = demo("--duckdb", str(path), "--html", str(tmp_path / "d.html"))
    assert (code, out) == (2, "")
    assert err.strip() == f"polytomic-etl: --duckdb {path} {problem}{REFUSED}"
    assert sorted(tmp_path.rglob("*")) == before


@pytest.mark.parametrize("read_only", [False, True])
def test_a_file_another_process_has_open_is_never_deleted(tmp_path, read_only):
    path = demo_file(tmp_path / "x.duckdb", "demo")
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time, duckdb\n"
            "con = duckdb.connect(sys.argv[1], read_only=sys.argv[2] == 'True')\n"
            "print('held', flush=True)\ntime.sleep(60)\n",
            str(path),
            str(read_only),
        ],
        cwd=REPO,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "held\n"
        code, out, err = demo("--duckdb", str(path), "--html", str(tmp_path / "d.html"))
        assert (code, out) == (2, "")
        opened = f"is open in another process (pid {holder.pid})"
        assert err.strip() == f"polytomic-etl: --duckdb {path} {opened}{REFUSED}"
        assert path.is_file()
    finally:
        holder.kill()
        holder.wait()


def test_a_file_an_earlier_demo_made_or_an_empty_one_is_replaced(tmp_path):
    earlier = demo_file(tmp_path / "earlier.duckdb", "demo", "demo")
    Path(f"{earlier}.wal").write_bytes(b"")
    empty = tmp_path / "empty.duckdb"
    duckdb.connect(str(empty)).close()
    for path in (earlier, empty, tmp_path / "absent.duckdb"):
        replace_demo_file(path)
        assert not path.exists() and not Path(f"{path}.wal").exists()
    with pytest.raises(UsageError):
        replace_demo_file(demo_file(tmp_path / "other.duckdb", "run"))


def test_the_demo_warns_about_an_unknown_reports_setting(tmp_path):
    not_ours = tmp_path / "notes.duckdb"
    not_ours.write_text("notes\n")  # refused right after the settings are read: a quick demo
    code, _, err = demo("--duckdb", str(not_ours), REPORTS__LATE_GRACE="5")
    assert code == 2
    assert (
        "unknown setting reports.late_grace in the environment (REPORTS__LATE_GRACE); "
        "did you mean late_grace_minutes?"
    ) in err
