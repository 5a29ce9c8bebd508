-- Settled per station (security review of issue 13): triage matches a complaint against the staff
-- of the station that holds it, again when the case is transferred. An item is open to its
-- station's staff only once triage has checked *that* station (`settled_stations`); a transfer
-- moves the item to a station not yet checked, so it is closed to its staff until triage's access
-- event for that station arrives (whichever of the two events intake reads first).
ALTER TABLE submissions ADD COLUMN settled_stations text[] NOT NULL DEFAULT '{}';
UPDATE submissions SET settled_stations = ARRAY[station] WHERE access_settled;
ALTER TABLE submissions DROP COLUMN access_settled;
ALTER TABLE submissions
    ADD COLUMN access_settled boolean GENERATED ALWAYS AS (station = ANY (settled_stations)) STORED;
