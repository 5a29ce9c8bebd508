-- Personal data at rest is encrypted by the application (AES-GCM, fengqiao.pii): reporter
-- (name, phone, e-mail) and location, each with the id of the key that sealed it. The plaintext
-- columns stay nullable until the startup job has sealed rows written before this migration.
ALTER TABLE submissions
    ADD COLUMN pii_kid      text,
    ADD COLUMN reporter_enc bytea,
    ADD COLUMN location_enc bytea,
    ADD COLUMN anonymous    boolean NOT NULL DEFAULT false,
    ADD COLUMN confidential boolean NOT NULL DEFAULT false,
    ALTER COLUMN reporter DROP NOT NULL,
    ALTER COLUMN reporter DROP DEFAULT,
    ALTER COLUMN location DROP NOT NULL,
    ALTER COLUMN location DROP DEFAULT;
UPDATE submissions SET anonymous = coalesce((reporter ->> 'anonymous')::boolean, false),
                       confidential = coalesce((reporter ->> 'confidential')::boolean, false)
 WHERE reporter IS NOT NULL;
CREATE INDEX submissions_unsealed ON submissions (tracking_no) WHERE reporter IS NOT NULL OR location IS NOT NULL;
