"""What a projection is, and the set of them the store applies inline."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, Protocol, TypeAlias

import asyncpg
from asyncpg.pool import PoolConnectionProxy

from domain.envelope import Envelope

# A connection of its own or one lent by a pool: every query function accepts either.
Connection: TypeAlias = "asyncpg.Connection[Any] | PoolConnectionProxy[Any]"


class Projection(Protocol):
    """A read model: the event types it handles and how each one changes its tables."""

    name: str
    handles: frozenset[str]
    tables: tuple[str, ...]

    async def apply(self, conn: Connection, envelope: Envelope) -> None:
        """Change the read model for one event; runs inside the append transaction."""


class ProjectionSet:
    """The inline projections, indexed by the event types they handle."""

    def __init__(self, projections: Iterable[Projection]) -> None:
        self.projections = tuple(projections)
        self._by_type: dict[str, list[Projection]] = {}
        for projection in self.projections:
            for event_type in projection.handles:
                self._by_type.setdefault(event_type, []).append(projection)

    def named(self, names: Iterable[str]) -> ProjectionSet:
        """The subset with these names; an unknown name raises KeyError."""
        known = {p.name: p for p in self.projections}
        return ProjectionSet(known[name] for name in names)

    async def apply(self, conn: Connection, envelopes: Sequence[Envelope]) -> None:
        """Apply events in order and move every checkpoint to the last position."""
        if not envelopes:
            return
        for envelope in envelopes:
            for projection in self._by_type.get(envelope.type, ()):
                await projection.apply(conn, envelope)
        await conn.execute(
            "UPDATE projection_checkpoints SET position = $1 WHERE name = ANY($2::text[])",
            envelopes[-1].position,
            [p.name for p in self.projections],
        )
