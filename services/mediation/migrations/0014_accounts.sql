-- People sign in to the console (DESIGN 4.8): one account per staff member with an argon2id
-- password hash, and server-side sessions (only a hash of the cookie value is stored, as for API
-- tokens).
CREATE TABLE accounts (
    staff_id            text PRIMARY KEY REFERENCES staff (staff_id),
    username            text NOT NULL,
    password_hash       text NOT NULL,
    must_change         boolean NOT NULL DEFAULT true,
    password_changed_at timestamptz NOT NULL DEFAULT now(),
    created_at          timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX accounts_username ON accounts (lower(username));

CREATE TABLE sessions (
    session_hash text PRIMARY KEY,
    staff_id     text NOT NULL REFERENCES staff (staff_id),
    csrf_token   text NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    last_seen_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX sessions_staff ON sessions (staff_id);

-- Failed sign-ins per user name, whether or not the name has an account (guessing names costs
-- the same as guessing passwords). Cleared by a successful sign-in; stale rows are ignored.
CREATE TABLE signin_failures (
    username     text PRIMARY KEY,  -- lower case
    attempts     integer NOT NULL DEFAULT 0,
    last_at      timestamptz NOT NULL DEFAULT now(),
    locked_until timestamptz
);
