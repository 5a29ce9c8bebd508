-- Submissions: one row per item a citizen or another system gave us, whatever the channel.
CREATE TABLE submissions (
    tracking_no      text PRIMARY KEY,
    station          text NOT NULL,
    channel          text NOT NULL,
    title            text,
    content          text NOT NULL,
    reporter         jsonb NOT NULL DEFAULT '{}'::jsonb,
    location         jsonb NOT NULL DEFAULT '{}'::jsonb,
    external_ref     text,
    ingress_source   text,
    ingress_id       text,
    access_code_hash text NOT NULL,
    status           text NOT NULL DEFAULT 'received',
    type             text,
    category         text,
    urgency          text,
    assignee_id      text,
    submitted_at     timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    UNIQUE (ingress_source, ingress_id)
);
CREATE INDEX submissions_station ON submissions (station, submitted_at DESC);

-- What the citizen sees on the tracking page, oldest first.
CREATE TABLE timeline (
    id          bigserial PRIMARY KEY,
    tracking_no text NOT NULL REFERENCES submissions (tracking_no),
    at          timestamptz NOT NULL,
    status      text NOT NULL,
    note        text,
    event_id    text,
    UNIQUE (tracking_no, event_id)
);
CREATE INDEX timeline_tracking_no ON timeline (tracking_no, at);

-- Idempotency-Key replays: the same key returns the same answer and creates nothing new.
CREATE TABLE idempotency_keys (
    scope        text NOT NULL,
    key          text NOT NULL,
    request_hash text NOT NULL,
    response     jsonb NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (scope, key)
);
