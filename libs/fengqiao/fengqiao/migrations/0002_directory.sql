-- Directory read model (event-carried state transfer). In mediation these tables are the
-- source of truth; in every other service they are a local copy fed by directory events.
CREATE TABLE stations (
    code         text PRIMARY KEY,
    name         text NOT NULL,
    jurisdiction text[] NOT NULL DEFAULT '{}',
    updated_at   timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE staff (
    staff_id   text PRIMARY KEY,
    station    text,
    name       text NOT NULL,
    role       text NOT NULL,
    team       text,
    badge_no   text,
    active     boolean NOT NULL DEFAULT true,
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX staff_station ON staff (station);

CREATE TABLE roster (
    station  text NOT NULL,
    day      date NOT NULL,
    staff_id text NOT NULL,
    starts   time NOT NULL,
    ends     time NOT NULL,
    PRIMARY KEY (station, day, staff_id, starts)
);

CREATE TABLE api_tokens (
    token_id   text PRIMARY KEY,
    token_hash text NOT NULL UNIQUE,
    staff_id   text,
    station    text,
    role       text NOT NULL,
    revoked    boolean NOT NULL DEFAULT false,
    created_at timestamptz NOT NULL DEFAULT now()
);
