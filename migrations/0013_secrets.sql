-- Read model of named secrets, maintained only by projections/rules/secret.py. Values are stored
-- only as ciphertext (AES-GCM under ORDINAUT_SECRET_KEY, bound to the name).
CREATE TABLE secret (
    name          TEXT PRIMARY KEY,
    ciphertext    TEXT        NOT NULL,
    allowed_tools TEXT[]      NOT NULL,
    description   TEXT,
    created_at    TIMESTAMPTZ NOT NULL,
    updated_at    TIMESTAMPTZ NOT NULL,
    -- The secret stream's version: a replacement or deletion appends at exactly this version.
    version       INTEGER     NOT NULL
);

INSERT INTO projection_checkpoints (name) VALUES ('secret');
