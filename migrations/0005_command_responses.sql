-- The HTTP answer to an idempotent command, replayed verbatim for a repeated Idempotency-Key.
ALTER TABLE command_log ADD COLUMN response_status SMALLINT, ADD COLUMN response JSONB;
