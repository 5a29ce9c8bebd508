-- Suggestion-box slips and letters: who opened the box, when, and who typed the item in.
CREATE TABLE mailbox_items (
    tracking_no text PRIMARY KEY REFERENCES submissions (tracking_no),
    kind        text NOT NULL CHECK (kind IN ('suggestion_box', 'letter')),
    opened_at   timestamptz NOT NULL,
    opened_by   text NOT NULL,
    entered_by  text,
    scan_url    text,
    created_at  timestamptz NOT NULL DEFAULT now()
);
