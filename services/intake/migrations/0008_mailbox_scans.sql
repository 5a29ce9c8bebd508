-- The scanned image of a slip or letter, encrypted like other personal data (it may show names,
-- handwriting, addresses).
CREATE TABLE mailbox_scans (
    tracking_no  text PRIMARY KEY REFERENCES mailbox_items (tracking_no),
    content_type text NOT NULL,
    pii_kid      text NOT NULL,
    image_enc    bytea NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now()
);
