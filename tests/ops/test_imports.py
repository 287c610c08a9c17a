"""Start-up stays cheap: a command imports only what it uses.

`import dlt` alone costs 0.5-1 s of CPU and pyarrow another few hundred ms, paid by every cron
run. `--help` and `--version` need neither; `check`, `sql` and a DuckDB `report` need no
pyarrow; and building the argument parser never imports the sandbox package unless the
command is `sandbox`.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.conftest import Etl

PROBE = """
import json, sys
from pipelines.cli import main
try:
    code = main(sys.argv[1:])
except SystemExit as exc:
    code = exc.code
names = ("dlt", "pyarrow", "pipelines.sandbox")
print(json.dumps({"code": code, **{n: n in sys.modules for n in names}}), file=sys.stderr)
"""


def _imports(etl: Etl | None, *argv: str) -> dict[str, object]:
    env = {**etl.env()} if etl is not None else {}
    proc = subprocess.run(
        [sys.executable, "-c", PROBE, *argv],
        capture_output=True,
        text=True,
        timeout=120,
        env={**_base_env(), **env},
    )
    return json.loads(proc.stderr.strip().splitlines()[-1])


def _base_env() -> dict[str, str]:
    import os

    return {k: v for k, v in os.environ.items() if not k.startswith("SOURCES__")}


@pytest.mark.parametrize("argv", [("--help",), ("--version",), ("run", "--help")])
def test_help_and_version_import_no_dlt_and_no_sandbox(argv):
    seen = _imports(None, *argv)
    assert seen["code"] == 0
    assert seen["dlt"] is False and seen["pyarrow"] is False
    assert seen["pipelines.sandbox"] is False


def test_only_the_sandbox_command_builds_the_sandbox_options():
    seen = _imports(None, "sandbox", "--help")
    assert seen["code"] == 0 and seen["pipelines.sandbox"] is True


def test_check_sql_and_a_duckdb_report_import_no_pyarrow(make_sandbox, make_etl):
    etl = make_etl(make_sandbox(seed=5, syncs=2, executions=20))
    etl.run()
    target = ("--duckdb", str(etl.db_path), "--pipelines-dir", str(etl.tmp / "pl"))
    for argv in (
        ("check", *target),
        ("sql", *target, "SELECT count(*) FROM bulk_sync_executions"),
        ("report", *target),
    ):
        seen = _imports(etl, *argv)
        assert seen["code"] == 0, argv
        assert seen["pyarrow"] is False, f"{argv[0]} imported pyarrow"
        assert seen["pipelines.sandbox"] is False, argv
