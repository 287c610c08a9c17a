"""The pipeline working directory: flat on disk over many runs, private to its user.

dlt keeps every finished load package under `<pipelines-dir>/<name>/load/loaded` (tens of
KB per idle run, for ever). The tool keeps the newest `keep_load_packages` (3) and writes
everything with umask 077.
"""

from __future__ import annotations

import stat
from pathlib import Path

from tests.conftest import assert_matches_truth
from tests.reliability.helpers import pipeline_dir


def _size(root: Path) -> int:
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file())


def _loaded(etl) -> list[str]:
    return sorted(p.name for p in (pipeline_dir(etl) / "load" / "loaded").iterdir())


def _readable_by_others(*roots: Path) -> list[str]:
    found = []
    for root in roots:
        for path in [root, *root.rglob("*")] if root.is_dir() else [root]:
            mode = stat.S_IMODE(path.lstat().st_mode)
            if mode & 0o077 and not path.is_symlink():
                found.append(f"{path} {oct(mode)}")
    return found


def test_the_working_dir_stays_flat_over_fifty_idle_runs(make_sandbox, make_etl):
    sb = make_sandbox(seed=331, syncs=1, executions=20)
    etl = make_etl(sb)
    etl.run()
    sizes = []
    for _ in range(50):
        assert etl.run()["executions"] == 0
        sizes.append(_size(etl.tmp / "pl"))
    growth = sizes[-1] - sizes[9]  # after the first packages to keep have accumulated
    assert growth < 16_000, f"grew {growth} bytes over 40 idle runs: {sizes[9]} -> {sizes[-1]}"
    assert len(_loaded(etl)) == 3  # the newest few stay, for debugging
    assert_matches_truth(etl)


def test_keep_load_packages_is_configurable_and_checked(make_sandbox, make_etl):
    sb = make_sandbox(seed=332, syncs=1, executions=20)
    etl = make_etl(sb, POLYTOMIC_ETL__KEEP_LOAD_PACKAGES="1")
    for _ in range(3):
        etl.run()
    assert len(_loaded(etl)) == 1
    newest = _loaded(etl)
    etl.extra_env["POLYTOMIC_ETL__KEEP_LOAD_PACKAGES"] = "0"
    etl.run()
    assert _loaded(etl) == []
    assert newest  # (the one kept before was the newest of three)
    etl.extra_env["POLYTOMIC_ETL__KEEP_LOAD_PACKAGES"] = "-1"
    code, _, err = etl.cli("run")
    assert code == 2 and "keep_load_packages" in err, err


def test_nothing_the_tool_writes_is_readable_by_group_or_others(make_sandbox, make_etl):
    sb = make_sandbox(seed=333, syncs=2, executions=40)
    etl = make_etl(sb)
    etl.run()
    etl.run()
    root = etl.tmp / "pl"
    assert any(root.rglob("*.parquet")) and any(root.rglob("state.json"))
    assert _readable_by_others(root, etl.db_path) == []


def test_a_working_dir_an_older_version_left_readable_is_made_private(make_sandbox, make_etl):
    sb = make_sandbox(seed=334, syncs=1, executions=20)
    etl = make_etl(sb)
    etl.run()
    root = etl.tmp / "pl"
    for path in [*root.rglob("*")]:  # what the files looked like under umask 022
        path.chmod(0o755 if path.is_dir() else 0o644)
    etl.run()
    assert _readable_by_others(pipeline_dir(etl), *root.glob("*.lock")) == []
