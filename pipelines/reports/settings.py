"""The reports' thresholds: the ``[reports]`` config section, validated, for the views.

Every threshold a view applies is here, with its default.  ``load_settings`` reads them the
dlt way (``.dlt/config.toml`` section ``[reports]``, or the environment, e.g.
``REPORTS__LATE_GRACE_MINUTES``) and refuses a bad value with one clear line.  The views read
them from the ``report_settings`` view (one row), which ``refresh.create_views`` writes with
every other view: a changed setting takes effect on the next ``run`` or ``views``, and
``select * from report_settings`` shows the values in force.
"""

from __future__ import annotations

import dataclasses
import math
import os
from dataclasses import dataclass
from typing import Any

SECTION = "reports"


class SettingsError(ValueError):
    """A ``[reports]`` setting that cannot be used (a usage error: exit 2)."""

    exit_code = 2


@dataclass(frozen=True)
class Setting:
    name: str
    kind: type  # int or float
    default: float
    low: float  # inclusive
    high: float  # inclusive
    unit: str
    help: str


SETTINGS: tuple[Setting, ...] = (
    Setting(
        "late_grace_minutes",
        float,
        15,
        0,
        10_000,
        "minutes",
        "late: the last success is older than the interval plus max(this, the p95 duration)",
    ),
    Setting(
        "flapping_min_flips",
        int,
        6,
        1,
        1_000,
        "flips",
        "flapping: at least this many outcome changes in the window (6 = three episodes)",
    ),
    Setting(
        "flapping_window_runs",
        int,
        20,
        2,
        1_000,
        "runs",
        "flapping: the window, in the sync's latest terminal runs",
    ),
    Setting(
        "stuck_p95_multiple",
        float,
        3,
        1,
        100,
        "x the p95 duration",
        "stuck: in flight longer than max(this x p95 duration, stuck_min_minutes)",
    ),
    Setting(
        "stuck_min_minutes",
        float,
        30,
        0,
        10_000,
        "minutes",
        "stuck: the least threshold a sync's history can give",
    ),
    Setting(
        "stuck_no_history_hours",
        float,
        6,
        0,
        1_000,
        "hours",
        "stuck: the threshold of a sync with no completed run in 30 days",
    ),
    Setting(
        "stuck_canceling_minutes",
        float,
        30,
        0,
        10_000,
        "minutes",
        "stuck: a canceling run, in flight longer than max(this, the p95 duration)",
    ),
    Setting(
        "volume_band_pct",
        float,
        30,
        0,
        10_000,
        "percent",
        "volume: the record count is outside the baseline median +/- this percentage",
    ),
    Setting(
        "volume_min_z",
        float,
        3.5,
        0,
        1_000,
        "robust z",
        "volume: and |x - median| / (1.4826 x MAD) is above this (or the MAD is 0)",
    ),
    Setting(
        "volume_min_baseline_runs",
        int,
        4,
        1,
        8,
        "runs",
        "volume: runs in the baseline (of the last 8) before a run is judged at all",
    ),
)
_BY_NAME = {s.name: s for s in SETTINGS}


@dataclass(frozen=True)
class ReportSettings:
    """The values in force; the defaults are those of ``SETTINGS``."""

    late_grace_minutes: float = 15
    flapping_min_flips: int = 6
    flapping_window_runs: int = 20
    stuck_p95_multiple: float = 3
    stuck_min_minutes: float = 30
    stuck_no_history_hours: float = 6
    stuck_canceling_minutes: float = 30
    volume_band_pct: float = 30
    volume_min_z: float = 3.5
    volume_min_baseline_runs: int = 4

    def __post_init__(self) -> None:
        for field in dataclasses.fields(self):
            value = _checked(_BY_NAME[field.name], getattr(self, field.name), "")
            object.__setattr__(self, field.name, value)
        flips, runs = self.flapping_min_flips, self.flapping_window_runs
        if flips > runs - 1:  # n runs change outcome at most n - 1 times
            envs = " / ".join(
                f"{SECTION.upper()}__{n}" for n in ("FLAPPING_MIN_FLIPS", "FLAPPING_WINDOW_RUNS")
            )
            raise SettingsError(
                f"{SECTION}.flapping_min_flips ({flips}) must be less than "
                f"{SECTION}.flapping_window_runs ({runs}): {runs} runs change outcome at most "
                f"{runs - 1} times, so no sync could be flapping "
                f"(in [{SECTION}] of .dlt/config.toml, or env {envs})"
            )

    def replace(self, **changes: Any) -> ReportSettings:
        return dataclasses.replace(self, **changes)

    def sql_values(self) -> dict[str, str]:
        """Each setting as a SQL literal (a plain number; validated, so safe in SQL text)."""
        out = {}
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            out[field.name] = str(value) if isinstance(value, int) else repr(float(value))
        return out


def load_settings() -> ReportSettings:
    """The ``[reports]`` section as dlt resolves it; defaults for what is not set.

    A value that is not a number of the right kind, or out of range, is a ``SettingsError``
    naming the setting, its environment variable and what it accepts.
    """
    import dlt

    values: dict[str, Any] = {}
    for setting in SETTINGS:
        key = f"{SECTION}.{setting.name}"
        where = _where(setting.name)
        try:
            raw, problem = dlt.config.get(key), None  # as given: text from the environment
        except Exception as exc:
            raw, problem = None, _cause(exc)
        if problem is not None:  # raised here, so no dlt exception is its context
            raise SettingsError(f"{key}{where} must be {_expected(setting)}, not {problem}")
        if raw is not None:
            values[setting.name] = _checked(setting, _number(raw), where, _given(raw))
    return ReportSettings(**values)


def _where(name: str) -> str:
    """Where a setting comes from: the environment when it is set there, else config.toml."""
    env = f"{SECTION.upper()}__{name.upper()}"
    if env in os.environ:
        return f" (env {env})"
    return f" (in [{SECTION}] of .dlt/config.toml, or env {env})"


def _number(raw: Any) -> Any:
    """A number given as text (the environment) read as one; anything else as it is."""
    if isinstance(raw, str):
        for kind in (int, float):
            try:
                return kind(raw.strip())
            except ValueError:
                pass
    return raw


def _given(raw: Any) -> str:
    """``raw`` as the user wrote it: ``-1`` stays ``-1``; text that is no number is quoted."""
    if isinstance(raw, str):
        return raw.strip() if _number(raw) is not raw else repr(raw)
    return repr(raw)


def _checked(setting: Setting, value: Any, where: str, given: str | None = None) -> int | float:
    """``value`` of the setting's kind; a whole number may be written ``3.0``."""
    problem = (
        f"{SECTION}.{setting.name}{where} must be {_expected(setting)}, "
        f"not {repr(value) if given is None else given}"
    )
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise SettingsError(problem)
    if not math.isfinite(value) or not setting.low <= value <= setting.high:
        raise SettingsError(problem)
    if setting.kind is int and value != int(value):
        raise SettingsError(problem)
    return int(value) if setting.kind is int else float(value)


def _expected(setting: Setting) -> str:
    what = "a whole number" if setting.kind is int else "a number"
    return f"{what} from {setting.low:g} to {setting.high:g} ({setting.unit})"


def _cause(exc: BaseException) -> str:
    value = getattr(exc, "field_value", None)
    if value is not None:
        return repr(value)
    first = str(exc).strip().splitlines()
    return f"a value dlt could not read ({first[0] if first else type(exc).__name__})"
