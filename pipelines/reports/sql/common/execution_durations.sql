-- execution_durations: one row per execution of execution_outcomes (not test, not deleted).
--   duration_s = completed_at - started_at (null if it never finished); queue_s = started_at -
--   created_at; ended_at as in execution_outcomes.  Days and weekdays are UTC days of run_at
--   (see execution_outcomes).
--   baseline_s = median of the same sync's daily median durations on the same weekday over
--   the prior 28 days (days -7, -14, -21, -28), excluding the run's own day; only runs that
--   completed (success or partial) with a duration make a daily median.  baseline_days says how
--   many such days there were; baseline_s is null below 3 days.
--   regressed = the run completed (success or partial) and duration_s > 1.5 * baseline_s.
--   Resync executions (is_resync) reload everything: they are slow by design, so they neither
--   feed the daily medians nor get flagged.
--   How: Postgres' percentile_cont cannot be used over a window, and a self-join (LATERAL or
--   not) against the unindexed base view is misplanned into a quadratic loop on Postgres.  So
--   lag() collects the 4 previous same-weekday days into each day, they are unpivoted, and the
--   median is the mean of the middle one or two by rank: exactly percentile_cont(0.5).
create or replace view {dataset}.execution_durations as
with daily as (
    select
        bulk_sync_id,
        run_day,
        cast(extract(dow from run_day) as integer) as weekday,
        percentile_cont(0.5) within group (order by duration_s) as day_median_s
    from {dataset}.execution_outcomes
    where outcome in ('success', 'partial') and duration_s is not null and not is_resync
    group by bulk_sync_id, run_day
),
lagged as (
    select
        d.*,
        lag(run_day, 1) over prior as d1, lag(day_median_s, 1) over prior as m1,
        lag(run_day, 2) over prior as d2, lag(day_median_s, 2) over prior as m2,
        lag(run_day, 3) over prior as d3, lag(day_median_s, 3) over prior as m3,
        lag(run_day, 4) over prior as d4, lag(day_median_s, 4) over prior as m4
    from daily as d
    window prior as (partition by bulk_sync_id, weekday order by run_day)
),
pairs as (
    select
        l.bulk_sync_id,
        l.run_day,
        case o.back when 1 then l.m1 when 2 then l.m2 when 3 then l.m3 when 4 then l.m4 end
            as x
    from lagged as l
    cross join (values (1), (2), (3), (4)) as o(back)
    where case o.back when 1 then l.d1 when 2 then l.d2 when 3 then l.d3 when 4 then l.d4 end
        >= l.run_day - 28
),
ranked as (
    select
        p.*,
        row_number() over (partition by bulk_sync_id, run_day order by x) as r,
        count(*) over (partition by bulk_sync_id, run_day) as n
    from pairs as p
),
baseline as (
    select
        bulk_sync_id,
        run_day,
        avg(case when r in (floor((n + 1) / 2.0), ceil((n + 1) / 2.0)) then x end)
            as baseline_s,
        max(n) as baseline_days
    from ranked
    group by bulk_sync_id, run_day
)
select
    e.execution_id,
    e.bulk_sync_id,
    e.status,
    e.outcome,
    e.created_at,
    e.started_at,
    e.completed_at,
    e.run_at,
    e.run_day,
    e.ended_at,
    cast(extract(dow from e.run_day) as integer) as weekday,
    e.duration_s,
    e.queue_s,
    e.is_resync,
    case when b.baseline_days >= 3 then b.baseline_s end as baseline_s,
    coalesce(b.baseline_days, 0) as baseline_days,
    coalesce(
        e.outcome in ('success', 'partial')
        and not e.is_resync
        and b.baseline_days >= 3
        and e.duration_s > 1.5 * b.baseline_s,
        false
    ) as regressed,
    e.record_count
from {dataset}.execution_outcomes as e
left join baseline as b on b.bulk_sync_id = e.bulk_sync_id and b.run_day = e.run_day
