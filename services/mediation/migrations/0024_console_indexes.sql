-- Indexes for the console's case lists at a million cases (issue 16, `make bench-console`,
-- docs/benchmarks.md). Only new indexes: no table, grant or row-level security changes.
--
-- The running clocks of a case: every case list computes the running acceptance or resolution
-- deadline (`due_at`, its sort key) and whether a running clock is overdue, per case, with a
-- lookup in case_clocks. Closed cases (most of them) have no running clock; in the primary key
-- (three rows a case) each lookup still reads the big index, here it finds nothing in a small one.
CREATE INDEX case_clocks_running ON case_clocks (tracking_no) INCLUDE (clock, due_at, suspended_at)
    WHERE done_at IS NULL;

-- A station's cases by submission time: the date filters (since/until) and the submitted_at sorts.
CREATE INDEX cases_station_submitted ON cases (station, submitted_at);
