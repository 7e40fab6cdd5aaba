-- The event log: the single source of truth. Append-only.
CREATE TABLE events (
    position     BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    stream       TEXT        NOT NULL,
    version      INTEGER     NOT NULL CHECK (version > 0),
    type         TEXT        NOT NULL,
    data         JSONB       NOT NULL,
    meta         JSONB       NOT NULL,
    -- clock_timestamp(), not now(): appends are serialised, so recorded_at follows position order.
    recorded_at  TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp(),
    CONSTRAINT events_stream_version UNIQUE (stream, version)
);

CREATE INDEX events_type_position ON events (type, position);
CREATE INDEX events_recorded_at ON events USING brin (recorded_at);

-- History is never rewritten: refuse UPDATE, DELETE and TRUNCATE outright.
CREATE FUNCTION events_are_immutable() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the events table is append-only (% refused)', TG_OP;
END $$;

CREATE TRIGGER events_no_update_delete BEFORE UPDATE OR DELETE ON events
    FOR EACH STATEMENT EXECUTE FUNCTION events_are_immutable();
CREATE TRIGGER events_no_truncate BEFORE TRUNCATE ON events
    FOR EACH STATEMENT EXECUTE FUNCTION events_are_immutable();

-- One row per idempotent command: a repeat returns `result` and appends nothing.
CREATE TABLE command_log (
    actor           TEXT        NOT NULL,
    idempotency_key TEXT        NOT NULL,
    fingerprint     TEXT        NOT NULL,
    result          JSONB       NOT NULL,
    recorded_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (actor, idempotency_key)
);

-- How far each projection has applied the log.
CREATE TABLE projection_checkpoints (
    name     TEXT PRIMARY KEY,
    position BIGINT NOT NULL DEFAULT 0
);
