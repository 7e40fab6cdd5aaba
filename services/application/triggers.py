"""Recording external events and the runs they fire (trigger fan-out): POST /events, the
publish_event tool and the ingest stream all come through here.

Each event is one command: its ``event.received``, the ``run.queued`` of every event task it
matches and the ``condition.evaluated`` (+ run) of every condition task it moves, appended in
one transaction. So a run exists exactly when its event does, and an idempotent repeat (whose
key is already in ``command_log``) appends nothing and fires nothing. Many events can be
recorded in one transaction (ingest batches); each keeps its own idempotency key and actor.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import msgspec

from domain.envelope import EventMeta
from domain.events import (
    ConditionEvaluated,
    Event,
    EventReceived,
    RunDebounced,
    RunQueued,
    RunResumed,
    condition_stream,
    run_stream,
)
from domain.ownership import ADMIN
from domain.triggers import (
    ConditionState,
    decide_triggers,
    event_context,
    evolve_condition,
)
from domain.waits import decide_resumes
from projections.base import Connection, ProjectionSet
from services.store.command_log import claim_keys, prior_uses, remember_results
from services.store.debounces import collecting_runs
from services.store.errors import IdempotencyKeyReused
from services.store.events import Command, StreamAppend, insert_commands, lock_streams
from services.store.publications import event_id_at, lock_runs, read_subscribers
from services.store.wait_resumes import hold_for_publication, waiting_runs


class PublishResult(msgspec.Struct, frozen=True, kw_only=True):
    """Where an event landed and what it fired; kept in ``command_log`` for repeats.

    ``first_position``/``last_position``/``versions`` keep the shape of the store's AppendResult.
    """

    first_position: int
    last_position: int = 0
    versions: dict[str, int] = msgspec.field(default_factory=dict)
    event_id: str | None = None
    triggered_tasks: list[str] = msgspec.field(default_factory=list)
    run_ids: list[str] = msgspec.field(default_factory=list)
    replayed: bool = False
    # Waiting runs (orchestrator.wait_for_event) this event resumed.
    resumed_runs: list[str] = msgspec.field(default_factory=list)

    @property
    def position(self) -> int:
        """The event's position (it is its command's first event)."""
        return self.first_position


@dataclass(frozen=True)
class Publication:
    """An external event to record, and who records it."""

    topic: str
    payload: dict[str, Any]
    meta: EventMeta
    occurred_at: datetime | None = None
    source: str = "api"
    event_id: str = field(default_factory=lambda: str(uuid.uuid4()))

    def fingerprint(self) -> str:
        """What a repeat with the same idempotency key must also carry."""
        body = msgspec.json.encode([self.topic, self.payload, self.occurred_at])
        return hashlib.sha256(body).hexdigest()


PublishOutcome = PublishResult | IdempotencyKeyReused
_result = msgspec.json.Decoder(PublishResult)


async def publish_many(
    conn: Connection,
    projections: ProjectionSet,
    publications: Sequence[Publication],
    now: datetime | None = None,
    *,
    remember: bool = True,
) -> list[PublishOutcome]:
    """Record the events (in the caller's transaction); one outcome per publication.

    A publication whose key was used before (or earlier in the batch) gets the first result,
    marked ``replayed``; one whose key was used for something else gets IdempotencyKeyReused.
    Without ``remember`` only the keys are kept, not the results (a repeat then learns only
    that it is one): ingest needs no answer, and saves a write per event.
    """
    outcomes: list[PublishOutcome | None] = [None] * len(publications)
    first_of = await _claim_keys(conn, publications, outcomes)
    fresh = [i for i, outcome in enumerate(outcomes) if outcome is None and first_of[i] == i]
    if fresh:
        results = await _record(
            conn, projections, [publications[i] for i in fresh], now or datetime.now(UTC)
        )
        for index, result in zip(fresh, results, strict=True):
            outcomes[index] = result
        if remember:
            await _remember(conn, [publications[i] for i in fresh], results)
    for index, first in enumerate(first_of):
        if outcomes[index] is None:  # a repeat of an earlier publication in this batch
            prior = outcomes[first]
            same = publications[index].fingerprint() == publications[first].fingerprint()
            if isinstance(prior, PublishResult) and same:
                outcomes[index] = msgspec.structs.replace(prior, replayed=True)
            else:
                outcomes[index] = IdempotencyKeyReused(
                    str(publications[index].meta.idempotency_key)
                )
    return [outcome for outcome in outcomes if outcome is not None]


async def publish_external(
    conn: Connection, projections: ProjectionSet, publication: Publication
) -> PublishResult:
    """Record one event; raises IdempotencyKeyReused for a key used with other content."""
    (outcome,) = await publish_many(conn, projections, [publication])
    if isinstance(outcome, IdempotencyKeyReused):
        raise outcome
    return outcome


async def _claim_keys(
    conn: Connection, publications: Sequence[Publication], outcomes: list[PublishOutcome | None]
) -> list[int]:
    """Reserve every key; fill in the outcome of keys used before. For each publication, the
    index of the first one in the batch with its (actor, key): itself unless it repeats one.

    A concurrent first use holds its row until it commits, so a repeat waits here and then
    reads that result instead of recording the event twice.
    """
    first_of, seen = list(range(len(publications))), dict[tuple[str, str], int]()
    for index, p in enumerate(publications):
        if p.meta.idempotency_key is not None:
            first_of[index] = seen.setdefault((p.meta.actor, p.meta.idempotency_key), index)
    keyed = [
        i
        for i, first in enumerate(first_of)
        if first == i and publications[i].meta.idempotency_key is not None
    ]
    if not keyed:
        return first_of
    # Claimed in one order by everyone, so two batches sharing keys wait, never deadlock.
    keyed.sort(
        key=lambda i: (publications[i].meta.actor, str(publications[i].meta.idempotency_key))
    )
    actors = [publications[i].meta.actor for i in keyed]
    keys = [str(publications[i].meta.idempotency_key) for i in keyed]
    fingerprints = [publications[i].fingerprint() for i in keyed]
    claimed = await claim_keys(conn, actors, keys, fingerprints)
    taken = [
        (i, a, k) for i, a, k in zip(keyed, actors, keys, strict=True) if (a, k) not in claimed
    ]
    if taken:
        prior = await prior_uses(conn, [a for _, a, _ in taken], [k for _, _, k in taken])
        for index, actor, key in taken:
            fingerprint, result = prior[(actor, key)]
            outcomes[index] = await _replay(conn, publications[index], fingerprint, result)
    return first_of


async def _replay(
    conn: Connection, p: Publication, fingerprint: str, result: str
) -> PublishOutcome:
    if fingerprint != p.fingerprint():
        return IdempotencyKeyReused(str(p.meta.idempotency_key))
    if result == "null":  # recorded without its result (see remember)
        return PublishResult(first_position=0, replayed=True)
    original = _result.decode(result)
    if original.event_id is None:  # recorded before results named their event
        event_id = await event_id_at(conn, original.first_position)
        original = msgspec.structs.replace(original, event_id=event_id)
    return msgspec.structs.replace(original, replayed=True)


async def _record(
    conn: Connection, projections: ProjectionSet, publications: list[Publication], now: datetime
) -> list[PublishResult]:
    """Append each publication's event and what it fires, as one command each."""
    # Subscribers are read FOR SHARE: a task cannot be paused or changed before these events
    # commit (a pause waits; a paused task is not fired). Condition states are read with their
    # condition streams locked: two events never both decide from the same state, and the
    # second sees what the first recorded. No global lock: publications of unrelated topics
    # and conditions run concurrently.
    await hold_for_publication(conn)
    events = [_received(p) for p in publications]
    topics = sorted({e.topic for e in events})
    subscribers, states = await read_subscribers(conn, topics)
    conditions = [
        condition_stream(s.task_id)
        for s in subscribers
        if s.definition.schedule_kind == "condition"
    ]
    if conditions:
        await lock_streams(conn, conditions)
        subscribers, states = await read_subscribers(conn, topics)
    # Waiting runs and debounce windows this publication may join: their due_work rows are
    # locked (in run_id order, as the recorder and run commands lock them) and the lookups
    # read again, so a run a worker started, timed out or canceled meanwhile is not joined,
    # and a lease skips a run being joined until this commits.
    debounced = [s.task_id for s in subscribers if s.definition.debounce_seconds]
    waiting, resumed = await waiting_runs(conn, topics), set[str]()
    debouncing = await collecting_runs(conn, debounced)
    joined = sorted({w.run_id for w in waiting} | {run for run, _ in debouncing.values()})
    if joined:
        await lock_runs(conn, joined)
        waiting, debouncing = (
            await waiting_runs(conn, topics),
            await collecting_runs(conn, debounced),
        )
    commands: list[Command] = []
    for p, event in zip(publications, events, strict=True):
        fired = decide_triggers(
            event, subscribers, states, now, lambda: str(uuid.uuid4()), debouncing
        )
        fired += decide_resumes(event_context(event), p.meta.actor, waiting, resumed, now)
        for change in fired:
            if isinstance(change, ConditionEvaluated):
                states[change.task_id] = evolve_condition(
                    states.get(change.task_id, ConditionState()), change
                )
        commands.append(
            Command([StreamAppend(f"topic-{p.topic}", [event]), *_appends(fired)], p.meta)
        )
    envelopes = await insert_commands(conn, commands, projections)
    return [_result_of(command, found) for command, found in zip(commands, envelopes, strict=True)]


def _received(p: Publication) -> EventReceived:
    return EventReceived(
        event_id=p.event_id,
        topic=p.topic,
        payload=p.payload,
        occurred_at=p.occurred_at,
        source=p.source,
    )


def _appends(fired: list[Event]) -> list[StreamAppend]:
    appends = []
    for event in fired:
        if isinstance(event, RunQueued):
            appends.append(StreamAppend(run_stream(event.run_id), [event], expected_version=0))
        elif isinstance(event, ConditionEvaluated):
            appends.append(StreamAppend(condition_stream(event.task_id), [event]))
        elif isinstance(event, RunResumed | RunDebounced):
            appends.append(StreamAppend(run_stream(event.run_id), [event]))
    return appends


def _result_of(command: Command, envelopes: list[Any]) -> PublishResult:
    runs = [e.event for e in envelopes if isinstance(e.event, RunQueued)]
    received = envelopes[0].event
    assert isinstance(received, EventReceived)
    return PublishResult(
        first_position=envelopes[0].position,
        last_position=envelopes[-1].position,
        versions={e.stream: e.version for e in envelopes},
        event_id=received.event_id,
        # Only the publisher's own tasks (the admin's: all): another agent's task ids, and so
        # which topics it listens to, are not the publisher's to learn.
        triggered_tasks=list(
            dict.fromkeys(run.task_id for run in runs if _visible(run.owner, command.meta.actor))
        ),
        run_ids=[run.run_id for run in runs],
        resumed_runs=[e.event.run_id for e in envelopes if isinstance(e.event, RunResumed)],
    )


def _visible(owner: str, actor: str) -> bool:
    return actor in (owner, ADMIN)


async def _remember(
    conn: Connection, publications: list[Publication], results: list[PublishResult]
) -> None:
    keyed = [
        (p, r)
        for p, r in zip(publications, results, strict=True)
        if p.meta.idempotency_key is not None
    ]
    if keyed:
        await remember_results(
            conn,
            [p.meta.actor for p, _ in keyed],
            [p.meta.idempotency_key for p, _ in keyed],
            [msgspec.json.encode(r).decode() for _, r in keyed],
        )
