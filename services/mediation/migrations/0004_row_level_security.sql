-- Station isolation enforced by PostgreSQL, not only by the API: staff requests run as the
-- role fengqiao_staff_api (not the tables' owner), with the station set per transaction in
-- `fengqiao.station` ('*' for bureau roles). Event handlers and timers run as the owner: they act
-- for the whole deployment. The migrating user needs CREATEROLE the first time (or create the
-- role beforehand: CREATE ROLE fengqiao_staff_api NOLOGIN).
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'fengqiao_staff_api') THEN
        CREATE ROLE fengqiao_staff_api NOLOGIN;
    END IF;
    IF NOT pg_has_role(current_user, 'fengqiao_staff_api', 'MEMBER') THEN
        EXECUTE format('GRANT fengqiao_staff_api TO %I', current_user);
    END IF;
    EXECUTE format('GRANT USAGE ON SCHEMA %I TO fengqiao_staff_api', current_schema());
END
$$;

-- Who viewed what and who changed what, by staff id.
CREATE TABLE audit_log (
    id          bigserial PRIMARY KEY,
    at          timestamptz NOT NULL DEFAULT now(),
    staff_id    text NOT NULL,
    role        text NOT NULL,
    station     text,
    action      text NOT NULL,      -- view_case, accept, resolve, extend_clock ...
    tracking_no text,
    detail      text
);
CREATE INDEX audit_log_case ON audit_log (tracking_no, at);

GRANT SELECT, INSERT, UPDATE ON cases, case_history, case_clocks, case_duplicates TO fengqiao_staff_api;
GRANT SELECT ON stations, staff, roster, calendar_days TO fengqiao_staff_api;
GRANT SELECT, INSERT ON audit_log TO fengqiao_staff_api;
GRANT INSERT ON outbox TO fengqiao_staff_api;
DO $$
BEGIN
    EXECUTE format('GRANT USAGE ON ALL SEQUENCES IN SCHEMA %I TO fengqiao_staff_api', current_schema());
END
$$;

ALTER TABLE cases ENABLE ROW LEVEL SECURITY;
ALTER TABLE case_history ENABLE ROW LEVEL SECURITY;
ALTER TABLE case_clocks ENABLE ROW LEVEL SECURITY;
ALTER TABLE case_duplicates ENABLE ROW LEVEL SECURITY;
ALTER TABLE audit_log ENABLE ROW LEVEL SECURITY;

CREATE POLICY station_scope ON cases TO fengqiao_staff_api
    USING (current_setting('fengqiao.station', true) IN ('*', station));
CREATE POLICY station_scope ON case_duplicates TO fengqiao_staff_api
    USING (current_setting('fengqiao.station', true) IN ('*', station));
CREATE POLICY station_scope ON audit_log TO fengqiao_staff_api
    USING (current_setting('fengqiao.station', true) IN ('*', station));
-- Children of a case: visible and writable when the case is (the subquery is itself filtered).
CREATE POLICY case_scope ON case_history TO fengqiao_staff_api
    USING (EXISTS (SELECT 1 FROM cases c WHERE c.tracking_no = case_history.tracking_no));
CREATE POLICY case_scope ON case_clocks TO fengqiao_staff_api
    USING (EXISTS (SELECT 1 FROM cases c WHERE c.tracking_no = case_clocks.tracking_no));
