"""`ordinaut events replay`: re-publish a range of the log to a Redis stream or JSON lines."""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

import asyncpg
import redis.asyncio as redis
from redis.exceptions import RedisError

from services.cli.progress import ProgressBar
from services.cli.up import require_current_schema
from services.relay.replay import JsonlSink, RedisSink, ReplayError, Sink, replay_events
from services.runtime.servers import start_servers
from services.runtime.settings import Settings
from services.store.audit import EventFilter
from services.store.errors import UnknownCursor
from services.store.read import cursor_at


class BoundError(ValueError):
    """A --from/--to value that is neither a position nor an ISO time."""


def _bound(option: str, raw: str | None) -> int | datetime | None:
    """A position (whole number >= 1) or an ISO-8601 instant (UTC if it has no offset)."""
    if raw is None:
        return None
    if raw.isdigit():
        if int(raw) < 1:
            raise BoundError(f"{option} must be a position of at least 1, not {raw}")
        return int(raw)
    try:
        instant = datetime.fromisoformat(raw)
    except ValueError:
        raise BoundError(f"{option} must be a position or an ISO-8601 time, not {raw!r}") from None
    return instant if instant.utcoffset() is not None else instant.replace(tzinfo=UTC)


def event_filter(args: argparse.Namespace) -> EventFilter:
    """The events --type, --stream and time bounds select (positions: see position_bounds)."""
    start, end = _bound("--from", args.start), _bound("--to", args.end)
    types = tuple(t.strip() for v in args.types or () for t in v.split(",") if t.strip())
    return EventFilter(
        stream=args.stream,
        types=types,
        since=start if isinstance(start, datetime) else None,
        until=end if isinstance(end, datetime) else None,
    )


def position_bounds(args: argparse.Namespace) -> tuple[int | None, int | None]:
    """The --from/--to positions, if given as positions (both inclusive)."""
    start, end = _bound("--from", args.start), _bound("--to", args.end)
    return (start if isinstance(start, int) else None, end if isinstance(end, int) else None)


async def _with_positions(
    conn: asyncpg.Connection, where: EventFilter, bounds: tuple[int | None, int | None]
) -> EventFilter:
    """The range from the event at one position to the event at another, in the log's order."""
    try:
        first = None if bounds[0] is None else await cursor_at(conn, bounds[0])
        last = None if bounds[1] is None else await cursor_at(conn, bounds[1])
    except UnknownCursor as exc:
        raise ReplayError(str(exc)) from None
    return dataclasses.replace(where, first=first, last=last)


@contextlib.contextmanager
def _output(path: str) -> Iterator[IO[bytes]]:
    if path == "-":
        yield sys.stdout.buffer
        return
    try:
        with Path(path).open("wb") as handle:
            yield handle
    except OSError as exc:
        raise ReplayError(f"cannot write {path}: {exc.strerror}") from None


async def _replay(
    database_url: str, where: EventFilter, sink: Sink, bounds: tuple[int | None, int | None]
) -> int:
    conn = await asyncpg.connect(database_url)
    try:
        where = await _with_positions(conn, where, bounds)
        bar = ProgressBar("replaying")
        count = await replay_events(conn, where, sink, progress=bar.update)
        bar.finish()
        return count
    finally:
        await conn.close()


async def run_replay(args: argparse.Namespace, settings: Settings) -> int:
    """Replay what the arguments select; returns how many events were sent."""
    where, bounds = event_filter(args), position_bounds(args)
    to_redis = args.to_redis is not None
    servers = await start_servers(
        settings.database_url, settings.redis_url, settings.data_dir, with_redis=to_redis
    )
    try:
        await require_current_schema(servers.database_url)
        if not to_redis:
            with _output(args.jsonl) as output:
                return await _replay(servers.database_url, where, JsonlSink(output), bounds)
        async with redis.Redis.from_url(servers.redis_url, socket_timeout=10) as client:
            try:
                return await _replay(
                    servers.database_url, where, RedisSink(client, args.to_redis), bounds
                )
            except (RedisError, OSError) as exc:
                raise ReplayError(f"Redis failed during the replay: {exc}") from None
    finally:
        await servers.stop()
