-- Security review (issue 11).
-- A confidential tip-off's decision is shown only to approved handlers and the leadership, so the
-- decision must know it. Decisions made before this migration are not known to be confidential:
-- triage never stored the flag (docs/triage.md).
ALTER TABLE decisions
    ADD COLUMN confidential boolean NOT NULL DEFAULT false,
    -- The merge rule with its detail (e.g. same_reporter_similar) for staff; the public event
    -- carries a label only.
    ADD COLUMN merge_reason text;

-- HMAC-SHA256 of the artifact under a key derived from the deployment's secret, which the
-- database never holds: a row written by anyone without the key is never unpickled.
ALTER TABLE models ADD COLUMN signature text;
