"""Dry runs: a pipeline rendered and checked step by step with fake tool outputs.

The real runner executes the pipeline, so templates, conditions, foreach and schema checks
behave exactly as they will for real; only the adapters are fakes. Each tool "returns" an
example of its output schema (after its input was checked against its input schema),
approvals are taken as granted for every item, `debug.echo` echoes, a sleep returns at
once, and nothing is recorded or called. A wait for an event ends the dry run there (status
``waiting``, saying what it would wait for): the steps after it depend on that event.

What an output schema leaves open (a JSON body of any shape, an object that may have more
fields, an array that may have more items) stays open in the example (domain.unknowns): a
reference into it cannot be refuted, so it gives an unknown value, ``{"$unknown": "<where>"}``,
and a step whose input holds one notes which; input checks leave such values to the run.
What a schema rules out (a field of a closed object, a field of a string) still fails.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any
from zoneinfo import ZoneInfo

import msgspec

from domain.errors import RuleViolation
from domain.events import (
    Event,
    RunAttemptFailed,
    RunDead,
    RunQueued,
    RunStepFailed,
    RunStepSkipped,
    RunStepSucceeded,
    RunSucceeded,
    RunWaiting,
    TaskDefinition,
    ToolRegistered,
)
from domain.limits import WorkLimits
from domain.tool_schemas import check_dry_run_input, check_output, dry_run_output
from domain.unknowns import Unknown, revived, shows_unknown, unknowns_in
from domain.waits import SLEEP, sleep_until
from services.pipeline.recording import RecordOutcome
from services.pipeline.run import LeasedRun
from services.pipeline.runner import APPROVAL, FindTool, LoadSecrets, Runner
from services.tools.errors import ToolCallError

ECHO = "debug.echo"  # calls nothing anyway, so the dry run shows its real output


class DryRunStep(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """What one step would do: its rendered input, the fake output, or why it fails."""

    id: str
    status: str
    tool: str | None = None
    input: Any = None
    output: Any = None
    error: str | None = None
    # e.g. what a waiting step would wait for, or which of its input the dry run cannot know
    note: str | None = None


class DryRun(msgspec.Struct, frozen=True, kw_only=True):
    """``ok`` when every step rendered and validated; ``error`` names the first problem."""

    ok: bool
    error: str | None
    steps: list[DryRunStep]


async def _fake_call(
    tool: ToolRegistered, arguments: dict[str, Any], _key: str, _timeout: float, *, zone: ZoneInfo
) -> Any:
    try:
        check_dry_run_input(tool, arguments)
    except RuleViolation as exc:
        raise ToolCallError(f"{exc.field}: {exc.reason}", retryable=False) from None
    # The runner sent them through JSON: what stood for an unknown value stands for one again.
    arguments = revived(arguments)
    if tool.address == APPROVAL:
        return {
            "status": "approved",
            "approved_items": arguments.get("data"),
            "comment": None,
            "by": "dry-run",
            "expired": False,
        }
    if tool.address == ECHO:
        return arguments
    if tool.address == SLEEP:  # returns at once, but refuses what a real sleep would
        if shows_unknown(arguments.get("seconds")) or shows_unknown(arguments.get("until")):
            return {"until": Unknown("output.until")}
        try:
            until = sleep_until(arguments, zone, datetime.now(UTC))
        except RuleViolation as exc:
            raise ToolCallError(f"{exc.field}: {exc.reason}", retryable=False) from None
        return {"until": until.isoformat()}
    output = dry_run_output(tool.output_schema)
    check_output(tool, output)
    return output


async def _fake_publish(_run: LeasedRun, _arguments: dict[str, Any], _key: str) -> Any:
    return {"event_id": "dry-run", "position": 0}


async def dry_run(
    task_id: str,
    title: str,
    definition: TaskDefinition,
    owner: str,
    find_tool: FindTool,
    event: dict[str, Any] | None = None,
    load_secrets: LoadSecrets | None = None,
    limits: WorkLimits | None = None,
) -> DryRun:
    """Run ``definition``'s pipeline against fakes and report each step.

    ``load_secrets`` should check secrets without revealing them (placeholders stand in).
    A limit of ``limits`` exceeded raises LimitExceeded (refused as invalid input, naming it).
    """
    recorded: list[Event] = []

    async def record(_run_id: str, events: list[Event]) -> RecordOutcome:
        recorded.extend(events)
        return RecordOutcome.RECORDED

    now = datetime.now(UTC)
    run_id = f"dry-run-{uuid.uuid4()}"
    queued = RunQueued(
        run_id=run_id,
        task_id=task_id,
        owner=owner,
        scheduled_for=now,
        run_at=now,
        trigger="run_now",
        event=event,
    )
    run = LeasedRun(
        run_id=run_id,
        task_id=task_id,
        task_title=title,
        attempt=1,
        trigger="dry_run",
        scheduled_for=now,
        definition=definition,
        queued=queued,
        steps={},
        lease_until=now + timedelta(minutes=1),
    )
    runner = Runner(
        record=record,
        find_tool=find_tool,
        call_tool=partial(_fake_call, zone=ZoneInfo(definition.timezone)),
        publish=_fake_publish,
        park_for_approval=False,
        observe=False,
        load_secrets=load_secrets,
        limits=limits or WorkLimits(),
        raise_limits=True,
    )
    await runner.execute(run)
    return _report(recorded)


def _report(events: list[Event]) -> DryRun:
    steps: list[DryRunStep] = []
    error = None
    for event in events:
        match event:
            case RunStepSucceeded():
                steps.append(
                    DryRunStep(
                        id=event.step_id,
                        status="succeeded",
                        tool=event.tool,
                        input=event.input,
                        output=event.output,
                        note=_unknown_note(event.input),
                    )
                )
            case RunStepFailed():
                steps.append(
                    DryRunStep(
                        id=event.step_id,
                        status="failed",
                        tool=event.tool,
                        input=event.input,
                        error=event.error,
                        note=_unknown_note(event.input),
                    )
                )
            case RunStepSkipped():
                steps.append(DryRunStep(id=event.step_id, status="skipped"))
            case RunWaiting():
                steps.append(_waiting(event))
            case RunAttemptFailed() | RunDead():
                error = event.error
    ended = any(isinstance(e, RunSucceeded | RunWaiting) for e in events)
    return DryRun(ok=error is None and ended, error=error, steps=steps)


def _unknown_note(rendered: Any) -> str | None:
    places = unknowns_in(rendered)
    if not places:
        return None
    return f"not known until the run, so not checked: {', '.join(places)}"


def _waiting(event: RunWaiting) -> DryRunStep:
    what = f"an event on {event.topic!r}" + (f" matching {event.filter!r}" if event.filter else "")
    if event.until is not None:
        what += f" until {event.until.isoformat()} (then {event.on_timeout})"
    note = f"would wait for {what}; the steps after it are not dry-run"
    unknown = _unknown_note(event.input)
    note += f" ({unknown})" if unknown else ""
    return DryRunStep(
        id=event.step_id, status="waiting", tool=event.tool, input=event.input, note=note
    )
