-- 作废 (issue 13): a test, spam or abusive item is voided by the station's leadership. Its ground is
-- kept on the case (the reason is in the history); its pending mediation follow-ups are cancelled:
-- done (so no reminder fires) and marked cancelled, not performed.
ALTER TABLE cases ADD COLUMN void_ground text CHECK (void_ground IN ('test', 'spam', 'abusive', 'other'));
ALTER TABLE mediation_followups ADD COLUMN cancelled_at timestamptz;
