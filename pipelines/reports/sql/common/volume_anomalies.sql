-- volume_anomalies: one row per evaluated run, at two levels:
--   level 'execution' (schema is null): successful executions (outcome success);
--   level 'schema': completed schema runs (schema_outcome success).
--   Resync executions (is_resync) are left out as both subject and baseline: they reload
--   everything, so their volume says nothing about the incremental volume.
--   baseline = the last 8 earlier evaluated runs of the same sync (and schema) on the same
--   UTC weekday, excluding the run itself; baseline_median = their median record_count,
--   baseline_mad = median(|x - baseline_median|) over the same runs.  At execution level
--   the baseline runs also synced the same set of schemas (execution_outcomes.schema_set):
--   a run that syncs a subset of the tables moves fewer records by design, and its tables
--   are judged one by one at schema level.
--   pct_change = (record_count - baseline_median) / baseline_median.
--   robust_z = |record_count - baseline_median| / (1.4826 * baseline_mad); null when mad = 0.
--   The thresholds are report_settings':
--   outside_band: record_count outside baseline_median +/- volume_band_pct (30) percent.
--   zero_after_nonzero: record_count = 0 while baseline_median > 0.
--   is_anomaly needs baseline_runs >= volume_min_baseline_runs (4), then: (outside_band and
--   (robust_z > volume_min_z (3.5) or mad = 0, i.e. an unbounded z)) or zero_after_nonzero.
--   How: Postgres' percentile_cont cannot be used over a window, and a self-join (LATERAL or
--   not) on the run's position against this unindexed view is misplanned into a quadratic
--   loop on Postgres.  So lag() collects the 8 previous values into each run's row, they are
--   unpivoted into (run_key, x) pairs, and plain grouped percentile_cont gives the medians.
create or replace view {dataset}.volume_anomalies as
with runs as (
    select
        'execution' as level,
        bulk_sync_id,
        execution_id,
        cast(null as varchar) as "schema",
        coalesce(schema_set, '') as schema_key,
        run_at,
        record_count
    from {dataset}.execution_outcomes
    where outcome = 'success' and record_count is not null and not is_resync
    union all
    select
        'schema' as level,
        bulk_sync_id,
        execution_id,
        "schema",
        "schema" as schema_key,
        run_at,
        record_count
    from {dataset}.schema_outcomes
    where schema_outcome = 'success' and record_count is not null and not is_resync
),
weekdays as (
    select r.*, cast(extract(dow from r.run_at at time zone 'UTC') as integer) as weekday
    from runs as r
),
lagged as (
    select
        w.*,
        row_number() over (order by level, execution_id, schema_key) as run_key,
        lag(record_count, 1) over prior as x1,
        lag(record_count, 2) over prior as x2,
        lag(record_count, 3) over prior as x3,
        lag(record_count, 4) over prior as x4,
        lag(record_count, 5) over prior as x5,
        lag(record_count, 6) over prior as x6,
        lag(record_count, 7) over prior as x7,
        lag(record_count, 8) over prior as x8
    from weekdays as w
    window prior as (
        partition by level, bulk_sync_id, schema_key, weekday order by run_at, execution_id
    )
),
back as (
    select back from (values (1), (2), (3), (4), (5), (6), (7), (8)) as o(back)
),
pairs as (
    select
        l.run_key,
        cast(case o.back
            when 1 then l.x1 when 2 then l.x2 when 3 then l.x3 when 4 then l.x4
            when 5 then l.x5 when 6 then l.x6 when 7 then l.x7 when 8 then l.x8
        end as double precision) as x
    from lagged as l
    cross join back as o
),
med as (
    select
        run_key,
        percentile_cont(0.5) within group (order by x) as baseline_median,
        count(x) as baseline_runs
    from pairs
    group by run_key
),
deviations as (
    select p.run_key, abs(p.x - m.baseline_median) as dev
    from pairs as p
    join med as m on m.run_key = p.run_key
),
mad as (
    select run_key, percentile_cont(0.5) within group (order by dev) as baseline_mad
    from deviations
    group by run_key
),
scored as (
    select
        l.level, l.bulk_sync_id, l.execution_id, l."schema", l.run_at, l.weekday,
        l.record_count, m.baseline_runs, m.baseline_median, d.baseline_mad
    from lagged as l
    join med as m on m.run_key = l.run_key
    join mad as d on d.run_key = l.run_key
),
flagged as (
    select
        sc.*,
        st.volume_min_z,
        st.volume_min_baseline_runs,
        (sc.record_count - sc.baseline_median) / nullif(sc.baseline_median, 0) as pct_change,
        case when sc.baseline_mad > 0
            then abs(sc.record_count - sc.baseline_median) / (1.4826 * sc.baseline_mad)
        end as robust_z,
        coalesce(
            sc.record_count < (1 - st.volume_band_pct / 100) * sc.baseline_median
            or sc.record_count > (1 + st.volume_band_pct / 100) * sc.baseline_median,
            false
        ) as outside_band,
        coalesce(sc.record_count = 0 and sc.baseline_median > 0, false) as zero_after_nonzero
    from scored as sc
    cross join {dataset}.report_settings as st
)
select
    f.level,
    f.bulk_sync_id,
    s.name,
    f.execution_id,
    f."schema",
    f.run_at,
    f.weekday,
    f.record_count,
    f.baseline_median,
    f.baseline_mad,
    f.baseline_runs,
    f.pct_change,
    f.robust_z,
    f.outside_band,
    f.zero_after_nonzero,
    f.baseline_runs >= f.volume_min_baseline_runs and (
        (f.outside_band and (f.baseline_mad = 0 or f.robust_z > f.volume_min_z))
        or f.zero_after_nonzero
    ) as is_anomaly
from flagged as f
left join {dataset}.bulk_syncs as s on s.id = f.bulk_sync_id
