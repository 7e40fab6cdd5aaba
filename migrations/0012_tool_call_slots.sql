-- Tool rate limits: each row is a call time handed out to some worker (now, or later for a
-- call that must wait). Coordination state, not a read model: rows older than the tool's
-- window are deleted as new calls are admitted.
CREATE TABLE tool_call_slots (
    address TEXT        NOT NULL,
    slot_at TIMESTAMPTZ NOT NULL
);

CREATE INDEX tool_call_slots_address ON tool_call_slots (address, slot_at DESC);
