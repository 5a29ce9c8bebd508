-- Staff named in a complaint or police-conduct item, and the staff the station's leader kept out
-- of the case (issue 13): they do not open the item's decision either. Decisions made before this
-- migration name nobody (triage kept only a count in the assignment reason).
ALTER TABLE decisions ADD COLUMN excluded_staff text[] NOT NULL DEFAULT '{}';
