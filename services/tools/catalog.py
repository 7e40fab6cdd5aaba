"""The tool catalog: tools by address, builtins from code and the rest from the `tool` table."""

from __future__ import annotations

import time

import asyncpg
import msgspec

from domain.events import ToolRegistered
from domain.tools import BUILTIN_TOOLS

# The catalog changes rarely; a short cache spares a query per step.
TOOL_CACHE_SECONDS = 2.0
_tool = msgspec.json.Decoder(ToolRegistered)


class ToolCatalog:
    """Looks up tools by address: builtins from code, the rest from the `tool` table."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool
        self._cache: dict[str, tuple[float, ToolRegistered | None]] = {}

    async def find(self, address: str) -> ToolRegistered | None:
        """The tool registered at ``address`` (None: no such tool), at most a moment old."""
        if address in BUILTIN_TOOLS:
            return BUILTIN_TOOLS[address]
        cached = self._cache.get(address)
        if cached is not None and time.monotonic() - cached[0] < TOOL_CACHE_SECONDS:
            return cached[1]
        text = await self.pool.fetchval(
            "SELECT definition::text FROM tool WHERE address = $1", address
        )
        tool = None if text is None else _tool.decode(text)
        self._cache[address] = (time.monotonic(), tool)
        return tool
