"""Group commit: concurrent commands sharing transactions each get exactly their own outcome.

Random mixes of commands that succeed, conflict on a version, repeat an idempotency key, or fail
in the database (text PostgreSQL cannot store, which makes the group's statement fail and the
committer fall back to one savepoint per command) are sent at once through one committer. Each
must get what it would get alone, and nothing of a failed command may be visible afterwards.
Groups with no version or key to check are recorded in one statement that also files their
ownership rows; every recorded event must have exactly the rows the ownership projection gives.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from dataclasses import dataclass

import asyncpg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from domain.envelope import EventMeta
from domain.events import EventReceived
from domain.ownership import ADMIN
from projections.registry import inline_projections
from services.store.errors import IdempotencyKeyReused, UnstorableText, VersionConflict
from services.store.events import AppendResult, StreamAppend, read_stream
from services.store.group import GroupCommitter

KINDS = ("free", "new", "stale", "unstorable", "keyed", "keyed_unstorable", "keyed_stale")


@dataclass(frozen=True)
class Spec:
    """One command of an example: what kind it is and which stream or key it uses."""

    kind: str
    slot: int  # which of a few streams (or keys) of its kind


specs = st.lists(
    st.builds(Spec, st.sampled_from(KINDS), st.integers(0, 2)), min_size=1, max_size=24
)


@dataclass(frozen=True)
class Sent:
    spec: Spec
    event_ids: list[str]
    stream: str
    key: str | None
    actor: str


def _command(prefix: str, spec: Spec, n: int) -> tuple[Sent, list[StreamAppend], EventMeta]:
    bad = spec.kind in ("unstorable", "keyed_unstorable")
    stale = spec.kind in ("stale", "keyed_stale")
    stream = f"{prefix}-{'new' if spec.kind == 'new' else 'shared'}-{spec.slot}"
    key = f"{prefix}-{spec.kind}-{spec.slot}" if spec.kind.startswith("keyed") else None
    event_ids = [str(uuid.uuid4()) for _ in range(1 + n % 2)]
    events = [
        EventReceived(event_id=i, topic="group", payload={"text": "a\u0000b" if bad else "ok"})
        for i in event_ids
    ]
    expected = 0 if spec.kind == "new" else (10**6 if stale else None)
    actor = ADMIN if spec.slot == 2 else "tester"  # the admin's events get no ownership row
    meta = EventMeta(actor=actor, correlation_id=event_ids[0], idempotency_key=key)
    sent = Sent(spec, event_ids, stream, key, actor)
    return sent, [StreamAppend(stream, events, expected)], meta


async def _logged(pool: asyncpg.Pool, prefix: str) -> list[asyncpg.Record]:
    return await pool.fetch(
        "SELECT position, stream, version, data->>'event_id' AS event_id FROM events"
        " WHERE stream LIKE $1 ORDER BY position",
        f"{prefix}-%",
    )


@settings(
    max_examples=25,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(commands=specs, lanes=st.integers(1, 4), max_group=st.integers(1, 8))
async def test_each_command_gets_exactly_its_own_outcome(
    pool: asyncpg.Pool, commands: list[Spec], lanes: int, max_group: int
) -> None:
    prefix = uuid.uuid4().hex[:10]  # examples share the database, never a stream or a key
    committer = GroupCommitter(pool, inline_projections(), lanes=lanes, max_group=max_group)
    built = [_command(prefix, spec, n) for n, spec in enumerate(commands)]
    outcomes = await asyncio.gather(
        *(committer.append(appends, meta, fingerprint="fp") for _, appends, meta in built),
        return_exceptions=True,
    )
    sent = [s for s, _, _ in built]
    _check_outcomes(sent, outcomes)
    await _check_log(pool, prefix, sent, outcomes)


def _check_outcomes(sent: list[Sent], outcomes: list[AppendResult | BaseException]) -> None:
    for s, outcome in zip(sent, outcomes, strict=True):
        if s.spec.kind in ("unstorable", "keyed_unstorable"):
            assert isinstance(outcome, UnstorableText), (s, outcome)
        elif s.spec.kind in ("stale", "keyed_stale"):
            assert isinstance(outcome, VersionConflict), (s, outcome)
        elif s.spec.kind == "free":
            assert isinstance(outcome, AppendResult)
            assert not outcome.replayed
        elif s.spec.kind == "new":
            assert isinstance(outcome, AppendResult | VersionConflict), (s, outcome)
    new_winners = Counter(
        s.stream
        for s, o in zip(sent, outcomes, strict=True)
        if s.spec.kind == "new" and isinstance(o, AppendResult)
    )
    assert set(new_winners.values()) <= {1}
    assert set(new_winners) == {s.stream for s in sent if s.spec.kind == "new"}
    by_key: dict[str, list[AppendResult]] = {}
    for s, o in zip(sent, outcomes, strict=True):
        if s.spec.kind == "keyed":
            assert isinstance(o, AppendResult), (s, o)
            by_key.setdefault(str(s.key), []).append(o)
    for results in by_key.values():  # one original; every repeat answers with its result
        originals = [r for r in results if not r.replayed]
        assert len(originals) == 1
        original = originals[0]
        for r in results:
            assert (r.first_position, r.last_position, r.versions) == (
                original.first_position,
                original.last_position,
                original.versions,
            )


async def _check_log(
    pool: asyncpg.Pool, prefix: str, sent: list[Sent], outcomes: list[AppendResult | BaseException]
) -> None:
    rows = await _logged(pool, prefix)
    logged = Counter(row["event_id"] for row in rows)
    assert set(logged.values()) <= {1}
    recorded = [
        (s, o)
        for s, o in zip(sent, outcomes, strict=True)
        if isinstance(o, AppendResult) and not o.replayed
    ]
    expected_ids = {i for s, _ in recorded for i in s.event_ids}
    assert set(logged) == expected_ids  # nothing of a failed command or a repeat is visible
    position_of = {row["event_id"]: row for row in rows}
    for s, result in recorded:
        positions = [position_of[i]["position"] for i in s.event_ids]
        assert (min(positions), max(positions)) == (result.first_position, result.last_position)
        assert result.versions == {s.stream: position_of[s.event_ids[-1]]["version"]}
    versions: dict[str, list[int]] = {}
    for row in rows:
        versions.setdefault(row["stream"], []).append(row["version"])
    for numbers in versions.values():  # in log order, each stream's versions are 1..n
        assert numbers == list(range(1, len(numbers) + 1))
    owned = await pool.fetch(
        "SELECT o.position, o.owner FROM event_owner o JOIN events e USING (position)"
        " WHERE e.stream LIKE $1",
        f"{prefix}-%",
    )
    assert sorted((r["position"], r["owner"]) for r in owned) == sorted(
        (position_of[i]["position"], s.actor)
        for s, _ in recorded
        for i in s.event_ids
        if s.actor != ADMIN
    )
    keys = await pool.fetch(
        "SELECT idempotency_key FROM command_log WHERE idempotency_key LIKE $1", f"{prefix}-%"
    )
    assert {r["idempotency_key"] for r in keys} == {s.key for s in sent if s.spec.kind == "keyed"}


async def test_a_key_freed_by_a_failure_and_a_reused_key(pool: asyncpg.Pool) -> None:
    committer = GroupCommitter(pool, inline_projections())
    prefix = uuid.uuid4().hex[:10]
    good = _command(prefix, Spec("keyed", 0), 0)
    bad = _command(prefix, Spec("keyed_unstorable", 0), 0)
    first, failed = await asyncio.gather(
        committer.append(good[1], good[2], fingerprint="fp"),
        committer.append(bad[1], bad[2], fingerprint="fp"),
        return_exceptions=True,
    )
    assert isinstance(first, AppendResult)
    assert isinstance(failed, UnstorableText)
    with pytest.raises(IdempotencyKeyReused):
        await committer.append(good[1], good[2], fingerprint="other")
    # The failed command's key is free again: the same key with storable text is recorded.
    retry = _command(prefix, Spec("free", 0), 0)
    again = await committer.append(retry[1], bad[2], fingerprint="fp")
    assert not again.replayed


async def test_a_result_is_readable_when_returned(pool: asyncpg.Pool) -> None:
    committer = GroupCommitter(pool, inline_projections())
    prefix = uuid.uuid4().hex[:10]
    for n in range(3):
        sent, appends, meta = _command(prefix, Spec("free", 0), n)
        result = await committer.append(appends, meta)
        async with pool.acquire() as conn:
            stored = await read_stream(conn, sent.stream)
        assert stored[-1].version == result.versions[sent.stream]
        assert stored[-1].position == result.last_position
