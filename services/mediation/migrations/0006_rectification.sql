-- 整改台账: opinions and complaints about the station's own work become rectification measures.
-- One measure can cover many feedback items; each has an owner, a deadline, progress notes, the
-- evidence of completion and a verification by someone else.
CREATE TABLE rectifications (
    measure_id        bigserial PRIMARY KEY,
    station           text NOT NULL,
    title             text NOT NULL,
    description       text NOT NULL,
    owner_id          text NOT NULL,
    due_at            timestamptz NOT NULL,
    status            text NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'done', 'verified')),
    created_by        text NOT NULL,
    created_at        timestamptz NOT NULL DEFAULT now(),
    completed_by      text,
    completed_at      timestamptz,
    evidence          text,
    verified_by       text,
    verified_at       timestamptz,
    verification_note text
);
CREATE INDEX rectifications_station ON rectifications (station, status);

CREATE TABLE rectification_items (
    measure_id  bigint NOT NULL REFERENCES rectifications,
    tracking_no text NOT NULL REFERENCES cases (tracking_no),
    PRIMARY KEY (measure_id, tracking_no)
);
CREATE INDEX rectification_items_case ON rectification_items (tracking_no);

CREATE TABLE rectification_progress (
    id         bigserial PRIMARY KEY,
    measure_id bigint NOT NULL REFERENCES rectifications,
    at         timestamptz NOT NULL DEFAULT now(),
    staff_id   text NOT NULL,
    note       text NOT NULL
);

ALTER TABLE rectifications ENABLE ROW LEVEL SECURITY;
ALTER TABLE rectification_items ENABLE ROW LEVEL SECURITY;
ALTER TABLE rectification_progress ENABLE ROW LEVEL SECURITY;
CREATE POLICY station_scope ON rectifications TO fengqiao_staff_api
    USING (current_setting('fengqiao.station', true) IN ('*', station));
CREATE POLICY measure_scope ON rectification_items TO fengqiao_staff_api
    USING (EXISTS (SELECT 1 FROM rectifications r WHERE r.measure_id = rectification_items.measure_id));
CREATE POLICY measure_scope ON rectification_progress TO fengqiao_staff_api
    USING (EXISTS (SELECT 1 FROM rectifications r WHERE r.measure_id = rectification_progress.measure_id));
GRANT SELECT, INSERT, UPDATE ON rectifications, rectification_items, rectification_progress TO fengqiao_staff_api;
DO $$
BEGIN
    EXECUTE format('GRANT USAGE ON ALL SEQUENCES IN SCHEMA %I TO fengqiao_staff_api', current_schema());
END
$$;
