-- A station's duty hours for the acceptance clock ("within 1 hour on duty"). No row: around the
-- clock. Urgent items are always counted in wall-clock time (someone is on duty now).
CREATE TABLE station_duty_hours (
    station text PRIMARY KEY,
    starts  time NOT NULL,
    ends    time NOT NULL,
    CHECK (starts < ends)
);
GRANT SELECT ON station_duty_hours TO fengqiao_staff_api;
