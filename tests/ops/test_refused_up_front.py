"""A name or path the tool cannot use is refused before anything is made or read: exit 2,
one line naming it and the cause, and nothing created (no lock file, no warehouse)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import Etl
from tests.conftest import cli_as_typed as typed


@pytest.fixture
def user(make_sandbox, make_etl, tmp_path, monkeypatch) -> Etl:
    work = tmp_path / "project"
    work.mkdir()
    monkeypatch.chdir(work)
    return make_etl(make_sandbox(seed=3, syncs=1, executions=3))


def everything(root: Path) -> list[Path]:
    return sorted(root.rglob("*"))


def one_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


@pytest.mark.parametrize(
    ("name", "why"),
    [
        ("../escape", "invalid characters found"),
        ("{tmp}/outside", "found an absolute path where must be a relative path"),
        ("polytomic_etl.v2", "invalid characters found"),
        ("a%b", "invalid characters found"),
        ("con", "found a reserved name by a platform"),
    ],
)
def test_a_pipeline_name_dlt_refuses_is_exit_2_and_creates_no_lock_file(user, name, why):
    name = name.format(tmp=user.tmp)
    before = everything(user.tmp)
    code, out, err = typed(user, "run", "--duckdb", "wh.duckdb", "--pipeline-name", name)
    assert (code, out) == (2, "")
    assert one_line(err) == (
        f"polytomic-etl: --pipeline-name {name!r} cannot name a working directory ({why}): "
        "use letters, digits, '_' and '-'"
    )
    assert everything(user.tmp) == before


@pytest.mark.parametrize("command", ["run", "report", "check", "sql"])
def test_a_duckdb_path_that_is_not_utf8_is_exit_2_in_one_line(user, command):
    path = str(Path.cwd() / "wh\udcff.duckdb")  # the byte 0xff, as Python reads argv
    before = everything(user.tmp)
    code, out, err = typed(user, command, "--duckdb", path)
    assert (code, out) == (2, "")
    assert one_line(err) == (
        f"polytomic-etl: --duckdb {path!a}: the path is not valid UTF-8, which DuckDB needs: "
        "pass another --duckdb path"
    )
    assert everything(user.tmp) == before


def test_an_html_path_that_cannot_be_written_is_exit_2_before_the_report_is_built(user):
    folder = Path.cwd()
    cases = {
        str(folder): f"--html {folder}: is a directory; give the HTML file to write in it",
        "/nonexistent/x.html": "--html /nonexistent/x.html: directory /nonexistent does not exist",
        "": "--html is empty: give the HTML file to write",
        "  ": "--html is empty: give the HTML file to write",
    }
    for html, message in cases.items():
        # no warehouse here: a check made after building the report would say that instead
        code, out, err = typed(user, "report", "--duckdb", "wh.duckdb", "--html", html)
        assert (code, out) == (2, ""), html
        assert one_line(err) == f"polytomic-etl: {message}"
    assert list(folder.iterdir()) == []
