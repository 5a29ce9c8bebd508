-- The classification engine's state: versioned models, labelled examples from corrections,
-- a deployment's own rules, and what each decision was made from.

CREATE TABLE models (
    version      text PRIMARY KEY,
    created_at   timestamptz NOT NULL DEFAULT now(),
    trained_on   jsonb NOT NULL,              -- {"seed": n, "corrections": m}
    scores       jsonb NOT NULL,              -- cross-validated macro-F1 per head
    artifact     bytea NOT NULL,              -- TextModel.dumps()
    sha256       text NOT NULL,
    active       boolean NOT NULL DEFAULT false,
    activated_at timestamptz,
    activated_by text
);
CREATE UNIQUE INDEX models_one_active ON models (active) WHERE active;

-- Corrections by staff, kept as labelled examples for retraining. The text has phone numbers,
-- ID numbers and e-mail addresses masked.
CREATE TABLE examples (
    tracking_no  text PRIMARY KEY,
    station      text NOT NULL,
    text         text NOT NULL,
    type         text,
    category     text,
    urgency      text,
    corrected_by text NOT NULL,
    reason       text,
    corrected_at timestamptz NOT NULL
);

-- A deployment's own rules, for every station (station NULL) or one station.
CREATE TABLE rules (
    rule_id    bigserial PRIMARY KEY,
    station    text,
    field      text NOT NULL CHECK (field IN ('type', 'category', 'urgency', 'needs_mediation')),
    value      text NOT NULL,
    pattern    text NOT NULL CHECK (length(pattern) BETWEEN 1 AND 200),
    is_regex   boolean NOT NULL DEFAULT false,
    weight     real NOT NULL DEFAULT 1.0 CHECK (weight > 0 AND weight <= 10),
    active     boolean NOT NULL DEFAULT true,
    created_by text,
    created_at timestamptz NOT NULL DEFAULT now()
);

ALTER TABLE decisions
    ADD COLUMN text_masked  text,
    ADD COLUMN sentiment    real,
    ADD COLUMN confidences  jsonb,
    ADD COLUMN reporter_key text,
    ADD COLUMN place_key    text,
    ADD COLUMN merged_into  text,
    ADD COLUMN corrected    boolean NOT NULL DEFAULT false;
CREATE INDEX decisions_station_category_time ON decisions (station, category, submitted_at);
CREATE INDEX decisions_reporter ON decisions (reporter_key, submitted_at) WHERE reporter_key IS NOT NULL;
CREATE INDEX decisions_place ON decisions (station, place_key, submitted_at) WHERE place_key IS NOT NULL;

-- Near-duplicate detection: a MinHash signature per open primary item, and its LSH buckets.
CREATE TABLE fingerprints (
    tracking_no  text PRIMARY KEY,
    station      text NOT NULL,
    category     text NOT NULL,
    signature    bigint[] NOT NULL,
    reporter_key text,
    place_key    text,
    submitted_at timestamptz NOT NULL,
    open         boolean NOT NULL DEFAULT true,
    duplicates   integer NOT NULL DEFAULT 0
);
CREATE INDEX fingerprints_reporter ON fingerprints (station, reporter_key) WHERE open AND reporter_key IS NOT NULL;

CREATE TABLE lsh_buckets (
    station      text NOT NULL,
    band         smallint NOT NULL,
    bucket       bigint NOT NULL,
    tracking_no  text NOT NULL REFERENCES fingerprints ON DELETE CASCADE,
    PRIMARY KEY (station, band, bucket, tracking_no)
);
CREATE INDEX lsh_buckets_item ON lsh_buckets (tracking_no);

-- Early-warning alerts; one row per (kind, station, key) and window, raised again when its level rises.
CREATE TABLE alerts (
    alert_id     text PRIMARY KEY,
    station      text NOT NULL,
    kind         text NOT NULL,
    alert_key    text NOT NULL,
    level        text NOT NULL,
    category     text,
    members      text[] NOT NULL,
    reporters    integer NOT NULL,
    window_hours integer NOT NULL,
    explanation  text NOT NULL,
    raised_at    timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    expires_at   timestamptz NOT NULL
);
CREATE INDEX alerts_open ON alerts (station, kind, alert_key, expires_at);

-- Alert thresholds per station and category ('*' = any). The most specific row wins.
CREATE TABLE alert_thresholds (
    station      text NOT NULL DEFAULT '*',
    category     text NOT NULL DEFAULT '*',
    kind         text NOT NULL CHECK (kind IN ('cluster', 'trend', 'repeat_dispute')),
    window_hours integer NOT NULL CHECK (window_hours > 0),
    yellow       integer NOT NULL CHECK (yellow > 0),
    orange       integer NOT NULL,
    red          integer NOT NULL,
    PRIMARY KEY (station, category, kind),
    CHECK (yellow <= orange AND orange <= red)
);
INSERT INTO alert_thresholds (station, category, kind, window_hours, yellow, orange, red) VALUES
    ('*', '*', 'cluster', 24, 3, 5, 10),
    ('*', 'labor_dispute', 'cluster', 48, 2, 3, 5),   -- wage-arrears protests escalate fast
    ('*', 'public_order', 'cluster', 6, 2, 4, 8),
    ('*', '*', 'trend', 24, 3, 4, 6),                 -- multiples of the 7-day daily mean (min 5 items)
    ('*', '*', 'repeat_dispute', 2160, 3, 4, 6);      -- the same parties within 90 days

-- Which team handles a category, per station ('*' = the deployment default).
CREATE TABLE assignment_rules (
    station  text NOT NULL DEFAULT '*',
    category text NOT NULL,
    team     text NOT NULL,
    PRIMARY KEY (station, category)
);
INSERT INTO assignment_rules (station, category, team) VALUES
    ('*', 'neighbor_dispute', 'mediation'),
    ('*', 'family_dispute', 'mediation'),
    ('*', 'labor_dispute', 'mediation'),
    ('*', 'public_order', 'patrol'),
    ('*', 'theft', 'patrol'),
    ('*', 'traffic', 'patrol'),
    ('*', 'fraud', 'patrol'),
    ('*', 'noise', 'community'),
    ('*', 'safety_hazard', 'community'),
    ('*', 'admin_service', 'community');
