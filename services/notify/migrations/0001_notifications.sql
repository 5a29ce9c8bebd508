-- In-console notifications for staff: stored, read/unread, shown in the console inbox.
CREATE TABLE console_notifications (
    id           bigserial PRIMARY KEY,
    event_source text NOT NULL,
    event_id     text NOT NULL,
    recipient_id text NOT NULL,
    station      text,
    kind         text NOT NULL,
    tracking_no  text,
    title        text NOT NULL,
    body         text NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    read_at      timestamptz,
    UNIQUE (event_source, event_id, recipient_id)
);
CREATE INDEX console_notifications_inbox ON console_notifications (recipient_id, created_at DESC);

-- Outgoing messages on external channels (SMS, e-mail, webhook): at most one per
-- (event, recipient, channel). The channel adapters that send them come with the notify issue.
CREATE TABLE deliveries (
    id           bigserial PRIMARY KEY,
    event_source text NOT NULL,
    event_id     text NOT NULL,
    recipient    text NOT NULL,
    channel      text NOT NULL,
    template     text NOT NULL,
    tracking_no  text,
    station      text,
    body         text NOT NULL,
    status       text NOT NULL DEFAULT 'pending',
    attempts     integer NOT NULL DEFAULT 0,
    created_at   timestamptz NOT NULL DEFAULT now(),
    UNIQUE (event_source, event_id, recipient, channel)
);
CREATE INDEX deliveries_pending ON deliveries (created_at) WHERE status = 'pending';
