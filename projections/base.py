"""What a projection is, and the set of them the store applies inline."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
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


Statement: TypeAlias = tuple[str, tuple[Any, ...]]


class PlannedProjection(Projection, Protocol):
    """A projection that can say which statements an event needs instead of running them,
    so that a batch of events costs one round trip per kind of statement, not per event.
    """

    # Each statement's set-based form, where it has one: the same parameters, each an array
    # with one element per event, so many events cost one statement, not one per event.
    many: Mapping[str, str]

    def plan(self, envelope: Envelope) -> list[Statement]:
        """The parameterised statements that apply ``envelope``, in order."""


async def run_plan(conn: Connection, statements: list[Statement]) -> None:
    """Execute a single event's plan (the unbatched path)."""
    for sql, args in statements:
        await conn.execute(sql, *args)


def _waves(envelopes: Sequence[Envelope]) -> list[list[Envelope]]:
    """Split a batch so that each wave holds at most one event per stream, in stream order.

    Events of different streams change different rows, so within a wave their order does
    not matter and equal statements can be sent together; waves keep each stream's order.
    """
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

    def named(self, names: Iterable[str]) -> ProjectionSet:
        """The subset with these names; an unknown name raises KeyError."""
        known = {p.name: p for p in self.projections}
        return ProjectionSet(known[name] for name in names)

    def _mine(self, projection: Projection, envelopes: Sequence[Envelope]) -> list[Envelope]:
        return [e for e in envelopes if projection in self._by_type.get(e.type, ())]

    async def _apply_wave(self, conn: Connection, wave: list[Envelope]) -> None:
        """Each projection in turn, on its events of the wave."""
        for projection in self.projections:
            if mine := self._mine(projection, wave):
                await _apply_one(conn, projection, mine)

    async def apply(self, conn: Connection, envelopes: Sequence[Envelope]) -> None:
        """Apply events in order.

        No checkpoint moves here: every append would write that one shared row, and appends
        would queue on it. Inline read models are current by construction; a reader that
        needs a checkpoint (the rebuild) keeps its own.
        """
        if not envelopes:
            return
        # Events no read model handles (e.g. event.received) must not split the batch into
        # more waves: each wave costs a round trip per kind of statement.
        handled = [e for e in envelopes if e.type in self._by_type]
        if any(e.type in self._read_across for e in handled):
            for wave in _waves(handled):
                await self._apply_wave(conn, wave)
            return
        # No rule reads another model's row mid-batch: a model kept by rules folds all its
        # events at once (fold_rows keeps each row's events in order), so a row that several
        # events change (a run's last step and its end) is read and written once, not once
        # per wave; planned statements still go wave by wave.
        for projection in self.projections:
            mine = self._mine(projection, handled)
            if not mine:
                continue
            if getattr(projection, "apply_batch", None) is not None:
                await _apply_one(conn, projection, mine)
                continue
            for wave in _waves(mine):
                await _apply_one(conn, projection, wave)


async def _apply_one(conn: Connection, projection: Projection, envelopes: list[Envelope]) -> None:
    """One projection on a batch: kept by rules (``apply_batch``, projections/rows.py), it reads
    and writes the batch's rows at once; planned, it sends each kind of statement once
    (set-based where it has that form), so the batch must hold one event per stream."""
    batch = getattr(projection, "apply_batch", None)
    if batch is not None:
        await batch(conn, envelopes)
        return
    plan = getattr(projection, "plan", None)
    if plan is None:
        for envelope in envelopes:
            await projection.apply(conn, envelope)
        return
    grouped: dict[str, list[tuple[Any, ...]]] = {}
    for envelope in envelopes:
        for sql, args in plan(envelope):
            grouped.setdefault(sql, []).append(args)
    many: Mapping[str, str] = getattr(projection, "many", {})
    for sql, rows in grouped.items():
        if len(rows) == 1:
            await conn.execute(sql, *rows[0])
        elif sql in many:
            await conn.execute(many[sql], *(list(column) for column in zip(*rows, strict=True)))
        else:
            await conn.executemany(sql, rows)
