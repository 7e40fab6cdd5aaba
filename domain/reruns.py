"""Re-running a run from a step: what the new run keeps of the old one, and when it may not.

Rule (the pipeline must not have changed where the kept outputs came from):
- ``from_step`` names a top-level step of the task's current pipeline (else the input is refused).
- The steps before it are the same, in the same order, as in the pipeline the original run
  was queued with (compared as whole definitions: id, uses, with, if, save_as, ...); steps
  from ``from_step`` on may differ. Otherwise a conflict: the kept outputs would answer other steps.
- Each kept step succeeded (or was skipped) in the original run: its output is what the new
  run's later steps see. Otherwise a conflict (re-run from that step instead).
- Only a finished run (succeeded, dead, canceled) is re-run; the new run starts at once.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import msgspec

from domain.errors import Refusal, RuleViolation
from domain.events import Event, RunQueued, RunRerunRequested, RunStepSkipped, RunStepSucceeded
from domain.runs import RunConflict

RERUNNABLE = frozenset({"succeeded", "dead", "canceled"})


def decide_rerun(
    queued: RunQueued,
    status: str,
    recorded: Mapping[str, Mapping[str, Any]],
    old_pipeline: Sequence[Mapping[str, Any]],
    new_pipeline: Sequence[Mapping[str, Any]],
    from_step: str,
    new_run_id: str,
    now: datetime,
) -> tuple[list[Event], RunRerunRequested]:
    """The new run's events (queued, then its kept steps) and the original's note of it."""
    if status not in RERUNNABLE:
        raise RunConflict(f"only a finished run can be re-run; this one is {status}")
    ids = [str(step.get("id")) for step in new_pipeline]
    if from_step not in ids:
        raise RuleViolation("from_step", f"no step {from_step!r} in the task's pipeline")
    index = ids.index(from_step)
    kept = list(new_pipeline[:index])
    if list(old_pipeline[:index]) != kept:
        changed = _first_difference(old_pipeline, kept)
        raise RuleViolation(
            "from_step",
            f"the pipeline changed before {from_step!r} (step {changed!r} differs from the "
            "original run's): its kept outputs would not match",
            Refusal.CONFLICT,
        )
    run_id = queued.run_id
    new = msgspec.structs.replace(
        queued,
        run_id=new_run_id,
        attempt=1,
        trigger="rerun",
        scheduled_for=now,
        run_at=now,
        rerun_of=run_id,
        from_step=from_step,
        dedupe_key=None,
        dedupe_window_seconds=None,
    )
    events: list[Event] = [new]
    for step in kept:
        events.append(_kept(str(step["id"]), recorded, run_id, new_run_id))
    note = RunRerunRequested(run_id=run_id, rerun_id=new_run_id, from_step=from_step)
    return events, note


def _kept(step_id: str, recorded: Mapping[str, Mapping[str, Any]], run_id: str, new: str) -> Event:
    step = recorded.get(step_id) or {}
    if step.get("status") == "skipped":
        return RunStepSkipped(
            run_id=new, step_id=step_id, attempt=1, condition=str(step.get("condition", ""))
        )
    if step.get("status") != "succeeded":
        raise RuleViolation(
            "from_step",
            f"step {step_id!r} did not succeed in run {run_id} (it is "
            f"{step.get('status', 'not run')}): re-run from it instead",
            Refusal.CONFLICT,
        )
    return RunStepSucceeded(
        run_id=new,
        step_id=step_id,
        attempt=1,
        tool=str(step.get("tool", "")),
        input=step.get("input"),
        output=step.get("output"),
        reused_from=run_id,
    )


def _first_difference(old: Sequence[Mapping[str, Any]], kept: Sequence[Mapping[str, Any]]) -> str:
    for position, step in enumerate(kept):
        if position >= len(old) or old[position] != step:
            return str(step.get("id"))
    return str(kept[-1].get("id")) if kept else ""
