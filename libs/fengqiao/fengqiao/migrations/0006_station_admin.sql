-- Directory administration (issue 15): what an administrator sets for a station. In every
-- service's copy (the read model is shared): intake refuses new items for an inactive station,
-- and triage may read the station's own teams and alert thresholds from its copy.
ALTER TABLE stations
    ADD COLUMN active           boolean NOT NULL DEFAULT true,
    ADD COLUMN mailbox          text,
    ADD COLUMN duty_starts      time,
    ADD COLUMN duty_ends        time,
    ADD COLUMN teams            text[] NOT NULL DEFAULT '{}',
    ADD COLUMN category_teams   jsonb NOT NULL DEFAULT '{}',
    ADD COLUMN alert_thresholds jsonb NOT NULL DEFAULT '[]';
