"""The ingest stream's names: where clients write events, who reads them, where refusals go."""

from __future__ import annotations

INGEST_STREAM = "ordinaut:ingest"
INGEST_GROUP = "ordinaut:ingestors"
# Refused entries, each with the reason (the dashboard shows the latest).
DEAD_STREAM = "ordinaut:dead"
