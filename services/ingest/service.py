"""The ingest consumer as a supervised component, with its own pool and Redis client."""

from __future__ import annotations

import asyncio

import redis.asyncio as redis

from services.ingest.consumer import IngestConfig, IngestConsumer
from services.store.pool import open_pool


async def run_ingest(
    database_url: str, redis_url: str, config: IngestConfig, stop: asyncio.Event
) -> None:
    """Consume `ordinaut:ingest` until ``stop``."""
    from projections.registry import inline_projections

    client = redis.Redis.from_url(redis_url, socket_timeout=10.0, socket_connect_timeout=2.0)
    try:
        async with open_pool(database_url, size=3) as pool:
            await IngestConsumer(pool, client, inline_projections(), config).run(stop)
    finally:
        await client.aclose()
