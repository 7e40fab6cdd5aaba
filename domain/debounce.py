"""Debounced event tasks: events within a window join one run (pure).

A task with ``debounce_seconds`` queues its run when the first event arrives, due when the
window ends (a fixed window from the first event, so a steady stream of events still runs
every ``debounce_seconds``). Every later event of the same key, until that run starts, joins
it (``run.debounced``): the run sees the last event, with ``event.debounce.count`` events so
far. The key is ``debounce_key`` (JMESPath over the event; one key when absent), scoped to
the task and its owner (domain.ownership.scoped_key), whatever schedule or other task uses
the same text.
"""

from __future__ import annotations

from collections.abc import Callable, MutableMapping
from datetime import datetime, timedelta
from typing import Any

import msgspec

from domain.errors import RuleViolation
from domain.events import Event, RunDebounced, RunQueued, TaskDefinition
from domain.templates import bare_expression, check_expression, select_value

MAX_DEBOUNCE_SECONDS = 86_400
# (task id, key) -> (the run collecting the key's events, how many it has)
Debouncing = MutableMapping[tuple[str, str], tuple[str, int]]


def check_debounce(definition: TaskDefinition) -> None:
    """Debounce only on event tasks, within a day, with a valid key expression."""
    seconds, key = definition.debounce_seconds, definition.debounce_key
    if seconds is None:
        if key is not None:
            raise RuleViolation("debounce_key", "needs debounce_seconds")
        return
    if definition.schedule_kind != "event":
        raise RuleViolation("debounce_seconds", "only event tasks are debounced")
    if not 1 <= seconds <= MAX_DEBOUNCE_SECONDS:
        raise RuleViolation("debounce_seconds", f"must be 1 to {MAX_DEBOUNCE_SECONDS}")
    if key is not None:
        check_expression(bare_expression(key, "debounce_key"), "debounce_key")


def debounce_value(definition: TaskDefinition, context: dict[str, Any], now: datetime) -> Any:
    """What ``debounce_key`` selects from the event ("" without one; null where it fails)."""
    if definition.debounce_key is None:
        return ""
    try:
        return select_value(definition.debounce_key, context, now=now, field="debounce_key")
    except (RuleViolation, ValueError, TypeError, RecursionError):
        return None


def debounce_key(definition: TaskDefinition, context: dict[str, Any], now: datetime) -> str:
    """The event's key as text, one per distinct JSON value: a string as it is (the usual key,
    readable where it is stored) unless it is itself JSON text, then JSON-encoded like every
    other value, so 5, "5", null and "null" are four keys and no two values share one."""
    return key_text(debounce_value(definition, context, now))


def key_text(value: Any) -> str:
    """``value`` as text, the same for equal JSON values and different for different ones."""
    if isinstance(value, str) and not _is_json(value):
        return value
    return msgspec.json.encode(value, order="sorted").decode()


def _is_json(text: str) -> bool:
    try:
        msgspec.json.decode(text)
    except msgspec.DecodeError:
        return False
    return True


def debounced(
    queued: Callable[[str], RunQueued],
    task_id: str,
    definition: TaskDefinition,
    context: dict[str, Any],
    now: datetime,
    new_id: Callable[[], str],
    debouncing: Debouncing,
) -> Event:
    """A new run due when the window ends, or the pending run's ``run.debounced``."""
    value = debounce_value(definition, context, now)
    key = key_text(value)
    pending = debouncing.get((task_id, key))
    if pending is not None:
        run_id, count = pending[0], pending[1] + 1
        debouncing[(task_id, key)] = (run_id, count)
        event = {**context, "debounce": {"count": count, "key": value}}
        return RunDebounced(run_id=run_id, event=event, count=count)
    run = queued(new_id())
    debouncing[(task_id, key)] = (run.run_id, 1)
    window = timedelta(seconds=definition.debounce_seconds or 0)
    return msgspec.structs.replace(
        run,
        run_at=now + window,
        debounce_key=key,
        event={**context, "debounce": {"count": 1, "key": value}},
    )
