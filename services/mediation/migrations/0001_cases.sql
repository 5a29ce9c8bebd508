-- A case: one assigned item and everything that happens to it afterwards.
CREATE TABLE cases (
    tracking_no     text PRIMARY KEY,
    station         text NOT NULL,
    status          text NOT NULL,
    type            text NOT NULL,
    category        text NOT NULL,
    urgency         text NOT NULL,
    needs_mediation boolean NOT NULL,
    assignee_id     text,
    team            text,
    flagged         boolean NOT NULL DEFAULT false,
    assignment_reason text NOT NULL,
    submitted_at    timestamptz NOT NULL,
    assigned_at     timestamptz NOT NULL,
    accept_due_at   timestamptz NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX cases_station_status ON cases (station, status);
CREATE INDEX cases_assignee ON cases (assignee_id) WHERE status NOT IN ('closed', 'merged');

-- Append-only history of every transition: who, when, why.
CREATE TABLE case_history (
    id          bigserial PRIMARY KEY,
    tracking_no text NOT NULL REFERENCES cases (tracking_no),
    at          timestamptz NOT NULL DEFAULT now(),
    status      text NOT NULL,
    actor       text NOT NULL,
    reason      text
);
CREATE INDEX case_history_tracking_no ON case_history (tracking_no, at);
