-- Who may open a case (issue 13).
-- Staff named in a complaint (from triage) and staff the station's leader kept out of a case (with
-- the reason) do not see it: row-level security hides it from them as from another station.
CREATE TABLE case_exclusions (
    tracking_no text NOT NULL,
    staff_id    text NOT NULL,
    station     text NOT NULL,
    origin      text NOT NULL CHECK (origin IN ('triage', 'leader')),
    reason      text,
    added_by    text,
    added_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tracking_no, staff_id)
);
-- Triage has said who the item names (its case-access event travels on another topic than the
-- assignment and may come second): until then the station's staff do not see the case. Cases
-- from before this migration are settled.
CREATE TABLE case_access (
    tracking_no text PRIMARY KEY,
    settled_at  timestamptz NOT NULL DEFAULT now()
);
INSERT INTO case_access (tracking_no) SELECT tracking_no FROM cases;

-- What the citizen wrote (title, content, place), sealed with the personal-data keys and bound to
-- `<no>/words`, from intake's triage request; shown masked in the case detail.
CREATE TABLE case_files (
    tracking_no text PRIMARY KEY,
    station     text NOT NULL,
    channel     text NOT NULL,
    pii_kid     text NOT NULL,
    words_enc   bytea NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now()
);
ALTER TABLE cases ADD COLUMN channel text;
CREATE INDEX cases_station_channel ON cases (station, channel);

GRANT SELECT, INSERT, UPDATE, DELETE ON case_exclusions TO fengqiao_staff_api;
GRANT SELECT ON case_access, case_files TO fengqiao_staff_api;
ALTER TABLE case_exclusions ENABLE ROW LEVEL SECURITY;
ALTER TABLE case_files ENABLE ROW LEVEL SECURITY;
CREATE POLICY station_scope ON case_exclusions TO fengqiao_staff_api
    USING (current_setting('fengqiao.station', true) IN ('*', station));
CREATE POLICY case_scope ON case_files TO fengqiao_staff_api
    USING (EXISTS (SELECT 1 FROM cases c WHERE c.tracking_no = case_files.tracking_no));

DROP POLICY station_scope ON cases;
CREATE POLICY station_scope ON cases TO fengqiao_staff_api
    USING (current_setting('fengqiao.station', true) IN ('*', station)
           AND (NOT confidential OR current_setting('fengqiao.confidential', true) = 'on')
           AND (current_setting('fengqiao.station', true) = '*'
                OR EXISTS (SELECT 1 FROM case_access a WHERE a.tracking_no = cases.tracking_no))
           AND NOT EXISTS (SELECT 1 FROM case_exclusions e WHERE e.tracking_no = cases.tracking_no
                           AND e.staff_id = current_setting('fengqiao.staff', true)));
