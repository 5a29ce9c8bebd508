-- OpenID Connect sign-in (issue 15): a session remembers how it was signed in. The forced password
-- change of a new or reset account applies to password sessions only: a person who signed in
-- through the bureau's identity provider never typed the one-time password.
ALTER TABLE sessions ADD COLUMN method text NOT NULL DEFAULT 'password'
    CHECK (method IN ('password', 'oidc'));
