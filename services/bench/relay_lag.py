"""Watching an events stream the relay fills: when each event became visible there.

Relay lag is the time from an event's commit (its ``recorded_at``, on the database's clock,
taken just before commit) to the moment a reader of the stream receives it; end-to-end adds
the time from the ingest entry's XADD (the millisecond in its entry id, which the event's
``correlation_id`` names). Both clocks are this machine's.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import redis.asyncio as redis

from services.relay.publisher import position_of


@dataclass
class Seen:
    """Lags of the ``event.received`` entries read so far, in milliseconds."""

    relay_ms: list[float] = field(default_factory=list)
    end_to_end_ms: list[float] = field(default_factory=list)
    top: int = 0


async def watch(client: redis.Redis, stream: str, after: int, seen: Seen) -> None:
    """Read the stream from position ``after`` until cancelled, recording each event's lags."""
    last = f"{after}-0"
    while True:
        reply: Any = await client.xread({stream: last}, count=1000, block=200)
        arrived = time.time()
        for _, entries in reply or ():
            for entry_id, fields in entries:
                last, seen.top = entry_id, position_of(entry_id)
                if fields[b"type"] == b"event.received":
                    _record(seen, fields, arrived)


def _record(seen: Seen, fields: dict[bytes, bytes], arrived: float) -> None:
    recorded = datetime.fromisoformat(fields[b"recorded_at"].decode()).timestamp()
    seen.relay_ms.append((arrived - recorded) * 1000)
    correlation = json.loads(fields[b"meta"]).get("correlation_id", "")
    entry_ms = correlation.rsplit(":", 1)[-1].split("-", 1)[0]
    if entry_ms.isdigit():
        seen.end_to_end_ms.append(arrived * 1000 - int(entry_ms))


@contextlib.asynccontextmanager
async def watching(client: redis.Redis, stream: str, after: int) -> Any:
    """``watch`` in the background for the duration of the block; yields its Seen."""
    seen = Seen(top=after)
    task = asyncio.create_task(watch(client, stream, after, seen))
    try:
        yield seen
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
