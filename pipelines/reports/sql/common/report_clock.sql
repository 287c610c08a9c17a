-- report_clock: the single source of "now" for every reporting view.
--   now_ts = current_timestamp, unless views were created with a pinned clock
--            (views.create_views(..., now=...)), which makes reports reproducible and lets
--            tests build histories relative to a fixed instant.
create or replace view {dataset}.report_clock as
select {now_expr} as now_ts
