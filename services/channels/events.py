"""The events stream: the relay writes stored events to it, each under its cursor's id, in
batches; the notifier reads its top.

The id is the event's place in the log's global order (services/store/order.py): events
written before that order existed keep ``<position>-0``, later ones get ids above every old
one, so a stream filled before the upgrade goes on growing monotonically.

A batch goes in one Lua script that first checks the stream's last generated id is the one
the relay last wrote (or found). If it is not, Redis lost or gained entries behind our back
(a restart without persistence, a failover, a flush, a second relay) and nothing is written:
the relay then restarts from the stream's real top. So ids only ever grow by the events
that follow the top, and the stream holds each event once, in order, without holes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import redis.asyncio as redis

from services.runtime.settings import DEFAULTS
from services.store.events import StoredEvent
from services.store.order import Cursor

EVENTS_STREAM = DEFAULTS.events_stream

_TOP_FUNCTION = """
local function top(key)
    if redis.call('EXISTS', key) == 0 then return '0-0' end
    local info = redis.call('XINFO', 'STREAM', key)
    for i = 1, #info, 2 do
        if info[i] == 'last-generated-id' then return info[i + 1] end
    end
    return '0-0'
end
"""

_TOP = _TOP_FUNCTION + "return top(KEYS[1])"

# ARGV: expected top id, MAXLEN ('' = none), then per event its id and 7 values.
_PUBLISH = (
    _TOP_FUNCTION
    + """
local current = top(KEYS[1])
if current ~= ARGV[1] then return {0, current} end
for i = 3, #ARGV, 8 do
    redis.call('XADD', KEYS[1], ARGV[i],
        'position', ARGV[i + 1], 'stream', ARGV[i + 2], 'version', ARGV[i + 3],
        'type', ARGV[i + 4], 'data', ARGV[i + 5], 'meta', ARGV[i + 6],
        'recorded_at', ARGV[i + 7])
end
if ARGV[2] ~= '' then redis.call('XTRIM', KEYS[1], 'MAXLEN', '~', ARGV[2]) end
return {1, top(KEYS[1])}
"""
)


def position_of(entry_id: bytes | str) -> int:
    """The event position an entry id stands for (``41-0`` -> 41)."""
    return Cursor.from_entry_id(entry_id).position


def entry_fields(event: StoredEvent) -> list[str | bytes]:
    """The entry's id and its seven field values, in the script's order."""
    return [
        event.cursor,
        str(event.position),
        event.stream,
        str(event.version),
        event.type,
        bytes(event.data),
        bytes(event.meta),
        event.recorded_at.isoformat(),
    ]


@dataclass(frozen=True)
class StreamWriteResult:
    """What a publish did: ``written`` False means the top was not ``expected``; ``top`` is
    the stream's last generated position afterwards."""

    written: bool
    top: Cursor


class StreamWriter:
    """Publishes batches to one stream; any number of relays may share a stream safely."""

    def __init__(self, client: redis.Redis, stream: str = EVENTS_STREAM) -> None:
        self.client, self.stream = client, stream
        self._top = client.register_script(_TOP)
        self._publish = client.register_script(_PUBLISH)

    async def top(self) -> Cursor:
        """The last event the stream was given (``0-0`` for a missing or new stream)."""
        reply: Any = await self._top(keys=[self.stream])
        return Cursor.from_entry_id(reply)

    async def publish(
        self, events: Sequence[StoredEvent], expected_top: Cursor, maxlen: int | None
    ) -> StreamWriteResult:
        """Append ``events`` if the stream's top is still ``expected_top``."""
        args: list[str | bytes | int] = [expected_top.entry_id, str(maxlen or "")]
        for event in events:
            args += entry_fields(event)
        reply: Any = await self._publish(keys=[self.stream], args=args)
        return StreamWriteResult(bool(reply[0]), Cursor.from_entry_id(reply[1]))

    async def trim_before(self, first: Cursor) -> None:
        """Drop entries (approximately, whole nodes) before ``first``."""
        await self.client.xtrim(self.stream, minid=first.entry_id, approximate=True)
