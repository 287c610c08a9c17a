"""The ``[reports]`` settings read alike from config.toml and the environment, say where to
fix them, and refuse thresholds that can never fire.

The CLI tests run the real `views` command (which reads the settings) against the sandbox.
"""

from __future__ import annotations

import pytest

from pipelines.reports.settings import SETTINGS, ReportSettings, SettingsError, load_settings
from tests.conftest import cli_as_typed as typed

NEVER = (
    "reports.flapping_min_flips (10) must be less than reports.flapping_window_runs (4): "
    "4 runs change outcome at most 3 times, so no sync could be flapping "
    "(in [reports] of .dlt/config.toml, or env REPORTS__FLAPPING_MIN_FLIPS / "
    "REPORTS__FLAPPING_WINDOW_RUNS)"
)


@pytest.fixture(autouse=True)
def no_reports_env(monkeypatch):
    for setting in SETTINGS:
        monkeypatch.delenv(f"REPORTS__{setting.name.upper()}", raising=False)


def test_a_whole_number_may_be_written_with_a_decimal_point_in_the_environment(monkeypatch):
    monkeypatch.setenv("REPORTS__FLAPPING_WINDOW_RUNS", "30.0")
    monkeypatch.setenv("REPORTS__VOLUME_MIN_BASELINE_RUNS", " 5 ")
    loaded = load_settings()
    assert (loaded.flapping_window_runs, loaded.volume_min_baseline_runs) == (30, 5)
    assert loaded.sql_values()["flapping_window_runs"] == "30"


@pytest.mark.parametrize(
    ("env", "value", "shown"),
    [
        ("REPORTS__LATE_GRACE_MINUTES", "-1", "-1"),
        ("REPORTS__LATE_GRACE_MINUTES", "1e9", "1e9"),
        ("REPORTS__FLAPPING_MIN_FLIPS", "2.5", "2.5"),
        ("REPORTS__FLAPPING_MIN_FLIPS", "six", "'six'"),
    ],
)
def test_a_refused_value_is_echoed_as_it_was_given(monkeypatch, env, value, shown):
    monkeypatch.setenv(env, value)
    with pytest.raises(SettingsError) as raised:
        load_settings()
    assert str(raised.value).startswith(f"reports.{env[9:].lower()} (env {env}) must be ")
    assert str(raised.value).endswith(f", not {shown}")


def test_flapping_thresholds_that_can_never_fire_are_refused(monkeypatch):
    with pytest.raises(SettingsError) as raised:
        ReportSettings(flapping_window_runs=4, flapping_min_flips=10)
    assert str(raised.value) == NEVER
    assert ReportSettings(flapping_window_runs=4, flapping_min_flips=3).flapping_min_flips == 3
    monkeypatch.setenv("REPORTS__FLAPPING_WINDOW_RUNS", "6")  # 6 flips need 7 runs
    with pytest.raises(SettingsError, match=r"flapping_min_flips \(6\) must be less than"):
        load_settings()


@pytest.fixture
def project(make_sandbox, make_etl):
    etl = make_etl(make_sandbox(seed=5, syncs=1, executions=4))
    (etl.tmp / "conf" / ".dlt").mkdir(parents=True)
    return etl


def views(etl, config: str, **env: str) -> tuple[int, str, str]:
    (etl.tmp / "conf" / ".dlt" / "config.toml").write_text(config)
    args = ("views", "--duckdb", str(etl.db_path), "--config-dir", str(etl.tmp / "conf"))
    return typed(etl, *args, **env)


def test_config_toml_reads_like_the_environment_and_its_errors_say_where_to_fix_them(project):
    # 30.0 is a whole number, so the error is about the next setting, volume_min_z
    code, out, err = views(project, "[reports]\nflapping_window_runs = 30.0\nvolume_min_z = -1\n")
    assert (code, out) == (2, "")
    assert err.strip() == (
        "polytomic-etl: reports.volume_min_z (in [reports] of .dlt/config.toml, or env "
        "REPORTS__VOLUME_MIN_Z) must be a number from 0 to 1000 (robust z), not -1"
    )
    code, out, err = views(
        project, "[reports]\nflapping_window_runs = 4\nflapping_min_flips = 10\n"
    )
    assert (code, out) == (2, "")
    assert err.strip() == f"polytomic-etl: {NEVER}"


def test_views_warns_about_an_unknown_reports_setting(project):
    project.run()
    code, out, err = views(project, "[reports]\nlate_grace = 5\n", REPORTS__FLAPPING_WINDOW="9")
    assert code == 0, err
    assert out.startswith("polytomic-etl views: ")
    warnings = [line for line in err.splitlines() if "unknown setting" in line]
    assert len(warnings) == 2, err
    assert any("reports.late_grace in" in w and "late_grace_minutes?" in w for w in warnings)
    assert any("REPORTS__FLAPPING_WINDOW)" in w and "flapping_window_runs?" in w for w in warnings)
