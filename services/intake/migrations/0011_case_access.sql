-- Who may not open an item (issue 13): staff named in a complaint (triage finds them) and staff the
-- station's leader kept out, from the internal case-access topic. Until triage has said who an
-- item names, `access_settled` is false and the station's staff do not open it (items stored
-- before this migration are settled: nobody is known to be named in them).
CREATE TABLE access_exclusions (
    tracking_no text NOT NULL,
    staff_id    text NOT NULL,
    origin      text NOT NULL CHECK (origin IN ('triage', 'leader')),
    added_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tracking_no, staff_id)
);
ALTER TABLE submissions ADD COLUMN access_settled boolean NOT NULL DEFAULT true;
ALTER TABLE submissions ALTER COLUMN access_settled SET DEFAULT false;

-- The disclosure log becomes the station's audit of personal data: what was done (a reveal with
-- its reason, a scan viewed, a refusal), at which station. Rows before this migration were the
-- reporter block shown in the staff view.
ALTER TABLE personal_data_access
    ADD COLUMN action  text NOT NULL DEFAULT 'view_reporter',
    ADD COLUMN reason  text,
    ADD COLUMN station text;
ALTER TABLE personal_data_access ALTER COLUMN action DROP DEFAULT;
UPDATE personal_data_access a SET station = s.station FROM submissions s WHERE s.tracking_no = a.tracking_no;
CREATE INDEX personal_data_access_station ON personal_data_access (station, at DESC);
