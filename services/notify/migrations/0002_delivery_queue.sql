-- The delivery queue of the notify issue: contacts and message text sealed at rest (the payload:
-- recipient address, subject, body), one row per (event, recipient, channel) keyed by a blind
-- index of the address (or the webhook subscription id), retries with backoff, holds for quiet
-- hours and rate limits, failures kept for a manual resend.
ALTER TABLE deliveries
    ADD COLUMN recipient_key   text,
    ADD COLUMN audience        text NOT NULL DEFAULT 'citizen',   -- citizen | staff | subscriber
    ADD COLUMN payload_kid     text,
    ADD COLUMN payload_enc     bytea,
    ADD COLUMN urgent          boolean NOT NULL DEFAULT false,
    ADD COLUMN next_attempt_at timestamptz NOT NULL DEFAULT now(),
    ADD COLUMN lease_until     timestamptz,
    ADD COLUMN held_reason     text,                               -- quiet_hours | rate_limited
    ADD COLUMN last_error      text,
    ADD COLUMN sent_at         timestamptz,
    ADD COLUMN failed_at       timestamptz,
    ADD COLUMN resends         integer NOT NULL DEFAULT 0,
    ADD COLUMN resent_by       text,
    ALTER COLUMN recipient DROP NOT NULL,
    ALTER COLUMN body DROP NOT NULL;
-- status: pending (due at next_attempt_at) | deferred (held) | sending (leased) | sent | failed
ALTER TABLE deliveries DROP CONSTRAINT deliveries_event_source_event_id_recipient_channel_key;
-- Rows from before this migration keep their plaintext recipient until notify seals them at start.
CREATE UNIQUE INDEX deliveries_once ON deliveries (event_source, event_id, recipient_key, channel);
DROP INDEX deliveries_pending;
CREATE INDEX deliveries_due ON deliveries (channel, next_attempt_at) WHERE status IN ('pending', 'deferred', 'sending');
CREATE INDEX deliveries_recent ON deliveries (recipient_key, channel, sent_at) WHERE sent_at IS NOT NULL;
CREATE INDEX deliveries_failed ON deliveries (station, failed_at DESC) WHERE status = 'failed';

-- Other bureau systems subscribe to public case events per event type and station; bodies are
-- signed with the subscription's secret (Standard Webhooks: HMAC-SHA256 over id.timestamp.body).
CREATE TABLE webhook_subscriptions (
    id          text PRIMARY KEY,
    name        text NOT NULL,
    url         text NOT NULL,
    event_types text[] NOT NULL,         -- exact types or prefixes ending in '*'
    stations    text[] NOT NULL DEFAULT '{}',  -- empty: every station
    secret_kid  text NOT NULL,
    secret_enc  bytea NOT NULL,
    owner_id    text NOT NULL,           -- the token that created it
    active      boolean NOT NULL DEFAULT true,
    created_at  timestamptz NOT NULL DEFAULT now()
);

-- The urgency of each case as triage saw it: citizen SMS of urgent cases skip quiet hours.
CREATE TABLE case_urgency (
    tracking_no text PRIMARY KEY,
    urgency     text NOT NULL
);

CREATE INDEX console_notifications_unread ON console_notifications (recipient_id) WHERE read_at IS NULL;
