-- Case access, after the security review of issue 13's exclusions.
--
-- 1. Settled per station: triage says who an item names *among a station's staff*. A transferred
--    case is hidden from the receiving station's staff until triage has matched the complaint
--    against them (its access event names the station). A row per (case, station) triage checked.
ALTER TABLE case_access ADD COLUMN station text;
UPDATE case_access a SET station = c.station FROM cases c WHERE c.tracking_no = a.tracking_no;
UPDATE case_access a SET station = f.station FROM case_files f
 WHERE f.tracking_no = a.tracking_no AND a.station IS NULL;
DELETE FROM case_access WHERE station IS NULL;
ALTER TABLE case_access ALTER COLUMN station SET NOT NULL;
ALTER TABLE case_access DROP CONSTRAINT case_access_pkey;
ALTER TABLE case_access ADD PRIMARY KEY (tracking_no, station);
-- A transfer forgets an earlier check of the receiving station (A -> B -> A): its staff may have
-- changed since. Only ever makes a case less visible.
GRANT DELETE ON case_access TO fengqiao_staff_api;

-- 2. Who may read a case: as before, and (6) a station token that is nobody's (no staff id) opens
--    no case, because exclusions are by person.
DROP POLICY station_scope ON cases;
CREATE POLICY station_scope ON cases TO fengqiao_staff_api
    USING (current_setting('fengqiao.station', true) IN ('*', station)
           AND (NOT confidential OR current_setting('fengqiao.confidential', true) = 'on')
           AND (current_setting('fengqiao.station', true) = '*'
                OR (EXISTS (SELECT 1 FROM case_access a
                             WHERE a.tracking_no = cases.tracking_no AND a.station = cases.station)
                    AND coalesce(current_setting('fengqiao.staff', true), '') <> ''))
           AND NOT EXISTS (SELECT 1 FROM case_exclusions e WHERE e.tracking_no = cases.tracking_no
                           AND e.staff_id = current_setting('fengqiao.staff', true)));

-- 3. The audit log does not tell a leader kept out of a case who viewed it and why others were
--    kept out. Writing stays as before (a refused read of an excluded person is itself audited).
DROP POLICY station_scope ON audit_log;
CREATE POLICY station_read ON audit_log FOR SELECT TO fengqiao_staff_api
    USING (current_setting('fengqiao.station', true) IN ('*', station)
           AND (tracking_no IS NULL
                OR NOT EXISTS (SELECT 1 FROM case_exclusions e WHERE e.tracking_no = audit_log.tracking_no
                               AND e.staff_id = current_setting('fengqiao.staff', true))));
CREATE POLICY station_write ON audit_log FOR INSERT TO fengqiao_staff_api
    WITH CHECK (current_setting('fengqiao.station', true) IN ('*', station));


-- 1. The console notice of a transfer waits until triage has checked the receiving station, so it
--    reaches whoever may hold the case there (never the leader the complaint names).
CREATE TABLE transfer_notices (
    tracking_no text PRIMARY KEY,
    station     text NOT NULL,
    notice      jsonb NOT NULL
);
GRANT SELECT, INSERT, DELETE ON transfer_notices TO fengqiao_staff_api;
ALTER TABLE transfer_notices ENABLE ROW LEVEL SECURITY;
CREATE POLICY station_scope ON transfer_notices TO fengqiao_staff_api
    USING (current_setting('fengqiao.station', true) IN ('*', station));
