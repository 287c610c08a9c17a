-- report_settings: the thresholds every view applies, one row; the single place they live.
--   Written with the views from the [reports] config section (pipelines/reports/settings.py;
--   env REPORTS__<NAME>), so a changed setting takes effect on the next `run` or `views`.
--   late_grace_minutes       (15)  late: staleness > interval + max(this, p95 duration)
--   flapping_min_flips       (6)   flapping: flips >= this in the window (6 = 3 episodes)
--   flapping_window_runs     (20)  flapping: the sync's latest terminal runs looked at
--   stuck_p95_multiple       (3)   stuck: in flight > max(this x p95, stuck_min_minutes)
--   stuck_min_minutes        (30)  stuck: the least threshold a history gives
--   stuck_no_history_hours   (6)   stuck: threshold without a completed run in 30 days
--   stuck_canceling_minutes  (30)  stuck: a canceling run, in flight > max(this, p95)
--   volume_band_pct          (30)  volume: outside baseline median +/- this percent
--   volume_min_z             (3.5) volume: and robust z above this (or MAD = 0)
--   volume_min_baseline_runs (4)   volume: baseline runs needed before a run is judged
create or replace view {dataset}.report_settings as
select
    cast({late_grace_minutes} as double precision) as late_grace_minutes,
    cast({flapping_min_flips} as integer) as flapping_min_flips,
    cast({flapping_window_runs} as integer) as flapping_window_runs,
    cast({stuck_p95_multiple} as double precision) as stuck_p95_multiple,
    cast({stuck_min_minutes} as double precision) as stuck_min_minutes,
    cast({stuck_no_history_hours} as double precision) as stuck_no_history_hours,
    cast({stuck_canceling_minutes} as double precision) as stuck_canceling_minutes,
    cast({volume_band_pct} as double precision) as volume_band_pct,
    cast({volume_min_z} as double precision) as volume_min_z,
    cast({volume_min_baseline_runs} as integer) as volume_min_baseline_runs
