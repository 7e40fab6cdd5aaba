"""A wait step's ``run.waiting``, built from its rendered input (the worker records it:
services/worker/waits.py)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from domain.errors import RuleViolation
from domain.events import RunWaiting
from domain.wait_filters import compile_filter
from domain.waits import SLEEP, WAIT_FOR_EVENT, sleep_until
from services.pipeline.run import LeasedRun
from services.tools.errors import ToolCallError


def waiting_event(
    run: LeasedRun,
    path: str,
    uses: str,
    rendered: Mapping[str, Any],
    scope: Mapping[str, Any],
    now: datetime,
) -> RunWaiting:
    """The ``run.waiting`` of a wait step (its deadline before quiet hours are applied)."""
    common: dict[str, Any] = {
        "run_id": run.run_id,
        "step_id": path,
        "attempt": run.attempt,
        "tool": uses,
        "input": dict(rendered),
    }
    if uses == SLEEP:
        return RunWaiting(kind="sleep", until=_sleep_until(rendered, run, now), **common)
    assert uses == WAIT_FOR_EVENT
    timeout = rendered.get("timeout_seconds")
    until = now + timedelta(seconds=float(timeout)) if timeout is not None else None
    consumed = tuple(
        str(step["output"]["event_id"])
        for step in run.steps.values()
        if step.get("tool") == WAIT_FOR_EVENT
        and isinstance(step.get("output"), dict)
        and "event_id" in step["output"]
    )
    return RunWaiting(
        kind="event",
        topic=str(rendered["topic"]),
        filter=_filter(rendered),
        scope={k: scope.get(k) for k in ("params", "steps", "run")},
        until=until,
        on_timeout="default" if rendered.get("on_timeout") == "default" else "fail",
        default=rendered.get("default"),
        consumed=consumed,
        **common,
    )


def _sleep_until(rendered: Mapping[str, Any], run: LeasedRun, now: datetime) -> datetime:
    try:
        return sleep_until(rendered, ZoneInfo(run.definition.timezone), now)
    except RuleViolation as exc:
        raise ToolCallError(f"{exc.field}: {exc.reason}", retryable=False) from None


def _filter(rendered: Mapping[str, Any]) -> str | None:
    """The rendered filter, once it is known to compile: a wait that no event could ever
    match must fail now, not wait until its timeout (or for ever without one)."""
    text = rendered.get("filter")
    if text is None:
        return None
    try:
        compile_filter(str(text), "filter")
    except RuleViolation as exc:
        raise ToolCallError(f"{exc.field}: {exc.reason}", retryable=False) from None
    return str(text)
