-- schema_outcomes: one row per schema (table) of an execution in execution_outcomes (so not
--   of test executions, nor of executions deleted upstream).  Tombstone rows (_tombstone =
--   true: the loader's marker that deletes an execution's old schema rows) are left out.
--   schema_outcome: 'completed' -> success; 'failed' or 'interrupted' -> failed;
--   'canceled' -> canceled; created/scheduled/running/exporting/processing -> in_flight;
--   anything else -> unknown.  execution_outcome is the parent's outcome (execution_outcomes);
--   run_at / run_day / execution_ended_at are the parent's run_at / run_day / ended_at, so
--   schema runs are ordered, dated and windowed like executions.
create or replace view {dataset}.schema_outcomes as
select
    s.execution_id,
    e.bulk_sync_id,
    s."schema",
    s.output_name,
    s.status,
    s.status_message,
    case
        when s.status = 'completed' then 'success'
        when s.status in ('failed', 'interrupted') then 'failed'
        when s.status = 'canceled' then 'canceled'
        when s.status in ('created', 'scheduled', 'running', 'exporting', 'processing')
            then 'in_flight'
        else 'unknown'
    end as schema_outcome,
    e.status as execution_status,
    e.outcome as execution_outcome,
    e.is_resync,
    s.record_count,
    s.error_count,
    s.warning_count,
    s.started_at,
    s.completed_at,
    e.run_at,
    e.run_day,
    e.ended_at as execution_ended_at
from {dataset}.bulk_sync_executions__schemas as s
join {dataset}.execution_outcomes as e on e.execution_id = s.execution_id
where not coalesce(s._tombstone, false)
