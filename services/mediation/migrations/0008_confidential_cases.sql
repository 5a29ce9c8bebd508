-- Confidential tip-offs (举报人保密, security review finding 12): the case, its history, clocks and
-- mediation records are seen only by the station's leadership, the staff its leader approved as
-- confidential handlers, and bureau supervisors. Staff requests set `fengqiao.confidential` to 'on'
-- for those people (mediation.api.staff_unit); for everyone else PostgreSQL hides the rows, so every
-- route answers 404 as for a case that does not exist.
ALTER TABLE cases ADD COLUMN confidential boolean NOT NULL DEFAULT false;

DROP POLICY station_scope ON cases;
CREATE POLICY station_scope ON cases TO fengqiao_staff_api
    USING (current_setting('fengqiao.station', true) IN ('*', station)
           AND (NOT confidential OR current_setting('fengqiao.confidential', true) = 'on'));

DROP POLICY station_scope ON mediations;
CREATE POLICY station_scope ON mediations TO fengqiao_staff_api
    USING (current_setting('fengqiao.station', true) IN ('*', station)
           AND EXISTS (SELECT 1 FROM cases c WHERE c.tracking_no = mediations.tracking_no));
