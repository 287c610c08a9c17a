"""The HTML page's glossary: what the words on the page mean, as the views define them.

Each entry restates, briefly, the header comment of the view it names
(``pipelines/reports/sql/common/<view>.sql``; the page shows the view in the term's
tooltip).  A threshold is given as its default followed by its ``[reports]`` setting
(``settings.ReportSettings``): the report does not carry the values in force, and
``select * from report_settings`` shows them.
"""

from __future__ import annotations

from html import escape

from pipelines.reports.model import COLOURS
from pipelines.reports.settings import ReportSettings

_DEFAULTS = ReportSettings()


def setting(name: str, unit: str = "") -> str:
    """``15 minutes (setting late_grace_minutes)``: the default, and the setting."""
    return f"{getattr(_DEFAULTS, name):g}{unit} (setting {name})"


def entries() -> list[tuple[str, str, str]]:
    """(term, definition, view) in reading order; health terms are the states' names."""
    return [
        ("times", "All times are UTC, and days are UTC days.", "execution_outcomes"),
        (
            "execution",
            "One run of a sync. Its id is Polytomic's execution id: find the run by it in "
            "Polytomic. Hover a square or a last run to see it.",
            "execution_outcomes",
        ),
        (
            "finished run",
            "A run that succeeded, was partial or failed. Canceled and in-flight runs are "
            "left out of rates, streaks, flips and incidents.",
            "execution_outcomes",
        ),
        (
            "health",
            "A sync's state: the first of these that applies, in this order: inactive, "
            "never run, broken, degraded, late, healthy.",
            "sync_health",
        ),
        ("inactive", "Paused (active = false), or deleted in Polytomic.", "sync_health"),
        ("never_run", "No finished run yet.", "sync_health"),
        ("broken", "The latest finished run failed.", "sync_health"),
        (
            "degraded",
            "The latest finished run was partial: failed schemas or errors.",
            "sync_health",
        ),
        (
            "late",
            "The latest finished run succeeded, but longer ago than the schedule's interval "
            "(hourly, daily, weekly) plus a grace: the larger of "
            f"{setting('late_grace_minutes', ' minutes')} and the sync's p95 duration. "
            "Syncs without such a schedule (manual ones) are never late.",
            "sync_health",
        ),
        ("healthy", "Active, and none of the above.", "sync_health"),
        (
            "success / partial / failed %",
            "Shares of the finished runs of the last 7 days, rounded so that the three add "
            "up to 100.",
            "sync_health",
        ),
        ("streak", "How many finished runs failed in a row, up to the latest.", "sync_health"),
        (
            "flips, S P F",
            f"The latest {setting('flapping_window_runs')} finished runs, oldest first: "
            "S success, P partial, F failed. A flip is a change of outcome from one run to "
            f"the next; {setting('flapping_min_flips')} or more flips is flapping.",
            "flapping",
        ),
        (
            "chronic",
            "A schema that failed in 3 or more of its last 5 runs in executions that "
            "completed (success or partial).",
            "schema_health",
        ),
        (
            "(history)",
            "How a stuck run's limit was set. history: the larger of "
            f"{setting('stuck_p95_multiple', 'x')} the sync's p95 duration and "
            f"{setting('stuck_min_minutes', ' minutes')}; fixed: "
            f"{setting('stuck_no_history_hours', ' hours')}, with no completed run in 30 "
            f"days; canceling: the larger of {setting('stuck_canceling_minutes', ' minutes')} "
            "and the p95 duration.",
            "stuck_executions",
        ),
        (
            "regressed",
            "A completed run that took over 1.5x its baseline: the median of the sync's "
            "daily median durations on the same weekday in the 4 weeks before (3 such days "
            "at least). Resyncs are never regressed.",
            "execution_durations",
        ),
        (
            "open incident",
            "The failed runs since the last success; partial runs neither start nor end an "
            "incident.",
            "incidents",
        ),
        (
            "volume anomaly",
            "A successful run (or schema) whose record count is outside the median of its "
            f"last 8 runs on the same weekday +/- {setting('volume_band_pct', '%')}, with a "
            f"robust z over {setting('volume_min_z')}; or 0 after a non-zero median. Judged "
            "once "
            f"there are {setting('volume_min_baseline_runs')} such runs.",
            "volume_anomalies",
        ),
    ]


def render() -> str:
    """The glossary as a definition list; health states are shown as their coloured chips."""
    items = []
    for term, text, view in entries():
        label = escape(term.replace("_", " "))
        if term in COLOURS:
            label = f'<span class="chip" style="background:{COLOURS[term]}">{label}</span>'
        items.append(
            f'<div><dt id="term-{_slug(term)}" title="defined in the view {view}">{label}</dt>'
            f"<dd>{escape(text)}</dd></div>"
        )
    return (
        '<footer id="glossary"><h3>What the words mean</h3><dl class="glossary">'
        + "".join(items)
        + '</dl><p class="muted small">A number followed by "(setting name)" is that '
        "setting's default: the settings are in the [reports] section of .dlt/config.toml "
        "(or REPORTS__&lt;NAME&gt; in the environment), and <code>select * from "
        "report_settings</code> shows the values in force.</p></footer>"
    )


def _slug(term: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in term.lower()).strip("-")
