-- Duty rosters from a pattern (issue 15): a station's weekly pattern and optional holiday pattern
-- (shifts of the days off the working-day calendar names), exceptions (leave, swaps, extra duty),
-- and what was last published for each day, so a day is published again only when it changes.
-- The concrete days stay in `roster` (the directory table every service copies).
CREATE TABLE roster_patterns (
    station  text NOT NULL,
    pattern  text NOT NULL CHECK (pattern IN ('weekly', 'holiday')),
    weekday  smallint CHECK (weekday BETWEEN 1 AND 7),  -- ISO weekday; NULL in the holiday pattern
    staff_id text NOT NULL,
    starts   time NOT NULL,
    ends     time NOT NULL,  -- not after starts: runs past midnight
    CHECK (starts <> ends),
    CHECK ((pattern = 'weekly') = (weekday IS NOT NULL))
);
CREATE INDEX roster_patterns_station ON roster_patterns (station);

CREATE TABLE roster_exceptions (
    id          bigserial PRIMARY KEY,
    station     text NOT NULL,
    kind        text NOT NULL CHECK (kind IN ('leave', 'swap', 'extra')),
    staff_id    text NOT NULL,
    to_staff_id text,          -- swap: who takes the shifts
    day_from    date NOT NULL,
    day_to      date NOT NULL,
    starts      time,          -- extra duty
    ends        time,
    reason      text,
    created_by  text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    CHECK (day_from <= day_to),
    CHECK ((kind = 'swap') = (to_staff_id IS NOT NULL)),
    CHECK ((kind = 'extra') = (starts IS NOT NULL AND ends IS NOT NULL))
);
CREATE INDEX roster_exceptions_station ON roster_exceptions (station, day_to);

CREATE TABLE roster_days (
    station      text NOT NULL,
    day          date NOT NULL,
    content_hash text NOT NULL,
    published_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (station, day)
);

-- Staff requests (leaders, admins) change these as fengqiao_staff_api, within their station.
GRANT SELECT, INSERT, DELETE ON roster_patterns, roster_exceptions TO fengqiao_staff_api;
GRANT SELECT, INSERT, UPDATE ON roster_days TO fengqiao_staff_api;
GRANT INSERT, DELETE ON roster TO fengqiao_staff_api;
GRANT USAGE ON SEQUENCE roster_exceptions_id_seq TO fengqiao_staff_api;
ALTER TABLE roster_patterns ENABLE ROW LEVEL SECURITY;
ALTER TABLE roster_exceptions ENABLE ROW LEVEL SECURITY;
ALTER TABLE roster_days ENABLE ROW LEVEL SECURITY;
ALTER TABLE roster ENABLE ROW LEVEL SECURITY;
CREATE POLICY station_scope ON roster_patterns TO fengqiao_staff_api
    USING (current_setting('fengqiao.station', true) IN ('*', station));
CREATE POLICY station_scope ON roster_exceptions TO fengqiao_staff_api
    USING (current_setting('fengqiao.station', true) IN ('*', station));
CREATE POLICY station_scope ON roster_days TO fengqiao_staff_api
    USING (current_setting('fengqiao.station', true) IN ('*', station));
CREATE POLICY station_scope ON roster TO fengqiao_staff_api
    USING (current_setting('fengqiao.station', true) IN ('*', station));
