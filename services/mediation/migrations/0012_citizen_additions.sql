-- Waiting for the citizen (issue 13): from the officer's request for information until the
-- citizen's answer (or the officer resumes it) the resolution clock is suspended: it neither reminds
-- nor breaches, and when it resumes its deadlines move by the time waited (`suspended_seconds` sums
-- the waits of the clock's current run). A miss before the wait stays a miss (breached_at is kept).
ALTER TABLE case_clocks
    ADD COLUMN suspended_at      timestamptz,
    ADD COLUMN suspended_seconds double precision NOT NULL DEFAULT 0;

-- What the citizen added to the case (tracking page, e-mail reply, follow-up call), from intake's
-- internal citizen-additions topic. The text is sealed (AES-GCM, bound to `<tracking no>/addition/
-- <event id>`). An addition may arrive before the case exists (the item not yet assigned): it is
-- kept and shown with the case once there is one.
CREATE TABLE citizen_additions (
    id              bigserial PRIMARY KEY,
    tracking_no     text NOT NULL,
    station         text NOT NULL,
    channel         text NOT NULL CHECK (channel IN ('web', 'mailbox', 'hotline')),
    answers_request boolean NOT NULL,
    event_id        text NOT NULL UNIQUE,
    pii_kid         text NOT NULL,
    text_enc        bytea NOT NULL,
    added_at        timestamptz NOT NULL
);
CREATE INDEX citizen_additions_case ON citizen_additions (tracking_no, added_at);

GRANT SELECT ON citizen_additions TO fengqiao_staff_api;
ALTER TABLE citizen_additions ENABLE ROW LEVEL SECURITY;
-- Visible when the case is (the subquery is itself filtered: station and confidentiality).
CREATE POLICY case_scope ON citizen_additions TO fengqiao_staff_api
    USING (EXISTS (SELECT 1 FROM cases c WHERE c.tracking_no = citizen_additions.tracking_no));
