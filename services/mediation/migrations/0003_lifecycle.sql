-- The case lifecycle after assignment: who holds it, what happened, and its clocks.
ALTER TABLE cases
    ADD COLUMN handled_by    text,
    ADD COLUMN returned_by   text,
    ADD COLUMN visit_result  text,
    ADD COLUMN escalated     boolean NOT NULL DEFAULT false,
    ADD COLUMN transferred_from text;

ALTER TABLE case_history
    ADD COLUMN event text,           -- the public event emitted, if any
    ADD COLUMN assignee_id text;     -- who held the case after this step

-- One row per clock of a case (accept, resolve, visit). A timer fires each step once across
-- replicas: due rows are claimed with FOR UPDATE SKIP LOCKED and stamped in the same
-- transaction as the events they emit. A missed clock stays missed (breached_at is kept even
-- when the case is done later or the deadline is extended).
CREATE TABLE case_clocks (
    tracking_no      text NOT NULL REFERENCES cases (tracking_no),
    clock            text NOT NULL CHECK (clock IN ('accept', 'resolve', 'visit')),
    started_at       timestamptz NOT NULL,
    due_at           timestamptz NOT NULL,
    original_due_at  timestamptz NOT NULL,
    remind_at        timestamptz NOT NULL,
    note             text NOT NULL,
    reminded_at      timestamptz,
    breached_at      timestamptz,
    supervise_at     timestamptz,
    supervised_at    timestamptz,
    done_at          timestamptz,
    extended_by      text,
    extension_reason text,
    PRIMARY KEY (tracking_no, clock)
);
CREATE INDEX case_clocks_next ON case_clocks (
    least(CASE WHEN reminded_at IS NULL THEN remind_at END,
          CASE WHEN breached_at IS NULL THEN due_at END,
          CASE WHEN supervised_at IS NULL THEN supervise_at END)) WHERE done_at IS NULL;

-- A deployment's loaded holiday schedule (国务院办公厅 notice): the exceptions of each year.
CREATE TABLE calendar_days (
    day        date PRIMARY KEY,
    is_workday boolean NOT NULL,
    name       text NOT NULL DEFAULT ''
);
