-- Repeats merged into an open case by triage (并单): counted on the case, never assigned twice.
-- Kept apart from `cases`, so a repeat that arrives before its case's assignment is not lost.
CREATE TABLE case_duplicates (
    tracking_no  text PRIMARY KEY,
    merged_into  text NOT NULL,
    station      text NOT NULL,
    similarity   real NOT NULL,
    reason       text NOT NULL,
    submitted_at timestamptz NOT NULL,
    merged_at    timestamptz NOT NULL
);
CREATE INDEX case_duplicates_into ON case_duplicates (merged_into);
