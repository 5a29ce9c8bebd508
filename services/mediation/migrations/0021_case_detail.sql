-- The case detail page (issue 16): triage's decision with its reasons, the early warnings that
-- name a case, and the reporter's keyed hash to find the same reporter's earlier cases.

-- Triage's classification as it was announced (fengqiao.case.triaged on the public stream): rule
-- ids and model labels, never the citizen's words. May arrive before the case (kept until then);
-- a correction by staff changes the case, never this row (it is what triage said).
CREATE TABLE case_triage (
    tracking_no     text PRIMARY KEY,
    station         text NOT NULL,
    type            text NOT NULL,
    category        text NOT NULL,
    urgency         text NOT NULL,
    needs_mediation boolean NOT NULL,
    confidence      double precision NOT NULL,
    model_version   text NOT NULL,
    reasons         text[] NOT NULL DEFAULT '{}',
    triaged_at      timestamptz NOT NULL
);

-- Early warnings (群体性事件预警) from triage: the latest state of each alert, with its members
-- (tracking numbers). The explanation names no address and no reporter (the contract's promise).
CREATE TABLE case_alerts (
    alert_id    text PRIMARY KEY,
    station     text NOT NULL,
    kind        text NOT NULL,
    level       text NOT NULL,
    category    text,
    members     text[] NOT NULL,
    reporters   integer NOT NULL,
    explanation text NOT NULL,
    raised_at   timestamptz NOT NULL
);
CREATE INDEX case_alerts_members ON case_alerts USING gin (members);

-- A keyed hash of the reporter's phone (else e-mail) from intake's triage request: the same
-- station's earlier cases of the same reporter, without the number itself.
ALTER TABLE case_files ADD COLUMN reporter_key text;
CREATE INDEX case_files_reporter ON case_files (station, reporter_key, received_at) WHERE reporter_key IS NOT NULL;

GRANT SELECT ON case_triage, case_alerts TO fengqiao_staff_api;
ALTER TABLE case_triage ENABLE ROW LEVEL SECURITY;
ALTER TABLE case_alerts ENABLE ROW LEVEL SECURITY;
-- Visible when the case is (the subquery is itself filtered: station, confidentiality, exclusions).
CREATE POLICY case_scope ON case_triage TO fengqiao_staff_api
    USING (EXISTS (SELECT 1 FROM cases c WHERE c.tracking_no = case_triage.tracking_no));
CREATE POLICY station_scope ON case_alerts TO fengqiao_staff_api
    USING (current_setting('fengqiao.station', true) IN ('*', station));
