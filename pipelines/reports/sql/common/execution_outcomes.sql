-- execution_outcomes: one row per execution, classified once; every other view builds on it.
--   Test executions (is_test = true) are left out, and so are executions deleted upstream
--   (deleted_at set: the loader keeps their rows as history), so no view counts them.
--   Schema tombstones (_tombstone = true, a loader's delete marker) are never schema rows.
--   outcome:
--     success   = status 'completed', no failed schema and error_count = 0 (null counts as 0)
--     partial   = status 'completed' or 'errors' with >= 1 failed schema or error_count > 0;
--                 an 'errors' run with neither is also partial (its status reports errors)
--     failed    = status 'failed' or 'interrupted'
--     canceled  = status 'canceled' (left out of all rates)
--     in_flight = created, scheduled, running, exporting, processing, canceling
--     unknown   = any other (future) status: neither terminal nor in flight, left out of rates
--   A schema has failed when its status is 'failed' or 'interrupted'.
--   schema_set = md5 of the execution's schema names, sorted: equal for runs that synced
--   the same tables (null without schema rows).
--   is_terminal = outcome in (success, partial, failed): the runs that rates, streaks,
--                 incidents and flips are computed over.
--   run_at   = coalesce(started_at, created_at): orders runs; run_day is its UTC date.
--   ended_at = coalesce(completed_at, updated_at, run_at): when the outcome became known.
--   duration_s = completed_at - started_at in seconds; null when either is missing (runs that
--                never finished are never counted as zero).  queue_s = started_at - created_at.
--   Time zones: every difference subtracts the two instants as UTC timestamps, and days are
--   UTC days, so no figure depends on the session's time zone (or its daylight saving).
create or replace view {dataset}.execution_outcomes as
with schema_counts as (
    select
        execution_id,
        count(*) as schemas,
        count(*) filter (where status in ('failed', 'interrupted')) as failed_schemas,
        md5(string_agg("schema", chr(30) order by "schema")) as schema_set
    from {dataset}.bulk_sync_executions__schemas
    where not coalesce(_tombstone, false)
    group by execution_id
),
classified as (
    select
        e.*,
        coalesce(sc.schemas, 0) as schemas,
        coalesce(sc.failed_schemas, 0) as failed_schemas,
        sc.schema_set,
        case
            when e.status = 'completed'
                and coalesce(sc.failed_schemas, 0) = 0
                and coalesce(e.error_count, 0) = 0 then 'success'
            when e.status in ('completed', 'errors') then 'partial'
            when e.status in ('failed', 'interrupted') then 'failed'
            when e.status = 'canceled' then 'canceled'
            when e.status in (
                'created', 'scheduled', 'running', 'exporting', 'processing', 'canceling'
            ) then 'in_flight'
            else 'unknown'
        end as outcome
    from {dataset}.bulk_sync_executions as e
    left join schema_counts as sc on sc.execution_id = e.id
    where not coalesce(e.is_test, false) and e.deleted_at is null
)
select
    id as execution_id,
    bulk_sync_id,
    type,
    status,
    status_message,
    outcome,
    outcome in ('success', 'partial', 'failed') as is_terminal,
    coalesce(is_resync, false) as is_resync,
    record_count,
    error_count,
    warning_count,
    schemas,
    failed_schemas,
    schema_set,
    created_at,
    started_at,
    completed_at,
    updated_at,
    coalesce(started_at, created_at) as run_at,
    cast(coalesce(started_at, created_at) at time zone 'UTC' as date) as run_day,
    coalesce(completed_at, updated_at, started_at, created_at) as ended_at,
    cast(extract(epoch from (
        (completed_at at time zone 'UTC') - (started_at at time zone 'UTC')
    )) as double precision) as duration_s,
    cast(extract(epoch from (
        (started_at at time zone 'UTC') - (created_at at time zone 'UTC')
    )) as double precision) as queue_s,
    version
from classified
