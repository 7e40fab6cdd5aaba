"""Appenders for the concurrency test; also run as a second process:
``python -m tests.integration.concurrent_appender URL SEED APPENDERS TRANSACTIONS`` prints
``{"committed": [...], "aborted": [...]}`` (event ids)."""

from __future__ import annotations

import asyncio
import random
import sys
import uuid

import asyncpg
import msgspec

from domain.envelope import EventMeta
from domain.events import EventReceived
from projections.registry import inline_projections
from services.store.events import StreamAppend, append_in_transaction


class _Abort(Exception):
    pass


async def _appender(pool: asyncpg.Pool, seed: int, count: int, out: dict[str, list[str]]) -> None:
    rng, projections = random.Random(seed), inline_projections()
    for _ in range(count):
        ids = [str(uuid.UUID(int=rng.getrandbits(128))) for _ in range(rng.choice((1, 1, 2, 3)))]
        events = [EventReceived(event_id=i, topic="conc", payload={}) for i in ids]
        roll = rng.random()
        hold = 1.5 if roll < 0.03 else rng.uniform(0, 0.02)  # a few long transactions
        abort = rng.random() < 0.15
        meta = EventMeta(actor="conc", correlation_id=ids[0])
        try:
            async with pool.acquire() as conn, conn.transaction():
                stream = f"conc-{rng.randrange(40)}"
                await append_in_transaction(conn, [StreamAppend(stream, events)], meta, projections)
                await asyncio.sleep(hold)
                if abort:
                    raise _Abort()
        except _Abort:
            out["aborted"] += ids
        else:
            out["committed"] += ids


async def run(url: str, seed: int, appenders: int, transactions: int) -> dict[str, list[str]]:
    """``appenders`` concurrent appenders, ``transactions`` each; the ids they committed/aborted."""
    out: dict[str, list[str]] = {"committed": [], "aborted": []}
    async with asyncpg.create_pool(url, min_size=appenders, max_size=appenders) as pool:
        await asyncio.gather(
            *(_appender(pool, seed * 1000 + i, transactions, out) for i in range(appenders))
        )
    return out


if __name__ == "__main__":
    url, seed, appenders, transactions = sys.argv[1], *map(int, sys.argv[2:5])
    result = asyncio.run(run(url, seed, appenders, transactions))
    sys.stdout.write(msgspec.json.encode(result).decode())
