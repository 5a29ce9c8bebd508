-- Staff who want urgent matters by SMS as well as in the console (a leader off duty, an officer
-- on patrol). The phone is sealed like citizens' contacts; only notify holds it.
CREATE TABLE staff_contacts (
    staff_id   text PRIMARY KEY,
    phone_kid  text NOT NULL,
    phone_enc  bytea NOT NULL,
    updated_by text NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);
