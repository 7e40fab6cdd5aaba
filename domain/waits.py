"""Durable waits: which recorded event resumes a waiting run, and when a sleep ends (pure).

- ``orchestrator.wait_for_event`` parks a run until an ``event.received`` whose topic matches
  the step's ``topic`` (a glob, as event tasks' topics) and whose ``filter`` (JMESPath over
  ``{event, params, steps, run}``; templates in it were rendered when the wait began, as
  literals: domain.wait_filters) holds.
- Only events the run's owner may see resume it: those it published itself, and the admin's.
  An admin-owned run may be resumed by any event (the admin sees the whole log). Events that
  pipelines publish (recorded under their worker's name) and ingest-stream events
  (``ingest:<source>``) therefore resume admin-owned runs only: a wait must not let whoever
  may publish steer another agent's run.
- Events recorded after the run's first event and before the wait began count too: entering
  the wait looks them up in the log (in the transaction that records ``run.waiting``), so
  nothing published in between is lost. One event resumes one wait of a run (an event a
  run's earlier wait consumed is not offered to its later waits).
- ``orchestrator.sleep`` ends after ``seconds`` or at ``until``, at most a year on; what a
  task writes literally is checked when it is created (``check_wait_steps``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any

from domain.errors import RuleViolation
from domain.events import Event, RunResumed, RunWaiting, RunWaitTimedOut
from domain.ownership import ADMIN
from domain.pipeline_steps import steps_using
from domain.triggers import holds, topic_matches
from domain.wait_filters import check_filter

WAIT_FOR_EVENT = "orchestrator.wait_for_event"
SLEEP = "orchestrator.sleep"
WAIT_TOOLS = frozenset({WAIT_FOR_EVENT, SLEEP})
MAX_WAIT_SECONDS = 31_536_000  # a year

WAIT_INPUT: dict[str, Any] = {
    "type": "object",
    "required": ["topic"],
    "additionalProperties": False,
    "properties": {
        "topic": {"type": "string", "pattern": r"^[A-Za-z0-9_.:\-*?]+$", "maxLength": 200},
        "filter": {"type": "string", "minLength": 1, "maxLength": 4000},
        "timeout_seconds": {"type": "number", "exclusiveMinimum": 0, "maximum": MAX_WAIT_SECONDS},
        "on_timeout": {"enum": ["fail", "default"], "default": "fail"},
        "default": {},
    },
}
WAIT_OUTPUT: dict[str, Any] = {}  # the resuming event, or the step's default
SLEEP_INPUT: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "minProperties": 1,
    "maxProperties": 1,
    "properties": {
        "seconds": {"type": "number", "minimum": 0, "maximum": MAX_WAIT_SECONDS},
        "until": {"type": "string", "format": "date-time", "minLength": 1},
    },
}
SLEEP_OUTPUT: dict[str, Any] = {
    "type": "object",
    "required": ["until"],
    "properties": {"until": {"type": "string"}, "quiet_hours": {"type": "boolean"}},
}


@dataclass(frozen=True)
class Waiting:
    """A run waiting for an event, as the publish path finds it."""

    run_id: str
    owner: str
    wait: Mapping[str, Any]  # the run.waiting event's fields


def may_resume(owner: str, publisher: str) -> bool:
    """Whether an event ``publisher`` recorded may resume a run ``owner`` owns."""
    return owner in (ADMIN, publisher) or publisher == ADMIN


def matches(
    wait: Mapping[str, Any], owner: str, publisher: str, event: Mapping[str, Any], now: datetime
) -> bool:
    """Whether ``event`` (an event context, see domain.triggers.event_context) resumes ``wait``."""
    if not may_resume(owner, publisher) or event.get("event_id") in wait.get("consumed", ()):
        return False
    if not topic_matches(str(wait.get("topic", "")), str(event.get("topic", ""))):
        return False
    scope = {**wait.get("scope", {}), "event": event}
    return holds(wait.get("filter"), scope, now) is True


def decide_resumes(
    event: Mapping[str, Any],
    publisher: str,
    waiting: Sequence[Waiting],
    resumed: set[str],
    now: datetime,
) -> list[Event]:
    """The ``run.resumed`` of every waiting run (not in ``resumed`` yet) ``event`` matches."""
    found: list[Event] = []
    for run in waiting:
        if run.run_id in resumed or not matches(run.wait, run.owner, publisher, event, now):
            continue
        resumed.add(run.run_id)
        step_id = str(run.wait.get("step_id", ""))
        found.append(RunResumed(run_id=run.run_id, step_id=step_id, reason="event", output=event))
    return found


def deadline_passed(waiting: RunWaiting | Mapping[str, Any]) -> Event:
    """What ends a wait whose ``until`` came: a sleep wakes; an event wait times out."""
    fields: Mapping[str, Any] = (
        {
            "run_id": waiting.run_id,
            "step_id": waiting.step_id,
            "kind": waiting.kind,
            "until": waiting.until,
            "on_timeout": waiting.on_timeout,
            "default": waiting.default,
        }
        if isinstance(waiting, RunWaiting)
        else waiting
    )
    run_id, step_id = str(fields["run_id"]), str(fields["step_id"])
    if fields.get("kind") == "sleep":
        until = fields.get("until")
        text = until.isoformat() if isinstance(until, datetime) else str(until)
        return RunResumed(run_id=run_id, step_id=step_id, reason="woke", output={"until": text})
    failed = fields.get("on_timeout", "fail") != "default"
    return RunWaitTimedOut(
        run_id=run_id,
        step_id=step_id,
        failed=failed,
        output=None if failed else fields.get("default"),
    )


def timeout_error(wait: Mapping[str, Any]) -> str:
    """Why a wait step failed on its timeout."""
    topic, filter_ = wait.get("topic"), wait.get("filter")
    what = f"an event on {topic!r}" + (f" matching {filter_!r}" if filter_ else "")
    return f"timed out waiting for {what}"


def sleep_until(options: Mapping[str, Any], zone: tzinfo, now: datetime) -> datetime:
    """When a sleep begun at ``now`` with (schema-checked) input ``options`` ends, before quiet
    hours; an ``until`` without an offset is a wall time in ``zone``. RuleViolation (field
    ``until``) for an ``until`` that is no instant or is more than a year away."""
    if "seconds" in options:
        return now + timedelta(seconds=float(options["seconds"]))
    instant = _instant(str(options["until"]), zone, "until")
    _check_distance(instant, str(options["until"]), now, "until")
    return now if instant <= now else instant.astimezone(UTC)


def check_wait_steps(steps: object, path: str, now: datetime | None = None) -> None:
    """Refuse the wait steps (foreach bodies included) whose input already shows it would fail:
    a filter that is not valid JMESPath whatever its templates give; a literal ``until`` that
    is not an ISO-8601 instant with an offset or (given ``now``) is more than a year after it.

    A literal ``until`` can only come closer, but a run started now would fail on it, and a
    year is the most any wait lasts; a templated one is checked when the run renders it.
    """
    for where, step in steps_using(steps, path, WAIT_TOOLS):
        options = step.get("with")
        if not isinstance(options, Mapping):
            continue
        if step.get("uses") == WAIT_FOR_EVENT and isinstance(options.get("filter"), str):
            check_filter(options["filter"], f"{where}.with.filter")
        until = options.get("until")
        if step.get("uses") == SLEEP and isinstance(until, str) and "${" not in until:
            instant = _instant(until, None, f"{where}.with.until")
            if now is not None:
                _check_distance(instant, until, now, f"{where}.with.until")


def _instant(text: str, zone: tzinfo | None, field: str) -> datetime:
    """The instant ``text`` names; without an offset, a wall time in ``zone`` (None: refused)."""
    try:
        instant = datetime.fromisoformat(text)
    except ValueError:
        raise RuleViolation(
            field, f"{text!r} is not an ISO-8601 instant (e.g. 2030-01-01T09:00:00Z)"
        ) from None
    if instant.utcoffset() is None:
        if zone is None:
            raise RuleViolation(
                field, f"{text!r} has no UTC offset (e.g. 2030-01-01T09:00:00+02:00 or ...Z)"
            )
        instant = instant.replace(tzinfo=zone)
    return instant


def _check_distance(instant: datetime, text: str, now: datetime, field: str) -> None:
    if instant - now > timedelta(seconds=MAX_WAIT_SECONDS):
        raise RuleViolation(
            field, f"{text!r} is more than a year away (a sleep lasts at most a year)"
        )
