-- incidents: one row per incident.  Over a sync's terminal runs (success, partial, failed;
--   canceled, in-flight and unknown are skipped) ordered by run_at, an incident starts at a
--   failed run that follows a success (or opens the history) and lasts until the next success,
--   which ends it.  Partial runs neither start nor end an incident; those inside one count in
--   length_runs (failed_runs counts the failures only).
--   started_at = ended_at (completed_at, else updated_at) of the first failed run;
--   ended_at   = ended_at of the recovering success (null while open);
--   length_hours = (ended_at, or now for an open incident) - started_at, in hours.
--   state = 'open' (no success yet) or 'resolved'.
create or replace view {dataset}.incidents as
with clock as (
    select now_ts from {dataset}.report_clock
),
t as (
    select
        bulk_sync_id,
        execution_id,
        outcome,
        status_message,
        ended_at,
        row_number() over (
            partition by bulk_sync_id order by run_at, execution_id
        ) as rn,
        sum(case when outcome = 'success' then 1 else 0 end) over (
            partition by bulk_sync_id order by run_at, execution_id
            rows between unbounded preceding and current row
        ) as grp
    from {dataset}.execution_outcomes
    where is_terminal
),
spans as (
    select
        bulk_sync_id,
        grp,
        min(rn) filter (where outcome = 'failed') as first_rn,
        max(rn) as last_rn,
        count(*) filter (where outcome = 'failed') as failed_runs
    from t
    group by bulk_sync_id, grp
    having count(*) filter (where outcome = 'failed') > 0
)
select
    sp.bulk_sync_id,
    s.name,
    f.execution_id as first_failed_execution_id,
    f.status_message as first_error_message,
    r.execution_id as recovery_execution_id,
    f.ended_at as started_at,
    r.ended_at as ended_at,
    sp.last_rn - sp.first_rn + 1 as length_runs,
    sp.failed_runs,
    cast(extract(epoch from (
        (coalesce(r.ended_at, c.now_ts) at time zone 'UTC') - (f.ended_at at time zone 'UTC')
    )) as double precision) / 3600.0 as length_hours,
    case when r.execution_id is null then 'open' else 'resolved' end as state
from spans as sp
cross join clock as c
join t as f on f.bulk_sync_id = sp.bulk_sync_id and f.rn = sp.first_rn
left join t as r on r.bulk_sync_id = sp.bulk_sync_id and r.rn = sp.last_rn + 1
left join {dataset}.bulk_syncs as s on s.id = sp.bulk_sync_id
