-- schema_health: one row per sync x schema (from schema_outcomes: test executions, deleted
--   executions and tombstone rows are left out).
--   runs_30d / failed_30d: terminal schema runs (success or failed; canceled, in-flight and
--   unknown left out) whose execution is in the last 30 days, i.e. 720 hours: now - 720 h <=
--   run_at, and run_at and the execution's ended_at <= now (future-dated runs are in no
--   window); fail_rate_30d = failed / runs.
--   last_success_at = completed_at (else the execution's run_at) of the latest completed run.
--   median_records_30d = median record_count of completed schema runs in the same window.
--   latest_error_message / latest_error_at: the latest failed schema run, at any time.
--   chronic: among the schema's last 5 runs in executions that completed (execution outcome
--   success or partial), the schema failed in 3 or more.  Failures inside executions that
--   failed as a whole are not the schema's own problem and are left out of this window.
create or replace view {dataset}.schema_health as
with clock as (
    select now_ts from {dataset}.report_clock
),
ranked as (
    select
        so.*,
        c.now_ts,
        row_number() over (
            partition by so.bulk_sync_id, so."schema"
            order by so.run_at desc, so.execution_id desc
        ) as rn_all,
        case when so.execution_outcome in ('success', 'partial') then row_number() over (
            partition by so.bulk_sync_id, so."schema",
                so.execution_outcome in ('success', 'partial')
            order by so.run_at desc, so.execution_id desc
        ) end as rn_completed,
        case when so.schema_outcome = 'failed' then row_number() over (
            partition by so.bulk_sync_id, so."schema", so.schema_outcome = 'failed'
            order by so.run_at desc, so.execution_id desc
        ) end as rn_failed,
        so.run_at >= c.now_ts - interval '720 hours'
            and so.run_at <= c.now_ts
            and so.execution_ended_at <= c.now_ts as in_30d
    from {dataset}.schema_outcomes as so
    cross join clock as c
),
agg as (
    select
        bulk_sync_id,
        "schema",
        count(*) filter (where schema_outcome in ('success', 'failed') and in_30d) as runs_30d,
        count(*) filter (where schema_outcome = 'failed' and in_30d) as failed_30d,
        max(coalesce(completed_at, run_at)) filter (where schema_outcome = 'success')
            as last_success_at,
        percentile_cont(0.5) within group (order by record_count) filter (
            where schema_outcome = 'success' and in_30d
        ) as median_records_30d,
        max(case when rn_failed = 1 then status_message end) as latest_error_message,
        max(case when rn_failed = 1 then coalesce(completed_at, run_at) end)
            as latest_error_at,
        max(case when rn_all = 1 then status end) as latest_status,
        count(*) filter (where rn_completed <= 5) as chronic_window_runs,
        count(*) filter (where rn_completed <= 5 and schema_outcome = 'failed')
            as chronic_failures
    from ranked
    group by bulk_sync_id, "schema"
)
select
    a.bulk_sync_id,
    s.name,
    a."schema",
    a.runs_30d,
    a.failed_30d,
    cast(a.failed_30d as double precision) / nullif(a.runs_30d, 0) as fail_rate_30d,
    a.last_success_at,
    a.median_records_30d,
    a.latest_status,
    a.latest_error_message,
    a.latest_error_at,
    a.chronic_window_runs,
    a.chronic_failures,
    a.chronic_failures >= 3 as chronic
from agg as a
left join {dataset}.bulk_syncs as s on s.id = a.bulk_sync_id
