-- daily_executions: a zero-filled calendar, one row per sync and UTC day.
--   Days are UTC days of started_at (created_at for runs that never started).
--   The spine for a sync runs from the later of the dataset's first run day and the sync's
--   creation day (but never after the sync's own first run day) up to today (UTC day of
--   report_clock.now_ts).  Days without executions have zeros.
--   runs counts every execution of execution_outcomes that day, up to now: future-dated runs
--   (run_at or ended_at after report_clock.now_ts) are left out.  success/partial/failed/
--   canceled/in_flight split it by outcome (runs with an unknown status are in runs only).
--   records / errors / warnings sum the executions' counts (null as 0).
--   runtime_s sums durations of executions that finished (never-finished runs add nothing).
create or replace view {dataset}.daily_executions as
with clock as (
    select now_ts, cast(now_ts at time zone 'UTC' as date) as today
    from {dataset}.report_clock
),
first_day as (
    select min(run_day) as first_day from {dataset}.execution_outcomes
),
sync_first as (
    select bulk_sync_id, min(run_day) as first_run_day
    from {dataset}.execution_outcomes
    group by bulk_sync_id
),
bounds as (
    select
        s.id as bulk_sync_id,
        s.name,
        c.today,
        case
            when f.first_day is null then c.today
            else least(
                greatest(f.first_day, cast(s.created_at at time zone 'UTC' as date)),
                coalesce(sf.first_run_day, c.today),
                c.today
            )
        end as start_day
    from {dataset}.bulk_syncs as s
    cross join clock as c
    cross join first_day as f
    left join sync_first as sf on sf.bulk_sync_id = s.id
),
spine as (
    select b.bulk_sync_id, b.name, cast(g.d as date) as day
    from bounds as b
    cross join generate_series(
        cast(b.start_day as timestamp), cast(b.today as timestamp), interval '1 day'
    ) as g(d)
),
agg as (
    select
        bulk_sync_id,
        run_day,
        count(*) as runs,
        count(*) filter (where outcome = 'success') as success_runs,
        count(*) filter (where outcome = 'partial') as partial_runs,
        count(*) filter (where outcome = 'failed') as failed_runs,
        count(*) filter (where outcome = 'canceled') as canceled_runs,
        count(*) filter (where outcome = 'in_flight') as in_flight_runs,
        sum(coalesce(record_count, 0)) as records,
        sum(coalesce(error_count, 0)) as errors,
        sum(coalesce(warning_count, 0)) as warnings,
        sum(duration_s) as runtime_s
    from {dataset}.execution_outcomes as o
    cross join clock as c
    where o.run_at <= c.now_ts and o.ended_at <= c.now_ts
    group by bulk_sync_id, run_day
)
select
    sp.day,
    sp.bulk_sync_id,
    sp.name,
    coalesce(a.runs, 0) as runs,
    coalesce(a.success_runs, 0) as success_runs,
    coalesce(a.partial_runs, 0) as partial_runs,
    coalesce(a.failed_runs, 0) as failed_runs,
    coalesce(a.canceled_runs, 0) as canceled_runs,
    coalesce(a.in_flight_runs, 0) as in_flight_runs,
    coalesce(a.records, 0) as records,
    coalesce(a.errors, 0) as errors,
    coalesce(a.warnings, 0) as warnings,
    coalesce(a.runtime_s, 0) as runtime_s
from spine as sp
left join agg as a on a.bulk_sync_id = sp.bulk_sync_id and a.run_day = sp.day
