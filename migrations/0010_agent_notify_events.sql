-- The event types an agent's webhook receives; NULL means the defaults
-- (domain.webhooks.DEFAULT_NOTIFY_EVENTS).
ALTER TABLE agent ADD COLUMN notify_events TEXT[];
