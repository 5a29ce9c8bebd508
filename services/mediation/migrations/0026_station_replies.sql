-- Reusable replies (常用答复, issue 16): each station's wordings of common results, kept by its
-- leadership, offered in the console's resolve form. `{编号}` is filled with the tracking number
-- in the console; `{称呼}` is left for intake, which holds the citizen's name, to fill in the
-- message it sends (the name never enters mediation).
CREATE TABLE station_replies (
    id          bigserial PRIMARY KEY,
    station     text NOT NULL,
    title       text NOT NULL CHECK (length(title) BETWEEN 1 AND 60),
    body        text NOT NULL CHECK (length(body) BETWEEN 1 AND 2000),
    updated_by  text NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (station, title)
);

GRANT SELECT, INSERT, UPDATE, DELETE ON station_replies TO fengqiao_staff_api;
GRANT USAGE ON SEQUENCE station_replies_id_seq TO fengqiao_staff_api;
ALTER TABLE station_replies ENABLE ROW LEVEL SECURITY;
CREATE POLICY station_scope ON station_replies TO fengqiao_staff_api
    USING (current_setting('fengqiao.station', true) IN ('*', station));
