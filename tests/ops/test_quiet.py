"""The README's cron line is quiet: a successful `run --quiet` prints nothing at all.

Each run is the installed CLI started the way cron starts it: an environment of HOME and PATH
only, the working directory `/`, the configuration in a `--config-dir`. dlt logs through its
own logger, so these runs show what neither `--quiet` alone nor our own logging can hide.
"""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import pytest

from pipelines.sandbox import Fault, Sandbox, SyncPlan
from tests.conftest import first_walk_page

CLI = Path(sys.executable).parent / "polytomic-etl"
DLT_WARNING = "|[WARNING]|"  # dlt's log format; ours reads "polytomic-etl: WARNING: ..."


@dataclass
class Cron:
    """One warehouse and one `--config-dir` project, run as cron runs it."""

    tmp: Path
    project: Path

    def run(self, *extra: str, **env: str) -> subprocess.CompletedProcess[str]:
        home = self.tmp / "home"
        home.mkdir(exist_ok=True)
        args = [str(CLI), "run", *extra, "--config-dir", str(self.project)]
        args += ["--duckdb", str(self.tmp / "wh.duckdb"), "--pipelines-dir", str(self.tmp / "pl")]
        return subprocess.run(
            args,
            cwd="/",
            env={"HOME": str(home), "PATH": "/usr/bin:/bin", **env},
            capture_output=True,
            text=True,
            timeout=120,
        )

    def count(self, table: str) -> int:
        with duckdb.connect(str(self.tmp / "wh.duckdb"), read_only=True) as con:
            return con.execute(f"SELECT count(*) FROM polytomic.{table}").fetchone()[0]


def _cron(tmp: Path, sb: Sandbox, log_level: str | None) -> Cron:
    project = tmp / "project"
    (project / ".dlt").mkdir(parents=True)
    config = f'[sources.polytomic]\nbase_url = "{sb.base_url}"\nbackoff_factor = 0.01\n'
    if log_level:  # what a user may uncomment in the repo's .dlt/config.toml
        config += f'\n[runtime]\nlog_level = "{log_level}"\n'
    (project / ".dlt" / "config.toml").write_text(config)
    (project / ".dlt" / "secrets.toml").write_text(
        f'[sources.polytomic]\napi_key = "{sb.api_key}"\n'
    )
    return Cron(tmp, project)


def _odd_records(sb: Sandbox) -> None:
    """Two records on the first page that cannot be merged: they go to `rejected_records`."""
    sync_id = sb.sync_ids()[0]
    page = first_walk_page(sb, sync_id)
    broken = [{"status": "completed"}, {**page["data"][0], "id": "x-1", "updated_at": "never"}]
    body = {**page, "data": [*page["data"], *broken]}
    sb.inject(Fault("body", kind_filter="list_executions", sync_id=sync_id, body=body))


def _colliding(index: int) -> dict[str, Any]:
    return {"extra_fields": {"recordCount": "many", "Status": index, "fooBar": [index]}}


@pytest.mark.parametrize("log_level", ["WARNING", "INFO"])
def test_quiet_runs_print_nothing_whatever_log_level_the_config_asks_for(
    make_sandbox, tmp_path, log_level
):
    sb = make_sandbox(seed=61, syncs=2, executions=40)
    cron = _cron(tmp_path, sb, log_level)
    first = cron.run("--quiet")
    assert (first.returncode, first.stdout, first.stderr) == (0, "", "")
    assert cron.count("bulk_sync_executions") == 80
    idle = cron.run("--quiet", RUNTIME__LOG_LEVEL=log_level)  # the environment, too
    assert (idle.returncode, idle.stdout, idle.stderr) == (0, "", "")


def test_declared_hints_and_arrow_schemas_agree_so_dlt_warns_of_nothing(make_sandbox, tmp_path):
    sb = make_sandbox(seed=63, plans=[SyncPlan(executions=150, overrides=_colliding)])
    _odd_records(sb)
    cron = _cron(tmp_path, sb, "INFO")  # INFO: the level is honoured, and shows more
    for run in ("first load", "idle run"):
        result = cron.run()
        assert result.returncode == 0, result.stderr
        assert "[INFO]" in result.stderr, run  # without --quiet, config.toml's level holds
        warned = [line for line in result.stderr.splitlines() if DLT_WARNING in line]
        assert warned == [], f"{run}: {warned}"
    assert cron.count("rejected_records") == 2  # (the rejected table was loaded too)


def test_dlt_telemetry_stays_off_with_a_config_dir(make_sandbox, tmp_path):
    sb = make_sandbox(seed=64, syncs=1, executions=5)
    cron = _cron(tmp_path, sb, None)
    probe = (
        "import sys; from pipelines.cli import _configure, build_parser; "
        "_configure(build_parser().parse_args(sys.argv[1:])); "
        "from dlt.common.runtime import anon_tracker; "
        "print(anon_tracker._ANON_TRACKER_ENDPOINT)"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe, "run", "--quiet", "--config-dir", str(cron.project)],
        cwd="/",
        env={"HOME": str(tmp_path), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert (result.returncode, result.stdout, result.stderr) == (0, "None\n", "")
