-- recovery: one row per sync (syncs without incidents have incidents = 0), over all loaded
--   history (see incidents for what an incident is).
--   median_ttr_hours / p90_ttr_hours: time to recovery (length_hours) of resolved incidents,
--   percentile_cont with linear interpolation.
--   open_incident_age_hours = now - start of the open incident, if any.
--   mtbi_hours (mean time between incidents) = mean gap between consecutive incident starts
--   = (last start - first start) / (incidents - 1); null with fewer than 2 incidents.
create or replace view {dataset}.recovery as
select
    s.id as bulk_sync_id,
    s.name,
    count(i.bulk_sync_id) as incidents,
    count(*) filter (where i.state = 'resolved') as resolved_incidents,
    percentile_cont(0.5) within group (order by i.length_hours) filter (
        where i.state = 'resolved'
    ) as median_ttr_hours,
    percentile_cont(0.9) within group (order by i.length_hours) filter (
        where i.state = 'resolved'
    ) as p90_ttr_hours,
    max(i.length_hours) filter (where i.state = 'open') as open_incident_age_hours,
    cast(extract(epoch from (
        (max(i.started_at) at time zone 'UTC') - (min(i.started_at) at time zone 'UTC')
    )) as double precision) / 3600.0 / nullif(count(i.bulk_sync_id) - 1, 0) as mtbi_hours
from {dataset}.bulk_syncs as s
left join {dataset}.incidents as i on i.bulk_sync_id = s.id
group by s.id, s.name
