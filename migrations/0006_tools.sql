-- Read model of the registered tools (builtins live in code), maintained only by projections/rules/tool.py.
CREATE TABLE tool (
    address       TEXT PRIMARY KEY,
    transport     TEXT        NOT NULL CHECK (transport IN ('http', 'mcp')),
    -- The whole registration as recorded in tool.registered, without its type tag.
    definition    JSONB       NOT NULL,
    -- When this address was last registered from nothing; a replacement keeps it.
    registered_at TIMESTAMPTZ NOT NULL,
    updated_at    TIMESTAMPTZ NOT NULL,
    -- The tool stream's version: a replacement or removal appends at exactly this version.
    version       INTEGER     NOT NULL
);

-- Its checkpoint row; appends only ever UPDATE checkpoints.
INSERT INTO projection_checkpoints (name) VALUES ('tool');
