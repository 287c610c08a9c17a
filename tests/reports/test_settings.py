"""The ``[reports]`` settings: defaults, validation, and the views picking them up.

The view tests run on DuckDB and on PostgreSQL (see conftest.py); the CLI tests run the real
`views` and `run` commands against the sandbox.
"""

from __future__ import annotations

import dataclasses

import pytest

from pipelines.reports.db import Db
from pipelines.reports.refresh import create_views, installed_version
from pipelines.reports.report import build_report
from pipelines.reports.settings import SETTINGS, ReportSettings, SettingsError, load_settings
from pipelines.reports.views import view_sql, views_version
from tests.reports.history import NOW, build

ENV = "REPORTS__FLAPPING_MIN_FLIPS"


@pytest.fixture(autouse=True)
def no_reports_env(monkeypatch):
    for setting in SETTINGS:
        monkeypatch.delenv(f"REPORTS__{setting.name.upper()}", raising=False)


def test_every_setting_has_one_default_and_is_documented_in_the_view():
    defaults = {s.name: s.default for s in SETTINGS}
    assert dataclasses.asdict(ReportSettings()) == defaults
    assert defaults == {
        "late_grace_minutes": 15,
        "flapping_min_flips": 6,
        "flapping_window_runs": 20,
        "stuck_p95_multiple": 3,
        "stuck_min_minutes": 30,
        "stuck_no_history_hours": 6,
        "stuck_canceling_minutes": 30,
        "volume_band_pct": 30,
        "volume_min_z": 3.5,
        "volume_min_baseline_runs": 4,
    }
    header = view_sql("report_settings", "duckdb").split("create or replace")[0]
    for setting in SETTINGS:
        assert f"--   {setting.name} " in header, setting.name
        assert f"({setting.default:g})" in header, setting.name
    assert load_settings() == ReportSettings()


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("abc", "must be a whole number from 1 to 1000 (flips), not 'abc'"),
        ("2.5", "must be a whole number from 1 to 1000 (flips), not 2.5"),
        ("0", "must be a whole number from 1 to 1000 (flips), not 0"),
    ],
)
def test_a_bad_value_is_one_clear_error(monkeypatch, value, message):
    monkeypatch.setenv(ENV, value)
    with pytest.raises(SettingsError) as raised:
        load_settings()
    assert str(raised.value) == f"reports.flapping_min_flips (env {ENV}) {message}"
    assert raised.value.exit_code == 2
    assert raised.value.__context__ is None and raised.value.__cause__ is None


@pytest.mark.parametrize(
    ("changes", "match"),
    [
        ({"late_grace_minutes": -1}, "late_grace_minutes must be a number from 0"),
        ({"volume_band_pct": float("nan")}, "volume_band_pct must be a number"),
        ({"volume_min_baseline_runs": 9}, "from 1 to 8 \\(runs\\), not 9"),
        ({"stuck_p95_multiple": True}, "stuck_p95_multiple must be a number"),
    ],
)
def test_settings_are_validated_however_they_are_made(changes, match):
    with pytest.raises(SettingsError, match=match):
        ReportSettings(**changes)


def test_minutes_may_be_fractional_and_counts_are_whole(monkeypatch):
    monkeypatch.setenv("REPORTS__LATE_GRACE_MINUTES", "7.5")
    monkeypatch.setenv("REPORTS__FLAPPING_WINDOW_RUNS", "30")
    loaded = load_settings()
    assert (loaded.late_grace_minutes, loaded.flapping_window_runs) == (7.5, 30)
    assert loaded.sql_values()["late_grace_minutes"] == "7.5"
    assert loaded.sql_values()["flapping_window_runs"] == "30"


def test_the_views_read_the_settings_in_force_and_a_change_refreshes_them(
    backend, load, monkeypatch
):
    wh = load(build())  # the defaults: s_chronic (5 flips) is not flapping
    (row,) = wh.view("report_settings")
    assert row == dataclasses.asdict(ReportSettings())

    def flapping() -> list[str]:
        return sorted(r["bulk_sync_id"] for r in wh.view("flapping", "flapping"))

    assert flapping() == ["s_flap"]
    connection, dialect = backend.connection, backend.dialect

    monkeypatch.setenv(ENV, "5")  # what `run` and `views` read
    assert create_views(connection, dialect, wh.dataset, now=NOW) is True
    assert wh.view("report_settings")[0]["flapping_min_flips"] == 5
    assert flapping() == ["s_chronic", "s_flap"]
    assert create_views(connection, dialect, wh.dataset, now=NOW) is False  # already current
    # another setting, not another version: a report still reads these views
    assert installed_version(Db(connection, dialect), wh.dataset) == views_version(dialect)

    monkeypatch.setenv(ENV, "many")  # refused before anything is touched
    with pytest.raises(SettingsError, match="flapping_min_flips"):
        create_views(connection, dialect, wh.dataset, now=NOW)
    assert flapping() == ["s_chronic", "s_flap"]

    monkeypatch.delenv(ENV)
    assert create_views(connection, dialect, wh.dataset, now=NOW) is True
    assert flapping() == ["s_flap"]


def test_explicit_settings_change_every_threshold(backend, load):
    wh = load(build())
    strict = ReportSettings(
        late_grace_minutes=0,
        flapping_min_flips=3,
        stuck_p95_multiple=1,
        stuck_min_minutes=0,
        volume_band_pct=10,
    )
    create_views(backend.connection, backend.dialect, wh.dataset, now=NOW, settings=strict)
    report = build_report(backend.query, wh.dataset)
    # flapping at 3 flips: s_broken (SFSFFF), s_chronic and s_healthy (SFFPSSS) join s_flap
    assert sorted(r["bulk_sync_id"] for r in report.flapping) == [
        "s_broken",
        "s_chronic",
        "s_flap",
        "s_healthy",
    ]
    stuck = {r["bulk_sync_id"]: r for r in report.stuck}
    assert stuck["s_stuck"]["threshold_s"] == pytest.approx(690)  # 1 x p95, no minimum
    # s_healthy's running run (5 min) is over 1 x its p95 (291 s)
    assert sorted(stuck) == ["s_first", "s_healthy", "s_stuck"]
    # the +25 % orders run is outside a 10 % band now
    volume = wh.view("volume_anomalies", "is_anomaly and level = 'schema'")
    assert sorted(r["schema"] for r in volume) == ["events", "orders"]
    health = {r["bulk_sync_id"]: r for r in wh.view("sync_health")}
    assert health["s_late"]["late_grace_s"] == 60  # its p95: the grace is never below it


def test_the_views_command_refuses_a_bad_setting_and_picks_up_a_good_one(make_sandbox, make_etl):
    sandbox = make_sandbox(seed=5, syncs=1, executions=10)
    etl = make_etl(sandbox)
    etl.run()
    bad = make_etl(sandbox, REPORTS__LATE_GRACE_MINUTES="soon")
    code, out, err = bad.cli("views")
    assert (code, out) == (2, "")
    assert err.strip().splitlines() == [
        "polytomic-etl: reports.late_grace_minutes (env REPORTS__LATE_GRACE_MINUTES) must be "
        "a number from 0 to 10000 (minutes), not 'soon'"
    ]
    code, _, err = bad.cli("run")
    assert code == 2 and "reports.late_grace_minutes" in err

    good = make_etl(sandbox, REPORTS__LATE_GRACE_MINUTES="45")
    code, out, err = good.cli("views")
    assert code == 0, err
    assert "created or refreshed" in out
    assert good.query("select late_grace_minutes from polytomic.report_settings") == [(45.0,)]
    code, out, _ = good.cli("views")
    assert "already current" in out
