"""Delivery records: one stream per (agent, event position), its version counting attempts.

Reading that stream before an attempt tells whether the event was already delivered (then it
is never sent again); appending at the version read makes two notifiers that raced on the
same delivery notice it (a VersionConflict) instead of recording it twice.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from functools import reduce

import asyncpg

from domain.envelope import EventMeta
from domain.events import Event, webhook_stream
from domain.webhooks import DeliveryState, evolve
from services.store.errors import VersionConflict
from services.store.events import StreamAppend, read_stream
from services.store.group import GroupCommitter

ACTOR = "notifier"


async def delivery_state(
    pool: asyncpg.Pool, agent_id: str, position: int
) -> tuple[DeliveryState, int]:
    """What was recorded so far, and the stream version to append at."""
    async with pool.acquire() as conn:
        envelopes = await read_stream(conn, webhook_stream(agent_id, position))
    state = reduce(evolve, (e.event for e in envelopes), DeliveryState())
    return state, len(envelopes)


async def record(
    committer: GroupCommitter,
    agent_id: str,
    position: int,
    events: Sequence[Event],
    *,
    expected_version: int,
    correlation_id: str | None,
) -> bool:
    """Append an attempt's events; False if another notifier recorded one meanwhile.

    Through the process's group committer: the attempts of concurrent deliveries share
    transactions."""
    meta = EventMeta(
        actor=ACTOR,
        correlation_id=correlation_id or str(uuid.uuid4()),
        causation_id=str(position),
    )
    append = StreamAppend(webhook_stream(agent_id, position), events, expected_version)
    try:
        await committer.append([append], meta)
    except VersionConflict:
        return False
    return True
