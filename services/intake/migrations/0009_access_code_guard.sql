-- Wrong access codes per tracking number (security review finding 5): after a few misses the number
-- is locked for a while, whoever asks and from wherever, so a script spread over many addresses or
-- holding a token gains nothing. Access codes stored from now on are keyed hashes ("k1:" prefix).
CREATE TABLE access_code_misses (
    tracking_no    text PRIMARY KEY REFERENCES submissions (tracking_no),
    misses         integer NOT NULL,
    window_started timestamptz NOT NULL,
    locked_until   timestamptz
);
