-- The log's global order without a global write lock (issue 20).
--
-- Each event row records the id of the transaction that wrote it. Readers take only rows whose
-- transaction id is below the horizon pg_snapshot_xmin(pg_current_snapshot()) — every
-- transaction below it has ended, so no row can still appear there — and read them in
-- (txid, position) order. Appenders therefore never wait for each other, and a reader never
-- skips an event that commits late nor sees an aborted one: the late event's transaction id
-- keeps the horizon below it until it ends. See services/store/order.py.
--
-- Existing rows keep txid 0: they order before every new row, by position, as they always did.
ALTER TABLE events ADD COLUMN txid xid8 NOT NULL DEFAULT '0';
ALTER TABLE events ALTER COLUMN txid SET DEFAULT pg_current_xact_id();
CREATE UNIQUE INDEX events_order ON events (txid, position);

-- The stream versions an append continues from, with each stream locked (transaction-scoped,
-- in one sorted order, so two appends never deadlock on each other) before its version is read:
-- appends to one stream queue here, appends to other streams never do. A plpgsql function so
-- that the version is read with a snapshot taken after the lock (in READ COMMITTED each of its
-- statements takes a new one), in one round trip. The lock wait is bounded: a stream held
-- longer than lock_timeout fails the append (55P03), never hangs it.
CREATE FUNCTION ordinaut_lock_streams(streams text[])
RETURNS TABLE (stream text, version integer)
LANGUAGE plpgsql VOLATILE SET lock_timeout = '5s' AS $$
#variable_conflict use_column
DECLARE
    s text;
BEGIN
    FOREACH s IN ARRAY (SELECT array_agg(DISTINCT x ORDER BY x) FROM unnest(streams) AS x) LOOP
        PERFORM pg_advisory_xact_lock(hashtextextended('ordinaut-stream:' || s, 0));
    END LOOP;
    RETURN QUERY
        SELECT u.stream, coalesce((SELECT max(e.version) FROM events e WHERE e.stream = u.stream), 0)
        FROM unnest(streams) AS u(stream);
END $$;

-- The relay's checkpoint is a cursor now: (txid, position) of the last event published.
ALTER TABLE relay_checkpoint ADD COLUMN txid xid8 NOT NULL DEFAULT '0';
