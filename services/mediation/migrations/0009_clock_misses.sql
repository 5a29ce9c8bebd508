-- A miss stays a miss across restarts: reassign, transfer and reopen start a clock again (a new
-- deadline, breached_at cleared so the timer can fire for it), and the earliest miss of any
-- earlier run of the clock is kept here. The station rates count a clock as missed when either
-- is set.
ALTER TABLE case_clocks ADD COLUMN missed_before_at timestamptz;
