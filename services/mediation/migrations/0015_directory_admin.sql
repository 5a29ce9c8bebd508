-- Directory administration (issue 15): stations and staff managed through the API and the
-- `fengqiao station|staff|admin` commands instead of SQL.

-- A badge number (警号) identifies one person across the deployment; `fengqiao staff import`
-- updates by it. Only the owner's copy needs the constraint (the domain checks it first, with a
-- message naming the field; this is the backstop against two concurrent creations).
CREATE UNIQUE INDEX staff_badge_no ON staff (badge_no) WHERE badge_no IS NOT NULL;

-- A staff member's own phone and e-mail for the directory (how the station reaches them), sealed
-- like every other personal datum (FENGQIAO_PII_KEYS, context staff/<id>/contact). Mediation owns
-- them; they never travel in a directory event. Notify's staff_contacts stays the person's own
-- choice of a number for urgent SMS alerts.
CREATE TABLE staff_contacts (
    staff_id    text PRIMARY KEY REFERENCES staff (staff_id),
    contact_kid text NOT NULL,
    contact_enc bytea NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now()
);

-- Who changed what in the directory, when. Personal data (phone, e-mail, passwords) is never
-- written here, only that it changed.
CREATE TABLE directory_audit (
    id        bigserial PRIMARY KEY,
    at        timestamptz NOT NULL DEFAULT now(),
    actor     text NOT NULL,        -- staff id, or token id / "cli" for the command line
    role      text NOT NULL,
    station   text,                 -- the station the change concerns (null: deployment-wide)
    action    text NOT NULL,        -- station_created, station_changed, staff_created, ...
    target    text NOT NULL,        -- station code or staff id
    detail    jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX directory_audit_station ON directory_audit (station, at);
