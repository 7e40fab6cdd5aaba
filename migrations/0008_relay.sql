-- How far the relay has published the log to each Redis stream (the stream key is the name).
-- Only progress information: on start the relay trusts what the stream itself holds, so a
-- Redis that lost data is refilled from its real top, never left with a silent hole.
CREATE TABLE relay_checkpoint (
    name       TEXT PRIMARY KEY,
    position   BIGINT      NOT NULL DEFAULT 0,
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
