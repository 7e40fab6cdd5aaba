"""The Postgres event store: append, read, tail."""
