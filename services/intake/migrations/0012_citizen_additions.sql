-- What the citizen added to an open item (issue 13): the answer to a request for information from
-- the tracking page or by e-mail reply, and follow-up calls. The text is the citizen's own (or the
-- operator's summary of the call) and is stored sealed (AES-GCM, bound to `<tracking no>/addition/
-- <channel>/<source key>`). `source_key` makes each addition happen once: the form token, the keyed hash
-- of the e-mail's Message-ID, the call id.
CREATE TABLE citizen_additions (
    id          bigserial PRIMARY KEY,
    tracking_no text NOT NULL REFERENCES submissions (tracking_no),
    channel     text NOT NULL CHECK (channel IN ('web', 'mailbox', 'hotline')),
    source_key  text NOT NULL,
    pii_kid     text NOT NULL,
    text_enc    bytea NOT NULL,
    added_at    timestamptz NOT NULL DEFAULT now(),
    UNIQUE (channel, source_key)
);
CREATE INDEX citizen_additions_item ON citizen_additions (tracking_no, added_at);

-- A request for information is pending from the officer's request until the citizen's answer.
ALTER TABLE submissions
    ADD COLUMN info_requested_at timestamptz,
    ADD COLUMN info_answered_at  timestamptz;

-- A follow-up call added to an open item rather than filed as a new one.
ALTER TABLE hotline_calls ADD COLUMN added_to_item boolean NOT NULL DEFAULT false;
