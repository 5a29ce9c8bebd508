-- Hotline calls posted by the call-centre software (CTI). The call id is the idempotency key.
-- The caller's number is stored only encrypted (in the submission) and as a blind index here,
-- which is what links repeated calls from the same number.
CREATE TABLE hotline_calls (
    call_id       text PRIMARY KEY,
    tracking_no   text NOT NULL REFERENCES submissions (tracking_no),
    caller_index  text,
    line          text,
    operator      text,
    started_at    timestamptz NOT NULL,
    ended_at      timestamptz,
    recording_url text,
    created_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX hotline_calls_caller ON hotline_calls (caller_index, started_at DESC) WHERE caller_index IS NOT NULL;

-- Submissions that belong together (the same caller again, later: duplicates and merges).
CREATE TABLE submission_links (
    tracking_no         text NOT NULL REFERENCES submissions (tracking_no),
    related_tracking_no text NOT NULL REFERENCES submissions (tracking_no),
    reason              text NOT NULL,
    created_at          timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tracking_no, related_tracking_no)
);
