-- sync_health: one row per sync (bulk_syncs), including syncs that never ran.
--   Outcomes as in execution_outcomes; rates count terminal runs only (success, partial,
--   failed: canceled, in-flight and unknown statuses are left out) in the windows of the
--   last 24 h / 7 d / 30 d (exactly 24 / 168 / 720 hours): now - window <= run_at, and both
--   run_at and ended_at <= now (future-dated runs are in no window).
--   *_rate = outcome runs / runs, null when there were no runs.
--   last_status   = status of the most recent execution of any kind (by run_at).
--   last_outcome  = outcome of the latest terminal run.
--   last_success_at = ended_at of the latest success (completed_at, else updated_at, see
--   execution_outcomes); staleness_s = now - last_success_at.
--   expected_interval_s from default_schedule.frequency: hourly 3600, daily 86400,
--   weekly 604800; null for manual or any other frequency.
--   lateness_ratio = staleness_s / expected_interval_s.
--   p50 / p95 / max duration: runs that completed (success or partial) in the last 30 d
--   with both started_at and completed_at (percentile_cont, linear interpolation).
--   late_grace_s = max(report_settings.late_grace_minutes (15) * 60, p95_duration_s): a run
--   that starts on time and takes as long as usual is not late.
--   late_after_s = expected_interval_s + late_grace_s (null without an interval).
--   failure_streak = number of most recent consecutive terminal runs that failed.
--   health, first match wins (health_reason says why):
--     1 inactive  (active = false, or deleted_at is set: the sync is gone from the API)
--     2 never_run (no terminal run at all)
--     3 broken    (latest terminal run failed)
--     4 degraded  (latest terminal run partial)
--     5 late      (staleness_s > late_after_s)
--     6 healthy   (a ratio >= 1 inside the grace says so in health_reason)
create or replace view {dataset}.sync_health as
with clock as (
    select now_ts from {dataset}.report_clock
),
ranked as (
    select
        o.*,
        c.now_ts,
        row_number() over (
            partition by o.bulk_sync_id order by o.run_at desc, o.execution_id desc
        ) as rn_all,
        case when o.is_terminal then row_number() over (
            partition by o.bulk_sync_id, o.is_terminal order by o.run_at desc, o.execution_id desc
        ) end as rn_terminal,
        o.run_at <= c.now_ts and o.ended_at <= c.now_ts as is_past
    from {dataset}.execution_outcomes as o
    cross join clock as c
),
windowed as (
    select
        r.*,
        r.is_past and r.run_at >= r.now_ts - interval '24 hours' as in_24h,
        r.is_past and r.run_at >= r.now_ts - interval '168 hours' as in_7d,
        r.is_past and r.run_at >= r.now_ts - interval '720 hours' as in_30d
    from ranked as r
),
agg as (
    select
        bulk_sync_id,
        count(*) as executions,
        count(*) filter (where is_terminal) as terminal_runs,
        count(*) filter (where outcome = 'in_flight') as in_flight_runs,
        count(*) filter (where outcome = 'canceled') as canceled_runs,
        max(case when rn_all = 1 then status end) as last_status,
        max(case when rn_all = 1 then run_at end) as last_run_at,
        max(case when rn_terminal = 1 then outcome end) as last_outcome,
        max(case when rn_terminal = 1 then status end) as last_terminal_status,
        max(case when rn_terminal = 1 then status_message end) as last_terminal_message,
        max(case when rn_terminal = 1 then failed_schemas end) as last_failed_schemas,
        max(case when rn_terminal = 1 then coalesce(error_count, 0) end) as last_errors,
        max(case when rn_terminal = 1 then ended_at end) as last_terminal_at,
        max(ended_at) filter (where outcome = 'success') as last_success_at,
        coalesce(
            min(rn_terminal) filter (where is_terminal and outcome <> 'failed') - 1,
            count(*) filter (where is_terminal)
        ) as failure_streak,
        count(*) filter (where is_terminal and in_24h) as runs_24h,
        count(*) filter (where outcome = 'success' and in_24h) as success_24h,
        count(*) filter (where outcome = 'partial' and in_24h) as partial_24h,
        count(*) filter (where outcome = 'failed' and in_24h) as failed_24h,
        count(*) filter (where is_terminal and in_7d) as runs_7d,
        count(*) filter (where outcome = 'success' and in_7d) as success_7d,
        count(*) filter (where outcome = 'partial' and in_7d) as partial_7d,
        count(*) filter (where outcome = 'failed' and in_7d) as failed_7d,
        count(*) filter (where is_terminal and in_30d) as runs_30d,
        count(*) filter (where outcome = 'success' and in_30d) as success_30d,
        count(*) filter (where outcome = 'partial' and in_30d) as partial_30d,
        count(*) filter (where outcome = 'failed' and in_30d) as failed_30d,
        percentile_cont(0.5) within group (order by duration_s) filter (
            where outcome in ('success', 'partial') and in_30d
        ) as p50_duration_s,
        percentile_cont(0.95) within group (order by duration_s) filter (
            where outcome in ('success', 'partial') and in_30d
        ) as p95_duration_s,
        max(duration_s) filter (where outcome in ('success', 'partial') and in_30d)
            as max_duration_s
    from windowed
    group by bulk_sync_id
),
base as (
    select
        s.id as bulk_sync_id,
        s.name,
        s.active,
        s.deleted_at,
        s.default_schedule ->> 'frequency' as frequency,
        case s.default_schedule ->> 'frequency'
            when 'hourly' then 3600
            when 'daily' then 86400
            when 'weekly' then 604800
        end as expected_interval_s,
        c.now_ts,
        coalesce(a.executions, 0) as executions,
        coalesce(a.terminal_runs, 0) as terminal_runs,
        coalesce(a.in_flight_runs, 0) as in_flight_runs,
        coalesce(a.canceled_runs, 0) as canceled_runs,
        a.last_status,
        a.last_run_at,
        a.last_outcome,
        a.last_terminal_status,
        a.last_terminal_message,
        a.last_failed_schemas,
        a.last_errors,
        a.last_terminal_at,
        a.last_success_at,
        cast(extract(epoch from (
            (c.now_ts at time zone 'UTC') - (a.last_success_at at time zone 'UTC')
        )) as double precision) as staleness_s,
        coalesce(a.failure_streak, 0) as failure_streak,
        coalesce(a.runs_24h, 0) as runs_24h,
        cast(a.success_24h as double precision) / nullif(a.runs_24h, 0) as success_rate_24h,
        cast(a.partial_24h as double precision) / nullif(a.runs_24h, 0) as partial_rate_24h,
        cast(a.failed_24h as double precision) / nullif(a.runs_24h, 0) as failed_rate_24h,
        coalesce(a.runs_7d, 0) as runs_7d,
        cast(a.success_7d as double precision) / nullif(a.runs_7d, 0) as success_rate_7d,
        cast(a.partial_7d as double precision) / nullif(a.runs_7d, 0) as partial_rate_7d,
        cast(a.failed_7d as double precision) / nullif(a.runs_7d, 0) as failed_rate_7d,
        coalesce(a.runs_30d, 0) as runs_30d,
        cast(a.success_30d as double precision) / nullif(a.runs_30d, 0) as success_rate_30d,
        cast(a.partial_30d as double precision) / nullif(a.runs_30d, 0) as partial_rate_30d,
        cast(a.failed_30d as double precision) / nullif(a.runs_30d, 0) as failed_rate_30d,
        a.p50_duration_s,
        a.p95_duration_s,
        a.max_duration_s
    from {dataset}.bulk_syncs as s
    cross join clock as c
    left join agg as a on a.bulk_sync_id = s.id
),
graced as (
    select
        b.*,
        b.staleness_s / b.expected_interval_s as lateness_ratio,
        greatest(st.late_grace_minutes * 60, coalesce(b.p95_duration_s, 0)) as late_grace_s
    from base as b
    cross join {dataset}.report_settings as st
),
judged as (
    select
        g.*,
        g.expected_interval_s + g.late_grace_s as late_after_s
    from graced as g
)
select
    bulk_sync_id,
    name,
    active,
    deleted_at,
    case
        when active = false or deleted_at is not null then 'inactive'
        when terminal_runs = 0 then 'never_run'
        when last_outcome = 'failed' then 'broken'
        when last_outcome = 'partial' then 'degraded'
        when staleness_s > late_after_s then 'late'
        else 'healthy'
    end as health,
    case
        when deleted_at is not null then 'deleted from Polytomic'
        when active = false then 'paused (active = false)'
        when terminal_runs = 0 and executions = 0 then 'no executions loaded'
        when terminal_runs = 0 then 'no finished run yet: '
            || cast(in_flight_runs as varchar) || ' in flight, '
            || cast(canceled_runs as varchar) || ' canceled'
        when last_outcome = 'failed' then 'latest run ' || last_terminal_status
            || ' (' || cast(failure_streak as varchar) || ' failure(s) in a row)'
            || coalesce(': ' || left(last_terminal_message, 120), '')
        when last_outcome = 'partial' then 'latest run ' || last_terminal_status || ': '
            || cast(last_failed_schemas as varchar) || ' failed schema(s), '
            || cast(last_errors as varchar) || ' error(s)'
        when lateness_ratio is null then 'latest run succeeded; lateness not judged (frequency '
            || coalesce(frequency, 'unknown') || ')'
        else 'last success '
            || cast(cast(staleness_s / 3600.0 as numeric(12, 1)) as varchar) || ' h ago, '
            || cast(cast(lateness_ratio as numeric(12, 2)) as varchar) || 'x the '
            || frequency || ' interval'
            || case when lateness_ratio >= 1 and staleness_s <= late_after_s
                then ', within the '
                    || cast(cast(late_grace_s / 60.0 as numeric(12, 1)) as varchar)
                    || ' min grace'
                else ''
            end
    end as health_reason,
    frequency,
    expected_interval_s,
    last_status,
    last_run_at,
    last_outcome,
    last_terminal_at,
    last_success_at,
    staleness_s,
    lateness_ratio,
    late_grace_s,
    late_after_s,
    runs_24h,
    success_rate_24h,
    partial_rate_24h,
    failed_rate_24h,
    runs_7d,
    success_rate_7d,
    partial_rate_7d,
    failed_rate_7d,
    runs_30d,
    success_rate_30d,
    partial_rate_30d,
    failed_rate_30d,
    p50_duration_s,
    p95_duration_s,
    max_duration_s,
    failure_streak,
    in_flight_runs,
    executions,
    now_ts as evaluated_at
from judged
