-- Open work per staff member, kept with each assignment, so choosing the least-loaded officer
-- reads one row per person instead of counting a growing table.
CREATE TABLE staff_load (
    staff_id   text PRIMARY KEY,
    open_items integer NOT NULL DEFAULT 0 CHECK (open_items >= 0)
);
INSERT INTO staff_load (staff_id, open_items)
    SELECT assignee_id, count(*) FROM assignments WHERE open AND assignee_id IS NOT NULL GROUP BY assignee_id;
