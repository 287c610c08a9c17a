"""`polytomic-etl cleanup`: the working directories of DuckDB files that are gone, and only those.

Each run records in its dlt working directory which warehouse it serves
(`polytomic_etl_target.json`: the destination and the DuckDB file's absolute path). `cleanup`
lists the directories whose DuckDB file no longer exists and deletes them only with `--yes`;
it keeps, and says why, every other one: a file that exists, a server warehouse, no marker, a
run holding the lock, pending load packages.
"""

from __future__ import annotations

import json
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from pipelines.cleanup import MARKER
from pipelines.target import Target
from tests.conftest import Etl, assert_matches_truth, environ
from tests.conftest import cli_as_typed as typed

REPO = Path(__file__).resolve().parents[2]


def working_dir(etl: Etl) -> Path:
    return etl.tmp / "pl" / Target(duckdb_path=str(etl.db_path)).name


def cleanup(etl: Etl, *argv: str) -> tuple[int, list[str], str]:
    code, out, err = typed(etl, "cleanup", *argv)
    return code, out.splitlines(), err


def verdicts(etl: Etl, *argv: str) -> dict[str, dict[str, str]]:
    code, out, err = typed(etl, "cleanup", "--json", *argv)
    assert code == 0, err
    return {Path(d["path"]).name: d for d in json.loads(out)["directories"]}


@pytest.fixture
def warehouses(make_sandbox, make_etl) -> tuple[Etl, Etl]:
    """Two DuckDB warehouses loaded from one org; the second one's file is then deleted."""
    sandbox = make_sandbox(seed=41, syncs=2, executions=12)
    kept, gone = make_etl(sandbox, "kept"), make_etl(sandbox, "gone")
    kept.run()
    gone.run()
    gone.db_path.unlink()
    assert not Path(f"{gone.db_path}.wal").exists()
    return kept, gone


def test_every_run_records_which_duckdb_file_its_working_dir_serves(warehouses):
    kept, _ = warehouses
    marker = working_dir(kept) / MARKER
    recorded = json.loads(marker.read_text())
    assert recorded["destination"] == "duckdb"
    assert recorded["duckdb_path"] == str(kept.db_path.resolve())
    assert stat.S_IMODE(marker.stat().st_mode) == 0o600


def test_cleanup_lists_only_the_directory_whose_duckdb_file_is_gone_and_deletes_nothing(
    warehouses,
):
    kept, gone = warehouses
    code, lines, err = cleanup(kept)
    assert code == 0, err
    assert lines == [
        f"would delete {working_dir(gone)}: its DuckDB file {gone.db_path} no longer exists",
        f"kept {working_dir(kept)}: its DuckDB file {kept.db_path} exists",
        f"polytomic-etl cleanup: 1 to delete, 1 kept (under {kept.tmp / 'pl'}); "
        "re-run with --yes to delete",
    ]
    assert working_dir(gone).is_dir() and working_dir(kept).is_dir()
    found = verdicts(kept)
    assert {name: v["action"] for name, v in found.items()} == {
        working_dir(kept).name: "kept",
        working_dir(gone).name: "delete",
    }
    assert working_dir(gone).is_dir()


def test_with_yes_only_that_directory_goes_and_both_warehouses_load_on(warehouses):
    kept, gone = warehouses
    root = kept.tmp / "pl"
    code, lines, err = cleanup(kept, "--yes")
    assert code == 0, err
    assert f"deleted {working_dir(gone)}: its DuckDB file {gone.db_path} no longer exists" in lines
    assert lines[-1] == f"polytomic-etl cleanup: deleted 1, kept 1 (under {root})"
    assert sorted(p.name for p in root.iterdir()) == [
        working_dir(kept).name,
        f"{working_dir(kept).name}.lock",
    ]
    sync_id = kept.sandbox.sync_ids()[0]
    kept.sandbox.add_executions(sync_id, 2)
    summary = kept.run()  # incremental: only what is new, from the state it kept
    assert (summary["executions_new"], summary["executions_changed"]) == (2, 0)
    assert_matches_truth(kept)
    again = gone.run()  # the deleted warehouse's path starts afresh
    assert again["executions_new"] == len(gone.sandbox.truth_executions())
    assert_matches_truth(gone)
    assert (
        cleanup(kept, "--yes")[1][-1] == f"polytomic-etl cleanup: deleted 0, kept 2 (under {root})"
    )


def test_nothing_to_do_is_exit_0_and_quiet_prints_nothing(make_sandbox, make_etl, warehouses):
    kept, gone = warehouses
    code, out, err = typed(kept, "cleanup", "--yes", "--quiet")
    assert (code, out, err) == (0, "", "")
    assert not working_dir(gone).exists()
    empty = kept.tmp / "empty"
    empty.mkdir()
    code, lines, err = cleanup(kept, "--pipelines-dir", str(empty))
    assert code == 0, err
    assert lines == [
        f"polytomic-etl cleanup: no working directories of polytomic-etl under {empty}"
    ]


def test_a_pipelines_dir_that_does_not_exist_is_a_usage_error(warehouses):
    kept, _ = warehouses
    code, lines, err = cleanup(kept, "--pipelines-dir", str(kept.tmp / "typo"))
    assert code == 2 and lines == []
    assert err.strip() == f"polytomic-etl: --pipelines-dir {kept.tmp / 'typo'}: not a directory"


def test_a_directory_a_live_run_holds_is_kept_until_the_run_ends(warehouses):
    kept, gone = warehouses
    lock = working_dir(gone).with_name(f"{working_dir(gone).name}.lock")
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time\nfrom pathlib import Path\nfrom pipelines.lock import PipelineLock\n"
            "with PipelineLock(Path(sys.argv[1])):\n    print('held', flush=True)\n"
            "    time.sleep(60)\n",
            str(lock),
        ],
        cwd=REPO,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "held\n"
        code, lines, err = cleanup(kept, "--yes")
        assert code == 0, err
        assert any(
            line.startswith(f"kept {working_dir(gone)}: its DuckDB file {gone.db_path} is gone, ")
            and f"a run holds its lock (pid {holder.pid}, since " in line
            for line in lines
        ), lines
        assert working_dir(gone).is_dir()
    finally:
        holder.kill()
        holder.wait()
    assert verdicts(kept, "--yes")[working_dir(gone).name]["action"] == "deleted"


def test_a_directory_with_pending_load_packages_is_kept_and_says_so(warehouses):
    kept, gone = warehouses
    pipeline = Target(duckdb_path=str(gone.db_path), pipelines_dir=str(gone.tmp / "pl")).pipeline()
    pipeline.extract([{"id": 1}], table_name="unfinished")
    pipeline.normalize()  # what a load killed before it committed leaves behind
    (pending,) = pipeline.list_normalized_load_packages()
    found = verdicts(kept, "--yes")[working_dir(gone).name]
    assert found["action"] == "kept"
    assert f"1 pending load package(s) ({pending}) that were never loaded" in found["reason"]
    assert (working_dir(gone) / "load" / "normalized" / pending).is_dir()


def test_server_warehouses_unknown_and_foreign_directories_are_never_deleted(warehouses):
    kept, gone = warehouses
    root = kept.tmp / "pl"
    secret = "pg-s3cret-pw"
    server = {"DESTINATION__POSTGRES__CREDENTIALS": f"postgresql://u:{secret}@db.example:5432/w"}
    with environ(server):
        postgres = Target(destination="postgres", pipelines_dir=str(root))
        postgres.pipeline()  # what every postgres command does first: its working dir
        server_dir = root / postgres.name  # (the name covers host, port and database)
    (working_dir(gone) / MARKER).unlink()  # as a run of an older version left it
    foreign = root / "someone_elses_pipeline"
    foreign.mkdir()
    found = verdicts(kept, "--yes")
    assert json.loads((server_dir / MARKER).read_text())["destination"] == "postgres"
    assert secret not in (server_dir / MARKER).read_text()
    assert found[server_dir.name]["action"] == "kept"
    assert found[server_dir.name]["reason"] == (
        "a postgres warehouse: only DuckDB files can be checked offline"
    )
    assert found[working_dir(gone).name]["action"] == "kept"
    assert found[working_dir(gone).name]["reason"].startswith(f"unknown warehouse: no {MARKER}")
    assert foreign.name not in found
    assert all(path.is_dir() for path in (server_dir, working_dir(gone), foreign))
