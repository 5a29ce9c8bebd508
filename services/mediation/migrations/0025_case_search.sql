-- Searching the citizen's words in the console (issue 16) without keeping them in the clear.
-- Each case keeps the keyed hashes (HMAC with the blind-index key, truncated to 32 bits) of the
-- character pairs of its title, content and address; a search asks for the cases holding every
-- pair of the words typed (GIN), then opens those candidates and keeps the ones that really
-- contain the words (a search by phone uses case_files.reporter_key, 0021). The table leaks which cases share a pair, not the pairs themselves.
CREATE TABLE case_search (
    tracking_no text PRIMARY KEY,
    station     text NOT NULL,
    word_keys   integer[] NOT NULL
);
CREATE INDEX case_search_words ON case_search USING gin (word_keys);

GRANT SELECT ON case_search TO fengqiao_staff_api;
ALTER TABLE case_search ENABLE ROW LEVEL SECURITY;
CREATE POLICY case_scope ON case_search TO fengqiao_staff_api
    USING (EXISTS (SELECT 1 FROM cases c WHERE c.tracking_no = case_search.tracking_no));
