"""`polytomic-etl cleanup` judges each working directory on its own, from every warehouse it
has served, and a deletion that fails leaves a directory the next cleanup still knows.

A working directory remembers each warehouse it has served (one `--pipeline-name` may serve
several DuckDB files): it goes only when none of them exists. A marker that names nothing
usable keeps its directory, with the reason, and never stops the others being judged.
"""

from __future__ import annotations

import contextlib
import errno
import io
import json
import os
from pathlib import Path

import pytest

from pipelines.cleanup import MARKER, marker_content, write_marker
from tests.conftest import Etl
from tests.conftest import cli_as_typed as typed


def cleanup(root: Path, *argv: str) -> tuple[int, str, str]:
    from pipelines.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(["cleanup", "--pipelines-dir", str(root), *argv])
    return code, out.getvalue(), err.getvalue()


def verdicts(root: Path, *argv: str) -> dict[str, dict[str, str]]:
    code, out, err = cleanup(root, "--json", *argv)
    assert code == 0, err
    return {Path(d["path"]).name: d for d in json.loads(out)["directories"]}


def served_by(root: Path, name: str, duckdb_file: Path) -> Path:
    """A working directory whose marker names `duckdb_file`, as a run leaves it."""
    working_dir = root / name
    (working_dir / "schemas").mkdir(parents=True)
    (working_dir / "schemas" / "polytomic.schema.json").write_text("{}")
    (working_dir / "state.json").write_text("{}")
    write_marker(working_dir, marker_content("duckdb", str(duckdb_file), "polytomic", None))
    return working_dir


def test_a_working_dir_two_duckdb_files_share_stays_while_either_file_exists(
    make_sandbox, make_etl
):
    sandbox = make_sandbox(seed=43, syncs=1, executions=6)
    first, second = make_etl(sandbox, "first"), make_etl(sandbox, "second")
    shared = ("--pipeline-name", "polytomic_etl_shared")
    first.run(*shared)
    second.run(*shared)
    root = first.tmp / "pl"
    marker = json.loads((root / "polytomic_etl_shared" / MARKER).read_text())
    assert marker["duckdb_path"] == str(second.db_path)  # the latest, as before
    assert [w["duckdb_path"] for w in marker["served"]] == [str(second.db_path), str(first.db_path)]

    first.db_path.unlink()
    found = verdicts(root, "--yes")["polytomic_etl_shared"]
    assert found["action"] == "kept"
    assert found["reason"] == f"its DuckDB file {second.db_path} exists"
    assert (root / "polytomic_etl_shared").is_dir()

    second.db_path.unlink()
    found = verdicts(root)["polytomic_etl_shared"]
    assert found["action"] == "delete"
    assert found["reason"] == (
        f"its DuckDB files {second.db_path}, {first.db_path} no longer exist"
    )


def test_a_marker_remembers_the_last_20_warehouses_newest_first(tmp_path):
    working_dir = tmp_path / "polytomic_etl_many"
    working_dir.mkdir()
    for i in range(25):
        write_marker(working_dir, marker_content("duckdb", f"/w/{i}.duckdb", "polytomic", None))
    write_marker(working_dir, marker_content("duckdb", "/w/3.duckdb", "polytomic", None))
    served = json.loads((working_dir / MARKER).read_text())["served"]
    paths = [w["duckdb_path"] for w in served]
    assert paths == ["/w/3.duckdb", *(f"/w/{i}.duckdb" for i in range(24, 5, -1))]


def test_a_server_warehouse_among_those_served_keeps_the_directory(tmp_path):
    working_dir = served_by(tmp_path, "polytomic_etl_mixed", tmp_path / "gone.duckdb")
    write_marker(working_dir, marker_content("postgres", None, "polytomic", None))
    write_marker(working_dir, marker_content("duckdb", str(tmp_path / "gone.duckdb"), "x", None))
    found = verdicts(tmp_path)["polytomic_etl_mixed"]
    assert found["action"] == "kept"
    assert found["reason"] == (
        "it also served a postgres warehouse: only DuckDB files can be checked offline"
    )


def test_markers_that_name_nothing_usable_are_kept_and_the_others_still_judged(tmp_path):
    gone = served_by(tmp_path, "polytomic_etl_gone", tmp_path / "gone.duckdb")
    for name, marker in {
        "polytomic_etl_root": {"destination": "duckdb", "duckdb_path": "/"},
        "polytomic_etl_nul": {"destination": "duckdb", "duckdb_path": "/tmp/a\u0000b.duckdb"},
        "polytomic_etl_number": {"destination": "duckdb", "duckdb_path": 7},
        "polytomic_etl_odd": {"destination": "duckdb", "served": [1, "x"]},
    }.items():
        (tmp_path / name).mkdir()
        (tmp_path / name / MARKER).write_text(json.dumps(marker))
    code, out, err = cleanup(tmp_path, "--yes")
    assert code == 0, err
    lines = out.splitlines()
    assert f"deleted {gone}: its DuckDB file {tmp_path / 'gone.duckdb'} no longer exists" in lines
    unknown = f"unknown warehouse: {MARKER} names no DuckDB file"
    assert f"kept {tmp_path / 'polytomic_etl_root'}: {unknown} ('/')" in lines
    nul = f"kept {tmp_path / 'polytomic_etl_nul'}: {unknown}"
    assert [line for line in lines if line.startswith(nul)] == [f"{nul} ('/tmp/a\\x00b.duckdb')"]
    assert lines[-1] == f"polytomic-etl cleanup: deleted 1, kept 4 (under {tmp_path})"
    found = verdicts(tmp_path)
    assert {name: v["action"] for name, v in found.items()} == dict.fromkeys(
        ("polytomic_etl_nul", "polytomic_etl_number", "polytomic_etl_odd", "polytomic_etl_root"),
        "kept",
    )
    assert not gone.exists()


def test_a_deletion_that_fails_keeps_the_marker_and_names_the_full_path(tmp_path, monkeypatch):
    working_dir = served_by(tmp_path, "polytomic_etl_stuck", tmp_path / "gone.duckdb")
    stubborn = working_dir / "schemas" / "polytomic.schema.json"
    unlink = os.unlink

    def refusing(path, *args, **kwargs):
        if str(path) == str(stubborn):
            raise PermissionError(errno.EACCES, "Permission denied", str(path))
        return unlink(path, *args, **kwargs)

    monkeypatch.setattr(os, "unlink", refusing)
    code, out, err = cleanup(tmp_path, "--yes")
    assert code == 1
    assert f"NOT deleted {working_dir}: Permission denied ({stubborn})" in out.splitlines()
    assert err.strip() == (
        f"polytomic-etl: could not delete {working_dir}: Permission denied ({stubborn})"
    )
    assert (working_dir / MARKER).is_file()
    again = verdicts(tmp_path)["polytomic_etl_stuck"]  # still known: not "unknown warehouse"
    assert again["action"] == "delete"
    monkeypatch.setattr(os, "unlink", unlink)
    assert verdicts(tmp_path, "--yes")["polytomic_etl_stuck"]["action"] == "deleted"
    assert not working_dir.exists()


def test_a_write_ahead_log_left_alone_is_what_keeps_the_directory(tmp_path):
    db = tmp_path / "w.duckdb"
    served_by(tmp_path, "polytomic_etl_wal", db)
    Path(f"{db}.wal").write_bytes(b"wal")
    found = verdicts(tmp_path)["polytomic_etl_wal"]
    assert found["action"] == "kept"
    assert (
        found["reason"] == f"its DuckDB file {db} is gone, but its write-ahead log {db}.wal exists"
    )


@pytest.fixture
def user(make_sandbox, make_etl) -> Etl:
    return make_etl(make_sandbox(seed=3, syncs=1, executions=3))


def test_an_empty_pipelines_dir_is_a_usage_error_not_the_default(user):
    code, out, err = typed(user, "cleanup", "--pipelines-dir", "")
    assert (code, out) == (2, "")
    assert err.strip() == "polytomic-etl: --pipelines-dir is empty: give the directory to look in"
