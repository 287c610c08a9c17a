-- flapping: one row per sync.  Over the sync's last report_settings.flapping_window_runs
--   (20) terminal runs (success, partial, failed; canceled, in-flight and unknown are
--   skipped) ordered by run_at, flips counts the consecutive pairs whose outcomes differ
--   (success -> partial is a flip too).
--   flip_rate = flips / (terminal_runs - 1), null below 2 runs.
--   flapping = flips >= report_settings.flapping_min_flips (6): three separate failure
--   episodes in the window; two isolated failures (4 flips) are not flapping.
--   sequence spells the window oldest first: S = success, P = partial, F = failed.
create or replace view {dataset}.flapping as
with t as (
    select
        bulk_sync_id,
        execution_id,
        outcome,
        run_at,
        row_number() over (
            partition by bulk_sync_id order by run_at desc, execution_id desc
        ) as rn
    from {dataset}.execution_outcomes
    where is_terminal
),
last20 as (
    select
        t.*,
        lag(outcome) over (partition by bulk_sync_id order by run_at, execution_id) as prev
    from t
    cross join {dataset}.report_settings as st
    where t.rn <= st.flapping_window_runs
)
select
    s.id as bulk_sync_id,
    s.name,
    count(l.execution_id) as terminal_runs,
    count(*) filter (where l.prev is not null and l.prev <> l.outcome) as flips,
    case when count(l.execution_id) > 1 then
        cast(count(*) filter (where l.prev is not null and l.prev <> l.outcome) as double precision)
        / (count(l.execution_id) - 1)
    end as flip_rate,
    count(*) filter (where l.prev is not null and l.prev <> l.outcome)
        >= st.flapping_min_flips as flapping,
    coalesce(string_agg(
        case l.outcome when 'success' then 'S' when 'partial' then 'P' when 'failed' then 'F' end,
        '' order by l.run_at, l.execution_id
    ), '') as sequence
from {dataset}.bulk_syncs as s
cross join {dataset}.report_settings as st
left join last20 as l on l.bulk_sync_id = s.id
group by s.id, s.name, st.flapping_min_flips
