-- Web dashboard sign-ins (/ui). Operational state written directly by the API, like
-- worker_presence: a session is not a fact worth replaying, and signing in must not grow the log.
-- The cookie holds a random id; only its SHA-256 is stored, so reading this table gives no
-- usable cookie. The token signed in with is kept as its SHA-256 too (as agent_token keeps it),
-- and checked against agent_token on every request, so revoking the token ends the session.
CREATE TABLE ui_session (
    id_sha256    TEXT PRIMARY KEY,
    token_sha256 TEXT        NOT NULL,
    -- who signed in, as the pages name them (the agent's name then, or admin)
    label        TEXT        NOT NULL,
    -- the synchroniser token every form and htmx request of this session must echo
    csrf         TEXT        NOT NULL,
    created_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    expires_at   TIMESTAMPTZ NOT NULL
);

-- Expired sessions are swept at sign-in.
CREATE INDEX ui_session_expires ON ui_session (expires_at);

-- The overview counts the last day's runs by status (per owner for agents): an index-only
-- range scan instead of reading every wide runs row.
CREATE INDEX runs_recent ON runs (queued_at) INCLUDE (status, owner);
