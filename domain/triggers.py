"""Which tasks an external event fires: topic globs, filters, and condition edges (pure).

- Topic: a task's ``schedule_expr`` is a topic or an fnmatch-style glob (``calendar.*``,
  ``order.?``); ``*`` also crosses dots. Matching is case-sensitive.
- Filter: an optional JMESPath boolean over the event ``{topic, payload, occurred_at, source,
  event_id}``. A filter that fails on this event (not a boolean, a missing plain path) does not
  hold: one odd event must never stop others from being recorded.
- Condition tasks: ``condition`` is a JMESPath boolean over ``{event, state}``, ``state`` being
  ``{value, payload}``: the last recorded value (null before the first evaluation) and the
  payload of the event that set it. A run fires only on a false-to-true edge (an unknown value
  counts as false), and only value changes are recorded, as ``condition.evaluated``.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import Any

from domain.debounce import Debouncing, debounced
from domain.errors import RuleViolation
from domain.events import (
    ConditionEvaluated,
    Event,
    EventReceived,
    RunQueued,
    TaskDefinition,
)
from domain.templates import condition_holds


@dataclass(frozen=True)
class ConditionState:
    """What a condition task remembers between events."""

    value: bool | None = None
    payload: dict[str, Any] | None = None


@dataclass(frozen=True)
class Subscriber:
    """An active event or condition task that an event may fire."""

    task_id: str
    owner: str
    definition: TaskDefinition


def topic_matches(pattern: str, topic: str) -> bool:
    """Whether ``topic`` matches a task's topic or glob."""
    return fnmatch.fnmatchcase(topic, pattern)


def event_context(event: EventReceived) -> dict[str, Any]:
    """The event as filters, conditions and pipeline templates (``${event.*}``) see it."""
    return {
        "topic": event.topic,
        "payload": event.payload,
        "occurred_at": event.occurred_at.isoformat() if event.occurred_at else None,
        "source": event.source,
        "event_id": event.event_id,
    }


def holds(expression: str | None, context: Mapping[str, Any], now: datetime) -> bool | None:
    """An expression's value over ``context``; None when it cannot be evaluated."""
    if expression is None:
        return True
    try:
        return condition_holds(expression, context, now=now, field="filter")
    except (RuleViolation, ValueError, TypeError, RecursionError):
        # A user's expression that fails on one event must never stop it being recorded.
        return None


def edge(previous: bool | None, current: bool) -> tuple[bool, bool]:
    """(record, fire) for a condition that was ``previous`` and now is ``current``.

    Recorded when the value changes; fired only when it turns true from false or unknown.
    """
    return previous is not current, current and previous is not True


def evolve_condition(state: ConditionState, evaluated: ConditionEvaluated) -> ConditionState:
    """The state after a recorded evaluation."""
    return ConditionState(evaluated.value, evaluated.payload)


def decide_triggers(
    event: EventReceived,
    subscribers: Sequence[Subscriber],
    conditions: Mapping[str, ConditionState],
    now: datetime,
    new_id: Callable[[], str],
    debouncing: Debouncing | None = None,
) -> list[Event]:
    """The ``run.queued`` (and ``condition.evaluated``) events that ``event`` causes.

    A debounced task's event joins the run its key is collecting in ``debouncing`` (updated
    in place) instead, or queues one due at the window's end (domain.debounce)."""
    context = event_context(event)
    decided: list[Event] = []
    for task in subscribers:
        d = task.definition
        if not topic_matches(d.schedule_expr, event.topic) or not holds(d.filter, context, now):
            continue
        if d.schedule_kind == "event" and d.debounce_seconds:
            decided.append(
                debounced(
                    partial(_queued, task, now=now, context=context, trigger="event"),
                    task.task_id,
                    d,
                    context,
                    now,
                    new_id,
                    debouncing if debouncing is not None else {},
                )
            )
        elif d.schedule_kind == "event":
            decided.append(_queued(task, new_id(), now, context, "event"))
        elif d.schedule_kind == "condition":
            decided += _evaluate(
                task, conditions.get(task.task_id, ConditionState()), context, now, new_id
            )
    return decided


def _evaluate(
    task: Subscriber,
    state: ConditionState,
    context: dict[str, Any],
    now: datetime,
    new_id: Callable[[], str],
) -> list[Event]:
    scope = {"event": context, "state": {"value": state.value, "payload": state.payload}}
    value = holds(task.definition.condition, scope, now)
    if value is None:
        return []
    record, fire = edge(state.value, value)
    if not record:
        return []
    run = _queued(task, new_id(), now, context, "condition") if fire else None
    evaluated = ConditionEvaluated(
        task_id=task.task_id,
        value=value,
        previous=state.value,
        event_id=context["event_id"],
        topic=context["topic"],
        payload=context["payload"],
        run_id=run.run_id if run else None,
    )
    return [evaluated] if run is None else [evaluated, run]


def _queued(
    task: Subscriber, run_id: str, now: datetime, context: dict[str, Any], trigger: str
) -> RunQueued:
    d = task.definition
    return RunQueued(
        run_id=run_id,
        task_id=task.task_id,
        owner=task.owner,
        scheduled_for=now,
        run_at=now,
        trigger="condition" if trigger == "condition" else "event",
        priority=d.priority,
        concurrency_key=d.concurrency_key,
        max_concurrency=d.max_concurrency,
        dedupe_key=d.dedupe_key,
        dedupe_window_seconds=d.dedupe_window_seconds,
        event=context,
    )
