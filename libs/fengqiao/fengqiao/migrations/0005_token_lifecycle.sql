-- API tokens for machines expire, are revoked with a time, and show when they were last used
-- (in each service's copy: the last request that service saw). `issued_at` orders the events of
-- one token id: an older event (a replay) never undoes a newer rotation or revocation.
ALTER TABLE api_tokens
    ADD COLUMN issued_at    timestamptz,
    ADD COLUMN expires_at   timestamptz,
    ADD COLUMN revoked_at   timestamptz,
    ADD COLUMN last_used_at timestamptz,
    ADD COLUMN label        text;
-- Tokens from before: their secret dates from their creation, so a replayed older event is refused.
UPDATE api_tokens SET issued_at = created_at WHERE issued_at IS NULL;
