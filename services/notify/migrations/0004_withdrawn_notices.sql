-- Console notices about a case that was taken from their reader (reassigned to someone else,
-- transferred, merged, closed) are marked withdrawn, with the reason, so nobody works a case that
-- is no longer theirs. `event_time` is when the step a notice is about happened; a withdrawal
-- covers the notices of that reader and case about earlier steps, also those that arrive later
-- (topics are not ordered with each other).
ALTER TABLE console_notifications
    ADD COLUMN event_time       timestamptz,
    ADD COLUMN withdrawn_at     timestamptz,
    ADD COLUMN withdrawn_reason text;

CREATE TABLE case_withdrawals (
    tracking_no  text NOT NULL,
    recipient_id text NOT NULL,
    at           timestamptz NOT NULL,
    reason       text NOT NULL,
    PRIMARY KEY (tracking_no, recipient_id, at)
);

CREATE INDEX console_notifications_case ON console_notifications (recipient_id, tracking_no)
    WHERE withdrawn_at IS NULL;
