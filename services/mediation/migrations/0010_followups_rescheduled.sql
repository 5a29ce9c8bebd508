-- A saved-again agreement moves its pending follow-ups to the new dates (issue 13, item 9): the
-- staff role may delete a pending follow-up of its own station's records (row-level security as before).
GRANT DELETE ON mediation_followups TO fengqiao_staff_api;
