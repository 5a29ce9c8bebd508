-- Every triage decision with its reasons and the model version that made it.
CREATE TABLE decisions (
    tracking_no     text PRIMARY KEY,
    station         text NOT NULL,
    type            text NOT NULL,
    category        text NOT NULL,
    urgency         text NOT NULL,
    needs_mediation boolean NOT NULL,
    confidence      real NOT NULL,
    model_version   text NOT NULL,
    reasons         text[] NOT NULL,
    submitted_at    timestamptz NOT NULL,
    decided_at      timestamptz NOT NULL DEFAULT now()
);

-- Who got each item and why; `open` feeds the least-load rule.
CREATE TABLE assignments (
    tracking_no text PRIMARY KEY,
    station     text NOT NULL,
    assignee_id text,
    team        text,
    reason      text NOT NULL,
    flagged     boolean NOT NULL DEFAULT false,
    open        boolean NOT NULL DEFAULT true,
    assigned_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX assignments_open_load ON assignments (assignee_id) WHERE open;
