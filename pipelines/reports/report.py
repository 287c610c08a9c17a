"""Build a report from the reporting views.

``build_report`` only needs a ``query(sql, *args)`` callable that runs one SQL statement with
``%s`` bind parameters and returns the rows as dicts (``db.Db.dicts``, or dlt's
``sql_client.execute_sql`` style).  The SQL it sends is plain and portable (it reads the views
``refresh.create_views`` made).  Every value (sync and execution ids, instants) is a bind
parameter: text from the API never becomes SQL, and no SQL text is rewritten after values
are in it.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from pipelines.reports.html import render_html
from pipelines.reports.model import HEALTH_ORDER, Report, Row, match_syncs, normalize
from pipelines.reports.runs import RunLog
from pipelines.reports.terminal import render_terminal
from pipelines.reports.views import check_dataset

__all__ = ["DEFAULT_PERIOD", "Report", "build_report", "render_html", "render_terminal"]

DEFAULT_PERIOD = timedelta(days=30)
LAST_RUNS = 20
WORST_SYNCS = 3


TS = "cast(%s as timestamp with time zone)"  # an instant, as a bind parameter


def _marks(values: list[Any]) -> str:
    return ", ".join(["%s"] * len(values))


class _Reader:
    def __init__(self, query: Callable[..., list[dict]], dataset: str) -> None:
        self._query = query
        self._dataset = dataset
        self.ids: list[str] | None = None  # restricts every read to these syncs

    def rows(self, sql: str, *args: Any) -> list[Row]:
        """``sql`` with ``{ds}`` (the dataset, a checked identifier) and at most one
        ``{where}`` (the sync filter), filled in once, before any value: ``{where}`` comes
        before every other parameter."""
        where, ids = "true", []
        if self.ids is not None:
            where, ids = f"bulk_sync_id in ({_marks(self.ids)})", self.ids
        if "{where}" in sql:
            assert "%s" not in sql.split("{where}")[0], "the sync filter's parameters go first"
        else:
            ids = []
        text = sql.format(ds=self._dataset, where=where)
        return [normalize(dict(row)) for row in self._query(text, *ids, *args)]


def _severity(row: Row) -> int:
    health = row["health"]
    return HEALTH_ORDER.index(health) if health in HEALTH_ORDER else len(HEALTH_ORDER)


def build_report(
    query: Callable[..., list[dict]],
    dataset: str = "polytomic",
    *,
    since: datetime | None = None,
    sync: str | None = None,
    runlog: RunLog | None = None,
) -> Report:
    """Read the views into a ``Report``.

    The period runs from ``since`` (default: 30 days before the views' clock) up to that
    clock: runs that started or ended after it are in no period.  It narrows the
    charts, the incidents, the anomalies and the run strips.  ``sync_health`` keeps its fixed
    24 h / 7 d / 30 d windows.  ``sync`` focuses every part on one sync: its id, its name,
    or a part of its name, whatever the case (``model.match_syncs``; ``model.SyncChoice``, a
    ValueError, when none or several match).
    A ``since`` after the clock is a ValueError; one before the first run starts the period
    on that run's day (the charts draw the data's span, not centuries of empty days).
    ``runlog`` (``runs.read_runlog``) goes into the header as it is.
    """
    check_dataset(dataset)  # the one name that goes into the SQL text
    read = _Reader(query, dataset)
    now = read.rows("select now_ts from {ds}.report_clock")[0]["now_ts"]
    if since is None:
        start = now - DEFAULT_PERIOD
    else:  # a naive `since` is taken as UTC, like every timestamp in the views
        start = since.replace(tzinfo=UTC) if since.tzinfo is None else since.astimezone(UTC)
    if start > now:
        raise ValueError(
            f"--since {start:%Y-%m-%d %H:%M} UTC is in the future "
            f"(the report's clock says {now:%Y-%m-%d %H:%M} UTC)"
        )
    syncs = read.rows("select * from {ds}.sync_health where {where}")
    if sync is not None:
        syncs = match_syncs(syncs, sync, dataset)  # SyncChoice: none, or several
        read.ids = [r["bulk_sync_id"] for r in syncs]
    syncs.sort(key=lambda r: (_severity(r), str(r["name"])))
    first = read.rows("select min(run_at) as first from {ds}.execution_outcomes where {where}")
    floor = (first[0]["first"] if first and first[0]["first"] else now).replace(
        hour=0, minute=0, second=0, microsecond=0
    )
    start = max(start, min(floor, now))
    # In the period: run_at from its start up to now, and the outcome known by now.
    period = f"run_at >= {TS} and run_at <= {TS} and ended_at <= {TS}"
    in_period = (start, now, now)

    runs = read.rows(
        "select * from (select execution_id, bulk_sync_id, status, outcome, run_at, duration_s,"
        " regressed, record_count, row_number() over (partition by bulk_sync_id"
        " order by run_at desc, execution_id desc) as rn from {ds}.execution_durations"
        f" where {{where}} and {period}) as t where rn <= {LAST_RUNS}",
        *in_period,
    )
    runs.sort(key=lambda r: (r["bulk_sync_id"], r["run_at"], r["execution_id"]))
    schema_health = read.rows("select * from {ds}.schema_health where {where}")
    worst = _worst_syncs(syncs, schema_health)
    grid: list[Row] = []
    if worst:
        ids = [r["execution_id"] for r in runs if r["bulk_sync_id"] in worst]
        if ids:
            grid = read.rows(
                'select bulk_sync_id, execution_id, "schema", status, schema_outcome, run_at,'
                " record_count, status_message from {ds}.schema_outcomes where {where}"
                f" and execution_id in ({_marks(ids)})",
                *ids,
            )
            grid.sort(key=lambda r: (worst.index(r["bulk_sync_id"]), r["run_at"], r["schema"]))

    return Report(
        dataset=dataset,
        now=now,
        since=start,
        sync=sync,
        syncs=syncs,
        flapping=sorted(
            read.rows("select * from {ds}.flapping where {where} and flapping"),
            key=lambda r: (-r["flips"], str(r["name"])),
        ),
        chronic=sorted(
            (r for r in schema_health if r["chronic"]),
            key=lambda r: (-r["chronic_failures"], str(r["name"]), r["schema"]),
        ),
        incidents=read.rows(
            "select * from {ds}.incidents where {where}"
            f" and (state = 'open' or started_at between {TS} and {TS})"
            " order by started_at desc",
            start,
            now,
        ),
        recovery=read.rows("select * from {ds}.recovery where {where} order by name"),
        stuck=read.rows(
            "select * from {ds}.stuck_executions where {where} order by exceeded_by_s desc"
        ),
        anomalies=read.rows(
            "select * from {ds}.volume_anomalies where {where}"
            f" and is_anomaly and run_at between {TS} and {TS}"
            " order by run_at desc, level, name",
            start,
            now,
        ),
        daily=read.rows(
            "select day, sum(runs) as runs, sum(success_runs) as success,"
            " sum(partial_runs) as partial, sum(failed_runs) as failed,"
            " sum(canceled_runs) as canceled, sum(in_flight_runs) as in_flight,"
            " sum(records) as records, sum(runtime_s) as runtime_s"
            " from {ds}.daily_executions where {where}"
            " and day >= cast(%s as date) group by day order by day",
            start.date().isoformat(),
        ),
        runs=runs,
        durations=read.rows(
            "select bulk_sync_id, count(*) as runs,"
            " percentile_cont(0.5) within group (order by duration_s) as p50_s,"
            " percentile_cont(0.95) within group (order by duration_s) as p95_s,"
            " max(duration_s) as max_s,"
            " sum(case when regressed then 1 else 0 end) as regressed_runs"
            " from {ds}.execution_durations where {where}"
            " and outcome in ('success', 'partial') and duration_s is not null"
            f" and {period} group by bulk_sync_id order by bulk_sync_id",
            *in_period,
        ),
        schema_grid=grid,
        worst_syncs=worst,
        runlog=runlog,
        settings=(read.rows("select * from {ds}.report_settings") or [{}])[0],
    )


def _worst_syncs(syncs: list[Row], schema_health: list[Row]) -> list[str]:
    """Syncs with failing schemas: most chronic schemas, then most failures in 30 days."""
    score: dict[str, tuple[int, int]] = {}
    for row in schema_health:
        chronic, failed = score.get(row["bulk_sync_id"], (0, 0))
        score[row["bulk_sync_id"]] = (chronic + bool(row["chronic"]), failed + row["failed_30d"])
    severity = {r["bulk_sync_id"]: _severity(r) for r in syncs}
    ranked = sorted(
        (sid for sid, (chronic, failed) in score.items() if chronic or failed),
        key=lambda sid: (-score[sid][0], -score[sid][1], severity.get(sid, 99), sid),
    )
    return ranked[:WORST_SYNCS]
