"""Errors name their cause in one line, with the documented exit code (2: config or usage).

Each case is what a user typed or pasted wrong; the line must lead with what to fix, never
stop at a colon, and never show a secret.
"""

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
    return make_etl(make_sandbox(seed=3, syncs=2, executions=10))


def _one_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert "Traceback" not in err and not lines[0].rstrip().endswith(":"), err
    return lines[0]


def test_a_secrets_toml_syntax_error_names_the_file_line_and_column(user):
    project = user.tmp / "conf"  # not the working directory: the next test's dlt reads that
    (project / ".dlt").mkdir(parents=True)
    (project / ".dlt/secrets.toml").write_text('[sources.polytomic]\napi_key = "abc\n')
    code, _, err = typed(
        user,
        "run",
        "--duckdb",
        "wh.duckdb",
        "--config-dir",
        str(project),
        SOURCES__POLYTOMIC__API_KEY="",
    )
    line = _one_line(err)
    assert code == 2
    assert "secrets.toml line 2, col" in line and "abc" not in line


@pytest.mark.parametrize(("typo", "meant"), [("postgre", "postgres"), ("snowflak", "snowflake")])
def test_a_mistyped_destination_suggests_the_closest_name(user, typo, meant):
    code, _, err = typed(user, "run", "--destination", typo)
    assert code == 2
    assert _one_line(err) == f"polytomic-etl: unknown destination {typo!r} (did you mean {meant}?)"


def test_a_duckdb_file_in_a_missing_directory_names_the_directory(user):
    code, _, err = typed(user, "run", "--duckdb", "/missing/dir/x.duckdb")
    assert code == 2
    assert "directory /missing/dir does not exist" in _one_line(err)
    assert not Path("/missing").exists()


def test_progress_offers_only_installed_collectors(user):
    with pytest.raises(SystemExit) as exit_:
        typed(user, "run", "--duckdb", "wh.duckdb", "--progress", "no-such-collector")
    assert exit_.value.code == 2
    from pipelines.cli import build_parser

    help_text = build_parser()._subparsers._group_actions[0].choices["run"].format_help()  # type: ignore[union-attr]
    offered = help_text.split("--progress {", 1)[1].split("}", 1)[0].split(",")
    for name in offered:
        assert name == "log" or __import__("importlib").util.find_spec(name), name


def test_a_key_pasted_with_a_trailing_newline_still_authenticates(user):
    key = user.sandbox.api_key
    code, _, err = typed(
        user, "run", "--duckdb", "wh.duckdb", SOURCES__POLYTOMIC__API_KEY=f" {key}\n"
    )
    assert code == 0, err
    url = f"  {user.sandbox.base_url}/\n"
    code, _, err = typed(user, "check", "--duckdb", "wh.duckdb", SOURCES__POLYTOMIC__BASE_URL=url)
    assert code == 0, err


def test_a_wrong_port_says_connection_refused_with_the_address(user):
    url = "http://127.0.0.1:9"  # discard: nothing listens here
    code, out, err = typed(user, "check", SOURCES__POLYTOMIC__BASE_URL=url)
    assert code != 0 and out == ""
    assert "connection refused by 127.0.0.1:9" in _one_line(err)


def test_check_also_proves_the_warehouse_accepts_writes_and_leaves_nothing(user):
    code, out, err = typed(user, "check")
    assert code == 0, err
    assert "accepts writes" in out and "dataset can be created" in out
    assert list(Path.cwd().iterdir()) == [], "check leaves no warehouse file behind"
    code, out, err = typed(user, "run", "--quiet")
    assert code == 0, err
    code, out, err = typed(user, "check", "--json")
    assert code == 0 and '"warehouse"' in out and "dataset exists" in out


def test_check_on_a_warehouse_it_cannot_open_fails_naming_it(user, tmp_path):
    not_a_file = tmp_path / "wh.duckdb"
    not_a_file.mkdir()  # unwritable even for root
    code, _, err = typed(user, "check", "--duckdb", str(not_a_file))
    assert code == 1 and "warehouse check failed" in _one_line(err)


def test_no_credentials_names_where_it_looked_and_the_cron_fix(user):
    project = user.tmp / "conf"
    project.mkdir()
    args = ("run", "--duckdb", "wh.duckdb", "--config-dir", str(project))
    code, _, err = typed(user, *args, SOURCES__POLYTOMIC__API_KEY="")
    line = _one_line(err)
    assert code == 2
    assert str(project / ".dlt" / "secrets.toml") in line and "--config-dir" in line


def test_a_password_in_the_base_url_never_reaches_the_terminal(user):
    url = "http://loader:hunter2-s3cret@example.com"  # refused: plain http off loopback
    for extra in ((), ("--json",)):
        code, out, err = typed(
            user, "run", "--duckdb", "wh.duckdb", *extra, SOURCES__POLYTOMIC__BASE_URL=url
        )
        assert code == 2 and "hunter2-s3cret" not in out + err
        assert "loader:***@example.com" in err


def test_an_unknown_setting_warns_with_the_closest_key_and_strict_refuses(user):
    project = user.tmp / "conf"
    (project / ".dlt").mkdir(parents=True)
    (project / ".dlt/config.toml").write_text("[sources.polytomic]\nlookback = 60\n")
    args = ("run", "--duckdb", "wh.duckdb", "--config-dir", str(project))
    code, _, err = typed(user, *args, SOURCES__POLYTOMIC__TIMEOUT="5")
    assert code == 0, err
    warnings = [line for line in err.splitlines() if "unknown setting" in line]
    assert len(warnings) == 2, err
    assert any("sources.polytomic.lookback in" in w and "lookback_seconds?" in w for w in warnings)
    assert any("SOURCES__POLYTOMIC__TIMEOUT" in w and "timeout_seconds?" in w for w in warnings)
    code, _, err = typed(user, *args, "--strict")
    assert code == 2 and "--strict" in _one_line(err)


def test_a_bad_report_threshold_is_exit_2_before_anything_is_loaded(user):
    project = user.tmp / "conf"
    (project / ".dlt").mkdir(parents=True)
    (project / ".dlt/config.toml").write_text("[reports]\nflapping_min_flips = 0\nlate_grace = 5\n")
    args = ("run", "--duckdb", "wh.duckdb", "--config-dir", str(project))
    code, _, err = typed(user, *args)
    line = [x for x in err.splitlines() if "unknown setting" not in x and x.strip()]
    assert code == 2 and len(line) == 1, err
    assert "reports.flapping_min_flips" in line[0] and "from 1 to 1000" in line[0]
    assert "reports.late_grace in" in err and "late_grace_minutes?" in err
    assert not Path("wh.duckdb").exists()  # refused before the warehouse was touched
