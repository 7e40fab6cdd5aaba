"""Recording a group of commands in the caller's transaction: all together, or one by one.

Both ways take their locks in the same order, every key before any stream and each kind in
one sorted order, so two groups (or a group and a single append, which also claims its key
before it locks its streams) wait for each other but never deadlock.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import msgspec

from domain.envelope import Envelope, EventMeta
from projections.base import Connection, ProjectionSet
from services.store.command_log import claim_keys, prior_uses, remember_results
from services.store.errors import IdempotencyKeyReused, StreamBusy, VersionConflict
from services.store.events import (
    AppendResult,
    Command,
    StreamAppend,
    append_claimed,
    insert_commands,
    lock_versions,
    number_events,
)
from services.store.group_insert import insert_unversioned

CommandOutcome = AppendResult | Exception


@dataclass(frozen=True)
class Pending:
    """A command waiting to be recorded; in a group, no two share an idempotency key."""

    appends: list[StreamAppend]
    meta: EventMeta
    fingerprint: str

    @property
    def key(self) -> tuple[str, str] | None:
        """Its (actor, idempotency key), if it has a key."""
        key = self.meta.idempotency_key
        return None if key is None else (self.meta.actor, key)


_result = msgspec.json.Decoder(AppendResult)
# The keys of commands that failed after claiming them: as if their transaction rolled back.
_FORGET = """
DELETE FROM command_log c USING unnest($1::text[], $2::text[]) AS k(actor, key)
WHERE c.actor = k.actor AND c.idempotency_key = k.key
"""


async def record_together(
    conn: Connection, commands: Sequence[Pending], projections: ProjectionSet
) -> list[CommandOutcome]:
    """Record the group set-based; each command's result, or the exception that refused it.

    Raises if a statement fails: the caller rolls back and uses ``record_each``.
    """
    outcomes = await _claim(conn, commands)
    fresh = [i for i, outcome in enumerate(outcomes) if outcome is None]
    for i, envelopes in await _insert(conn, commands, fresh, outcomes, projections):
        outcomes[i] = AppendResult(
            first_position=min(e.position for e in envelopes),
            last_position=max(e.position for e in envelopes),
            versions={e.stream: e.version for e in envelopes},
        )
    await _settle_keys(conn, commands, fresh, outcomes)
    return [outcome for outcome in outcomes if outcome is not None]


async def record_each(
    conn: Connection, commands: Sequence[Pending], projections: ProjectionSet
) -> list[CommandOutcome]:
    """Record the commands one by one, each under a savepoint: a failing one fails alone."""
    outcomes = await _claim(conn, commands)
    fresh = [i for i, outcome in enumerate(outcomes) if outcome is None]
    try:  # every stream at once, in the one order; each command's lock below is then held
        async with conn.transaction():
            await lock_versions(conn, _streams(commands, fresh))
    except StreamBusy:
        pass  # each command then waits for its own streams; the busy one fails on its own
    for i in fresh:
        command = commands[i]
        try:
            async with conn.transaction():
                outcomes[i] = await append_claimed(conn, command.appends, command.meta, projections)
        except Exception as exc:
            outcomes[i] = exc
    await _settle_keys(conn, commands, fresh, outcomes, remember=False)
    return [outcome for outcome in outcomes if outcome is not None]


async def _insert(
    conn: Connection,
    commands: Sequence[Pending],
    fresh: list[int],
    outcomes: list[CommandOutcome | None],
    projections: ProjectionSet,
) -> list[tuple[int, list[Envelope]]]:
    """Insert and project the fresh commands whose expected versions hold (the others get
    their VersionConflict); each inserted command's index and envelopes."""
    if not fresh:
        return []
    if not any(a.expected_version is not None for i in fresh for a in commands[i].appends):
        # Nothing to check between the lock and the insert: one statement does both.
        found = await insert_unversioned(conn, _commands(commands, fresh), projections)
        return list(zip(fresh, found, strict=True))
    start = await lock_versions(conn, _streams(commands, fresh))
    accepted = _numbered(commands, fresh, dict(start), outcomes)
    if not accepted:
        return []
    found = await insert_commands(conn, _commands(commands, accepted), projections, versions=start)
    return list(zip(accepted, found, strict=True))


def _commands(commands: Sequence[Pending], chosen: list[int]) -> list[Command]:
    return [Command(commands[i].appends, commands[i].meta) for i in chosen]


def _streams(commands: Sequence[Pending], chosen: list[int]) -> list[str]:
    return sorted({a.stream for i in chosen for a in commands[i].appends})


def _numbered(
    commands: Sequence[Pending],
    fresh: list[int],
    versions: dict[str, int],
    outcomes: list[CommandOutcome | None],
) -> list[int]:
    """The commands whose expected versions hold when the group's commands are applied in
    order (each after the ones accepted before it); the others get their VersionConflict."""
    accepted = []
    for i in fresh:
        appends = commands[i].appends
        mine = {a.stream: versions[a.stream] for a in appends}
        try:
            number_events(appends, mine)
        except (VersionConflict, ValueError) as exc:
            outcomes[i] = exc
            continue
        versions.update(mine)
        accepted.append(i)
    return accepted


async def _claim(conn: Connection, commands: Sequence[Pending]) -> list[CommandOutcome | None]:
    """Claim every key in one statement; a command whose key was used before gets the
    original result (replayed) or IdempotencyKeyReused. None: to be recorded.

    A concurrent first use holds its row until it commits, so the claim waits for it and then
    reads its result instead of recording the command twice.
    """
    outcomes: list[CommandOutcome | None] = [None] * len(commands)
    keyed = sorted(
        (i for i, c in enumerate(commands) if c.key is not None),
        key=lambda i: commands[i].key or ("", ""),
    )
    if not keyed:
        return outcomes
    keys = [commands[i].key or ("", "") for i in keyed]
    claimed = await claim_keys(
        conn,
        [actor for actor, _ in keys],
        [key for _, key in keys],
        [commands[i].fingerprint for i in keyed],
    )
    taken = [(i, key) for i, key in zip(keyed, keys, strict=True) if key not in claimed]
    if taken:
        prior = await prior_uses(conn, [k[0] for _, k in taken], [k[1] for _, k in taken])
        for i, key in taken:
            fingerprint, result = prior[key]
            outcomes[i] = _replayed(commands[i], fingerprint, result)
    return outcomes


def _replayed(command: Pending, fingerprint: str, result: str) -> CommandOutcome:
    key = command.key
    assert key is not None
    if fingerprint != command.fingerprint:
        return IdempotencyKeyReused(key[1])
    try:
        original = _result.decode(result)
    except msgspec.ValidationError as exc:  # kept without its result (an ingest batch)
        return exc
    return msgspec.structs.replace(original, replayed=True)


async def _settle_keys(
    conn: Connection,
    commands: Sequence[Pending],
    fresh: list[int],
    outcomes: list[CommandOutcome | None],
    *,
    remember: bool = True,
) -> None:
    """Keep the results of recorded keyed commands for their repeats (unless already kept),
    and free the keys of those that failed after claiming them."""
    kept = [
        (commands[i].key, outcome)
        for i in fresh
        if commands[i].key is not None and isinstance(outcome := outcomes[i], AppendResult)
    ]
    failed = [
        commands[i].key
        for i in fresh
        if commands[i].key is not None and isinstance(outcomes[i], Exception)
    ]
    if remember and kept:
        await remember_results(
            conn,
            [key[0] for key, _ in kept if key is not None],
            [key[1] for key, _ in kept if key is not None],
            [msgspec.json.encode(result).decode() for _, result in kept],
        )
    if failed:
        await conn.execute(
            _FORGET,
            [key[0] for key in failed if key is not None],
            [key[1] for key in failed if key is not None],
        )
