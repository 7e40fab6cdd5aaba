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


def _waves(envelopes: Sequence[Envelope]) -> list[list[Envelope]]:
    """Split a batch so that each wave holds at most one event per stream, in stream order:
    every projection then sees a stream's next event only after all of them applied the one
    before it (what a rule that reads another model's row needs, see ``reads_across``)."""
    waves: list[list[Envelope]] = []
    seen: dict[str, int] = {}
    for envelope in envelopes:
        index = seen.get(envelope.stream, 0)
        seen[envelope.stream] = index + 1
        if index == len(waves):
            waves.append([])
        waves[index].append(envelope)
    return waves


class ProjectionSet:
    """The inline projections, indexed by the event types they handle."""

    def __init__(self, projections: Iterable[Projection]) -> None:
        self.projections = tuple(projections)
        self._by_type: dict[str, list[Projection]] = {}
        for projection in self.projections:
            for event_type in projection.handles:
                self._by_type.setdefault(event_type, []).append(projection)
        # Event types whose rule reads another model's row as the batch's earlier events left
        # it: a batch holding one is applied wave by wave, every model in step.
        self._read_across = frozenset().union(
            *(getattr(p, "reads_across", frozenset()) for p in self.projections)
        )

    @property
    def handles(self) -> frozenset[str]:
        """Every event type some projection of the set handles."""
        return frozenset(self._by_type)

    def handlers(self, event_type: str) -> tuple[Projection, ...]:
        """The projections of the set that handle this event type, in the set's order."""
        return tuple(self._by_type.get(event_type, ()))

    def named(self, names: Iterable[str]) -> ProjectionSet:
        """The subset with these names; an unknown name raises KeyError."""
        known = {p.name: p for p in self.projections}
        return ProjectionSet(known[name] for name in names)

    def _split(self, envelopes: Sequence[Envelope]) -> list[tuple[Projection, list[Envelope]]]:
        """Each projection with its events of ``envelopes`` (in order), in the set's order.

        One pass over the events: asking every projection about every event read each event's
        type once per projection (ten of them), a tenth of a batch's Python time in a worker.
        """
        mine: dict[Projection, list[Envelope]] = {}
        for envelope in envelopes:
            for projection in self._by_type.get(envelope.type, ()):
                mine.setdefault(projection, []).append(envelope)
        return [(p, mine[p]) for p in self.projections if p in mine]

    async def _apply_wave(self, conn: Connection, wave: list[Envelope]) -> None:
        """Each projection in turn, on its events of the wave."""
        for projection, mine in self._split(wave):
            await _apply_one(conn, projection, mine)

    async def apply(self, conn: Connection, envelopes: Sequence[Envelope]) -> None:
        """Apply events in order.

        No checkpoint moves here: every append would write that one shared row, and appends
        would queue on it. Inline read models are current by construction; a reader that
        needs a checkpoint (the rebuild) keeps its own.
        """
        if not envelopes:
            return
        if any(e.type in self._read_across for e in envelopes):
            for wave in _waves([e for e in envelopes if e.type in self._by_type]):
                await self._apply_wave(conn, wave)
            return
        # No rule reads another model's row mid-batch: each projection takes all its events
        # at once (each keeps a row's events in order), so a row that several events change
        # (a run's last step and its end) is read and written once, not once per wave.
        for projection, mine in self._split(envelopes):
            await _apply_one(conn, projection, mine)


async def _apply_one(conn: Connection, projection: Projection, envelopes: list[Envelope]) -> None:
    """One projection on a batch: at once if it can (``apply_batch``: it reads and writes the
    batch's rows together, keeping each row's events in order), else event by event."""
    batch = getattr(projection, "apply_batch", None)
    if batch is not None:
        await batch(conn, envelopes)
        return
    for envelope in envelopes:
        await projection.apply(conn, envelope)
