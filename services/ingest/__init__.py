"""The ingest consumer: entries of `ordinaut:ingest` become recorded events."""
