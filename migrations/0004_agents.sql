-- Read models of agents and their bearer tokens, maintained only by projections/agent.py.
CREATE TABLE agent (
    id          TEXT PRIMARY KEY,
    name        TEXT        NOT NULL,
    -- domain.agents.name_key(name): names are unique regardless of case.
    name_key    TEXT        NOT NULL,
    scopes      TEXT[]      NOT NULL,
    webhook_url TEXT,
    created_by  TEXT        NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL,
    updated_at  TIMESTAMPTZ NOT NULL,
    -- The agent stream's version: commands lock this row and append at exactly this version.
    version     INTEGER     NOT NULL
);

CREATE UNIQUE INDEX agent_name_key ON agent (name_key);
CREATE INDEX agent_created ON agent (created_at, id);

-- Only the SHA-256 of a token is ever stored; the token itself is shown once, when issued.
CREATE TABLE agent_token (
    id           TEXT PRIMARY KEY,
    agent_id     TEXT        NOT NULL REFERENCES agent (id),
    token_sha256 TEXT        NOT NULL,
    label        TEXT,
    created_at   TIMESTAMPTZ NOT NULL,
    revoked_at   TIMESTAMPTZ
);

-- Authentication is one lookup by hash on every request.
CREATE UNIQUE INDEX agent_token_sha256 ON agent_token (token_sha256);
CREATE INDEX agent_token_agent ON agent_token (agent_id, created_at, id);

INSERT INTO projection_checkpoints (name) VALUES ('agent');
