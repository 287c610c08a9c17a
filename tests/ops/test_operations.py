"""Operating it: backfills, the lock, exit codes, output modes, check, config dir, shards."""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

from pipelines.lock import PipelineLock
from pipelines.target import Target
from sources.polytomic import shard_of
from tests.conftest import assert_matches_truth, ts

STATE_FILE = "state.json"


def _state(etl) -> dict:
    target = Target(duckdb_path=str(etl.db_path), pipelines_dir=str(etl.tmp / "pl"))
    path = Path(target.working_root) / target.name / STATE_FILE
    state = json.loads(path.read_text())
    return state["sources"]["polytomic"]["resources"]["bulk_sync_executions"]


def test_a_backfill_window_reloads_its_rows_without_moving_the_cursors(make_sandbox, make_etl):
    sb = make_sandbox(seed=41, syncs=2, executions=300)
    etl = make_etl(sb)
    etl.run()
    cursors = {k: v["cursor"] for k, v in _state(etl)["syncs"].items()}
    terminal = [e for e in sb.truth_executions() if e["completed_at"] is not None]
    times = sorted(ts(e["updated_at"]) for e in terminal)
    since, until = times[100], times[200]
    etl.query("SELECT 1")  # the file exists
    code, out, err = etl.cli(
        "backfill", "--json", "--since", since.isoformat(), "--until", until.isoformat()
    )
    assert code == 0, err
    summary = json.loads(out)
    in_window = [t for t in times if since <= t < until]
    assert summary["executions"] == len(in_window)  # half-open [since, until)
    after = _state(etl)
    assert {k: v["cursor"] for k, v in after["syncs"].items()} == cursors
    assert after.get("backfills") == {}  # a finished backfill leaves no state behind
    sb.reset_log()
    assert etl.run()["executions"] == 0  # run after a backfill: as if it had not happened
    assert_matches_truth(etl)


def test_adjacent_backfill_windows_neither_overlap_nor_leave_gaps(make_sandbox, make_etl):
    sb = make_sandbox(seed=42, syncs=1, executions=200)
    etl = make_etl(sb)
    terminal = [e for e in sb.truth_executions() if e["completed_at"] is not None]
    times = sorted(ts(e["updated_at"]) for e in terminal)
    edges = [times[0], times[70], times[140], times[-1] + timedelta(seconds=1)]
    total = 0
    for since, until in itertools.pairwise(edges):
        code, out, err = etl.cli(
            "backfill", "--json", "--since", since.isoformat(), "--until", until.isoformat()
        )
        assert code == 0, err
        total += json.loads(out)["executions"]
    assert total == len(times)  # each terminal execution exactly once across the windows
    assert set(etl.executions()) == {e["id"] for e in terminal}


def test_full_backfill_drops_the_selected_syncs_rows_and_reloads_them(make_sandbox, make_etl):
    sb = make_sandbox(seed=43, syncs=2, executions=60)
    etl = make_etl(sb)
    etl.run()
    target, keep = sb.sync_ids()
    fake = "INSERT INTO polytomic.bulk_sync_executions (id, bulk_sync_id, _dlt_load_id)"
    with __import__("duckdb").connect(str(etl.db_path)) as con:
        con.execute(f"{fake} VALUES ('stale', '{target}', 'x')")
    code, _, err = etl.cli("backfill", "--full", "--bulk-sync-id", target)
    assert code == 2 and "--yes" in err  # no terminal: refuses without --yes, drops nothing
    assert "stale" in etl.executions()
    keep_loads = {
        k: v["_dlt_load_id"] for k, v in etl.executions().items() if v["bulk_sync_id"] == keep
    }
    code, _out, err = etl.cli("backfill", "--full", "--yes", "--json", "--bulk-sync-id", target)
    assert code == 0, err
    loaded = etl.executions()
    assert "stale" not in loaded
    assert {k: v["_dlt_load_id"] for k, v in loaded.items() if v["bulk_sync_id"] == keep} == (
        keep_loads
    )
    assert_matches_truth(etl)
    assert "full_reload" not in _state(etl)


def test_a_second_run_is_refused_while_the_lock_is_held(make_sandbox, make_etl):
    sb = make_sandbox(seed=44, syncs=1, executions=10)
    etl = make_etl(sb)
    target = Target(duckdb_path=str(etl.db_path), pipelines_dir=str(etl.tmp / "pl"))
    with PipelineLock(target.working_root / f"{target.name}.lock"):
        code, _out, err = etl.cli("run")
    assert code == 3
    assert f"another run holds the lock (pid {os.getpid()}, since " in err
    assert sb.count(kind="list_syncs") == 0  # it touched nothing


def test_a_stale_lock_left_by_a_killed_process_is_taken_over(make_sandbox, make_etl):
    sb = make_sandbox(seed=45, syncs=1, executions=10)
    etl = make_etl(sb)
    target = Target(duckdb_path=str(etl.db_path), pipelines_dir=str(etl.tmp / "pl"))
    lock = target.working_root / f"{target.name}.lock"
    lock.parent.mkdir(parents=True, exist_ok=True)
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import fcntl,os,sys,time; f=os.open(sys.argv[1], os.O_RDWR|"
            "os.O_CREAT); fcntl.flock(f, fcntl.LOCK_EX); os.write(f, b'pid 1, since x'); "
            "os.kill(os.getpid(), 9)",
            str(lock),
        ]
    )
    holder.wait()
    assert lock.read_text().startswith("pid 1")
    assert etl.run()["executions"] == 10


def test_quiet_prints_nothing_and_json_prints_one_object(make_sandbox, make_etl):
    sb = make_sandbox(seed=46, syncs=2, executions=20)
    etl = make_etl(sb)
    code, out, err = etl.cli("run", "--quiet")
    assert (code, out, err) == (0, "", "")
    sb.advance(60)
    sb.add_executions(sb.sync_ids()[0], n=2)
    code, out, _ = etl.cli("run", "--json")
    summary = json.loads(out)
    assert code == 0 and out.count("\n") == 1
    for key in (
        "syncs",
        "executions",
        "schema_rows",
        "skipped",
        "failed_syncs",
        "requests",
        "seconds",
    ):
        assert key in summary
    assert summary["executions"] == 2 and summary["ok"] is True
    code, out, _ = etl.cli("run")
    assert code == 0 and len(out.splitlines()) == 1 and "executions=0" in out


def test_usage_errors_exit_2(make_sandbox, make_etl):
    etl = make_etl(make_sandbox(seed=47, syncs=1, executions=1))
    assert etl.cli("backfill")[0] == 2  # neither --since nor --full
    assert etl.cli("backfill", "--since", "not-a-date")[0] == 2
    assert etl.cli("backfill", "--since", "2025-02-01", "--until", "2025-01-01")[0] == 2
    assert etl.cli("run", "--shard", "3/2")[0] == 2


def test_check_lists_the_visible_syncs_and_loads_nothing(make_sandbox, make_etl):
    sb = make_sandbox(seed=48, syncs=3, executions=5)
    etl = make_etl(sb)
    code, out, err = etl.cli("check")
    assert code == 0, err
    assert "2025-09-18" in out
    for sync_id in sb.sync_ids():
        assert sync_id in out
    assert sb.count(kind="list_executions") == 0
    assert not etl.db_path.exists()


def test_config_dir_makes_the_cron_line_work_from_any_directory(make_sandbox, tmp_path):
    sb = make_sandbox(seed=49, syncs=1, executions=12)
    project = tmp_path / "project"
    (project / ".dlt").mkdir(parents=True)
    (project / ".dlt" / "secrets.toml").write_text(
        f'[sources.polytomic]\napi_key = "{sb.api_key}"\n'
    )
    (project / ".dlt" / "config.toml").write_text(
        f'[sources.polytomic]\nbase_url = "{sb.base_url}"\n'
    )
    elsewhere = tmp_path / "home"
    elsewhere.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("SOURCES__")}
    cli = Path(sys.executable).parent / "polytomic-etl"
    db = tmp_path / "wh.duckdb"
    result = subprocess.run(
        [
            str(cli),
            "run",
            "--json",
            "--config-dir",
            str(project),
            "--duckdb",
            str(db),
            "--pipelines-dir",
            str(tmp_path / "pl"),
        ],
        cwd=elsewhere,
        env={**env, "HOME": str(elsewhere)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["executions"] == 12


def test_shards_partition_the_syncs_exactly():
    ids = [f"sync-{i:03d}" for i in range(500)]
    for n in (1, 2, 3, 7):
        parts = [{i for i in ids if shard_of(i, n) == k} for k in range(n)]
        assert set().union(*parts) == set(ids)
        assert sum(len(p) for p in parts) == len(ids)
        assert all(parts) or n > len(ids)


def test_two_shards_into_one_file_equal_one_unsharded_run(make_sandbox, make_etl):
    sb = make_sandbox(seed=50, syncs=6, executions=40)
    sharded, whole = make_etl(sb, name="sharded"), make_etl(sb, name="whole")
    for shard in ("0/2", "1/2"):
        sharded.run("--shard", shard)
    whole.run()
    assert_matches_truth(sharded)
    cols = "id, bulk_sync_id, status, record_count, updated_at"
    query = f"SELECT {cols} FROM polytomic.bulk_sync_executions ORDER BY id"
    assert sharded.query(query) == whole.query(query)
    assert sharded.query("SELECT count(*) FROM polytomic.bulk_syncs") == [(6,)]


def test_a_deleted_sync_is_recorded_and_its_history_and_state_handled(make_sandbox, make_etl):
    sb = make_sandbox(seed=51, syncs=2, executions=30)
    etl = make_etl(sb)
    etl.run()
    gone = sb.sync_ids()[0]
    first_seen = etl.query(f"SELECT last_seen_at FROM polytomic.bulk_syncs WHERE id = '{gone}'")
    sb.delete_sync(gone)
    sb.advance(3600)
    etl.run()
    row = etl.query(f"SELECT last_seen_at FROM polytomic.bulk_syncs WHERE id = '{gone}'")
    assert row == first_seen  # still there, and no longer seen
    others = etl.query(f"SELECT max(last_seen_at) FROM polytomic.bulk_syncs WHERE id <> '{gone}'")
    assert others[0][0] > first_seen[0][0]
    assert gone not in _state(etl)["syncs"]
    kept = etl.query(
        f"SELECT count(*) FROM polytomic.bulk_sync_executions WHERE bulk_sync_id = '{gone}'"
    )
    assert kept == [(30,)]


def test_runs_into_different_files_never_share_a_working_directory(tmp_path):
    a = Target(duckdb_path=str(tmp_path / "a.duckdb"))
    b = Target(duckdb_path=str(tmp_path / "b.duckdb"))
    c = Target(duckdb_path=str(tmp_path / "a.duckdb"), dataset="other")
    assert len({a.name, b.name, c.name}) == 3
    assert Target(duckdb_path=str(tmp_path / "a.duckdb")).name == a.name
