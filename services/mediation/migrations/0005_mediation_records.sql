-- 大调解: the mediation record of a dispute case. Personal data (parties, minutes, the agreement)
-- is sealed with the deployment's personal-data keys (AES-GCM, bound to the case); a keyed hash of
-- a party's phone or ID number links a party's new dispute to the earlier ones.
CREATE TABLE mediations (
    tracking_no  text PRIMARY KEY REFERENCES cases (tracking_no),
    station      text NOT NULL,
    mediator_id  text NOT NULL,
    opened_at    timestamptz NOT NULL,
    outcome      text CHECK (outcome IN ('agreement', 'no_agreement', 'withdrawn')),
    referral     text CHECK (referral IN ('court', 'peoples_mediation_committee')),
    outcome_at   timestamptz
);

CREATE TABLE mediation_parties (
    party_id    bigserial PRIMARY KEY,
    tracking_no text NOT NULL REFERENCES mediations (tracking_no),
    role        text NOT NULL CHECK (role IN ('applicant', 'respondent', 'other')),
    pii_kid     text NOT NULL,
    sealed      bytea NOT NULL,          -- {name, phone, id_no, address}
    party_keys  text[] NOT NULL DEFAULT '{}',
    added_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX mediation_parties_keys ON mediation_parties USING gin (party_keys);

CREATE TABLE mediation_sessions (
    session_id   bigserial PRIMARY KEY,
    tracking_no  text NOT NULL REFERENCES mediations (tracking_no),
    scheduled_at timestamptz NOT NULL,
    place        text NOT NULL,
    attendees    text[] NOT NULL DEFAULT '{}',   -- party ids ("party:12") and staff ids
    held_at      timestamptz,
    pii_kid      text,
    minutes      bytea                           -- sealed text
);

CREATE TABLE mediation_agreements (
    tracking_no text PRIMARY KEY REFERENCES mediations (tracking_no),
    pii_kid     text NOT NULL,
    sealed      bytea NOT NULL,                  -- {facts, dispute, terms[], performance{how,where,when}, signatures[]}
    signed_at   timestamptz NOT NULL,
    recorded_by text NOT NULL
);

-- Follow-up of an agreement: performance checks, and the 30-day window for court confirmation.
CREATE TABLE mediation_followups (
    followup_id bigserial PRIMARY KEY,
    tracking_no text NOT NULL REFERENCES mediations (tracking_no),
    kind        text NOT NULL CHECK (kind IN ('performance_check', 'confirmation_window')),
    due_at      timestamptz NOT NULL,
    remind_at   timestamptz NOT NULL,
    reminded_at timestamptz,
    done_at     timestamptz,
    result      text
);
CREATE INDEX mediation_followups_due ON mediation_followups (remind_at) WHERE reminded_at IS NULL AND done_at IS NULL;

ALTER TABLE mediations ENABLE ROW LEVEL SECURITY;
ALTER TABLE mediation_parties ENABLE ROW LEVEL SECURITY;
ALTER TABLE mediation_sessions ENABLE ROW LEVEL SECURITY;
ALTER TABLE mediation_agreements ENABLE ROW LEVEL SECURITY;
ALTER TABLE mediation_followups ENABLE ROW LEVEL SECURITY;
CREATE POLICY station_scope ON mediations TO fengqiao_staff_api
    USING (current_setting('fengqiao.station', true) IN ('*', station));
CREATE POLICY case_scope ON mediation_parties TO fengqiao_staff_api
    USING (EXISTS (SELECT 1 FROM mediations m WHERE m.tracking_no = mediation_parties.tracking_no));
CREATE POLICY case_scope ON mediation_sessions TO fengqiao_staff_api
    USING (EXISTS (SELECT 1 FROM mediations m WHERE m.tracking_no = mediation_sessions.tracking_no));
CREATE POLICY case_scope ON mediation_agreements TO fengqiao_staff_api
    USING (EXISTS (SELECT 1 FROM mediations m WHERE m.tracking_no = mediation_agreements.tracking_no));
CREATE POLICY case_scope ON mediation_followups TO fengqiao_staff_api
    USING (EXISTS (SELECT 1 FROM mediations m WHERE m.tracking_no = mediation_followups.tracking_no));
GRANT SELECT, INSERT, UPDATE ON mediations, mediation_parties, mediation_sessions, mediation_agreements,
    mediation_followups TO fengqiao_staff_api;
DO $$
BEGIN
    EXECUTE format('GRANT USAGE ON ALL SEQUENCES IN SCHEMA %I TO fengqiao_staff_api', current_schema());
END
$$;
