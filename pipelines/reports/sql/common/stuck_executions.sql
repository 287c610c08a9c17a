-- stuck_executions: in-flight executions (created, scheduled, running, exporting, processing,
--   canceling) that have been going too long.
--   Executions deleted upstream (deleted_at set) are not in execution_outcomes, so never here.
--   running_s = now - run_at (started_at, or created_at for runs that have not started yet,
--   which are therefore stuck in the queue rather than running; see started).
--   median_duration_s / p95_duration_s = the sync's median / p95 duration over runs that
--   completed (success or partial) in the last 30 days (720 hours, up to now), as
--   sync_health.p50_duration_s / p95_duration_s; history_runs counts those runs.
--   threshold_s (the settings are report_settings'):
--     canceling: max(stuck_canceling_minutes (30) * 60, p95, or 0 without history) (basis
--       'canceling'): a cancel ends a run, so it takes no longer than the run would have;
--       the API does not say when the cancel was asked for, so this too counts from run_at;
--     others with history: max(stuck_p95_multiple (3) * p95, stuck_min_minutes (30) * 60)
--       (basis 'history');
--     others without: stuck_no_history_hours (6) * 3600 (basis 'fixed').
--   Only executions with running_s > threshold_s are listed.
create or replace view {dataset}.stuck_executions as
with settings as (
    select
        stuck_p95_multiple,
        stuck_min_minutes * 60 as min_threshold_s,
        stuck_no_history_hours * 3600 as fixed_threshold_s,
        stuck_canceling_minutes * 60 as canceling_threshold_s
    from {dataset}.report_settings
),
clock as (
    select now_ts from {dataset}.report_clock
),
history as (
    select
        o.bulk_sync_id,
        percentile_cont(0.5) within group (order by o.duration_s) as median_duration_s,
        percentile_cont(0.95) within group (order by o.duration_s) as p95_duration_s,
        count(*) as history_runs
    from {dataset}.execution_outcomes as o
    cross join clock as c
    where o.outcome in ('success', 'partial')
        and o.duration_s is not null
        and o.run_at >= c.now_ts - interval '720 hours'
        and o.run_at <= c.now_ts
        and o.ended_at <= c.now_ts
    group by o.bulk_sync_id
),
flight as (
    select
        o.*,
        cast(extract(epoch from (
            (c.now_ts at time zone 'UTC') - (o.run_at at time zone 'UTC')
        )) as double precision) as running_s,
        h.median_duration_s,
        h.p95_duration_s,
        coalesce(h.history_runs, 0) as history_runs,
        case
            when o.status = 'canceling'
                then greatest(st.canceling_threshold_s, coalesce(h.p95_duration_s, 0))
            when h.p95_duration_s is null then st.fixed_threshold_s
            else greatest(st.stuck_p95_multiple * h.p95_duration_s, st.min_threshold_s)
        end as threshold_s,
        case
            when o.status = 'canceling' then 'canceling'
            when h.p95_duration_s is null then 'fixed'
            else 'history'
        end as threshold_basis
    from {dataset}.execution_outcomes as o
    cross join clock as c
    cross join settings as st
    left join history as h on h.bulk_sync_id = o.bulk_sync_id
    where o.outcome = 'in_flight'
)
select
    f.execution_id,
    f.bulk_sync_id,
    s.name,
    f.status,
    f.created_at,
    f.started_at,
    f.started_at is not null as started,
    f.running_s,
    f.median_duration_s,
    f.p95_duration_s,
    f.history_runs,
    f.threshold_s,
    f.threshold_basis,
    f.running_s - f.threshold_s as exceeded_by_s
from flight as f
left join {dataset}.bulk_syncs as s on s.id = f.bulk_sync_id
where f.running_s > f.threshold_s
