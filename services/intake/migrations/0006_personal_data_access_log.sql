-- Who saw a reporter's personal data, and when (append-only).
CREATE TABLE personal_data_access (
    id          bigserial PRIMARY KEY,
    tracking_no text NOT NULL REFERENCES submissions (tracking_no),
    token_id    text NOT NULL,
    staff_id    text,
    role        text NOT NULL,
    at          timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX personal_data_access_tracking_no ON personal_data_access (tracking_no, at);
