"""What the buttons do: each a form POST (CSRF-checked) calling the API's own operation."""

from __future__ import annotations

import re
from typing import Any

import msgspec
from litestar import Request, post
from litestar.exceptions import NotFoundException
from litestar.params import FromPath
from litestar.response import Redirect

from domain.errors import RuleViolation
from domain.tasks import MAX_SNOOZE_SECONDS
from services.api.state import AppState
from services.api.ui.access import caller_of, needs
from services.api.ui.forms import nonce, optional_text, posted, whole_number
from services.application import runs as run_ops
from services.application import tasks as ops
from services.application.context import Backend, Caller
from services.application.errors import ApplicationError
from services.application.runs import Decision

SNOOZE_MAX_MINUTES = MAX_SNOOZE_SECONDS // 60  # a year, as the API's limit on seconds
BULK_RETRY_MAX = 500  # per click: each retry is its own transaction
_TASK_LIST = re.compile(r"^/ui/tasks(?:\?[A-Za-z0-9_.~%&=+-]*)?$")


def _run_id(body: object) -> str:
    """The queued run's id, from a fresh answer or one replayed for a repeated form."""
    if isinstance(body, msgspec.Raw):
        return str(msgspec.json.decode(bytes(body))["run_id"])
    return str(getattr(body, "run_id"))  # noqa: B009 - RunStarted or its replay


@post("/tasks/{task_id:str}/{action:str}", opt=needs("tasks:write"), status_code=303)
async def task_action(
    request: Request[Any, Any, Any], state: AppState, task_id: FromPath[str], action: FromPath[str]
) -> Redirect:
    """Run now (then show the run), pause, resume, snooze or cancel; back to the task."""
    fields = await posted(request)
    caller, backend = caller_of(request, nonce(fields)), state.backend
    if action == "run-now":
        outcome = await ops.run_task_now(caller, backend, task_id)
        return Redirect(f"/ui/runs/{_run_id(outcome.body)}", status_code=303)
    if action == "pause":
        await ops.pause_task(caller, backend, task_id)
        done = "paused"
    elif action == "resume":
        await ops.resume_task(caller, backend, task_id, fields.get("catch_up") == "on")
        done = "resumed"
    elif action == "snooze":
        minutes = whole_number(fields, "minutes", 1, SNOOZE_MAX_MINUTES)
        await ops.snooze_task(caller, backend, task_id, minutes * 60, None)
        done = "snoozed"
    elif action == "cancel":
        await ops.cancel_task(caller, backend, task_id)
        done = "canceled"
    else:
        raise NotFoundException(f"no task action {action!r}")
    back = _back(fields.get("back")) or f"/ui/tasks/{task_id}"
    return Redirect(f"{back}{'&' if '?' in back else '?'}done={done}", status_code=303)


def _back(value: str | None) -> str | None:
    """Where a button on the task list returns to: that list page, nothing else."""
    if value and _TASK_LIST.match(value):
        return re.sub(r"[?&]done=[^&]*", "", value)
    return None


@post(
    ["/runs/{run_id:str}/approve", "/runs/{run_id:str}/reject"],
    opt=needs("runs:approve"),
    status_code=303,
)
async def decide(
    request: Request[Any, Any, Any], state: AppState, run_id: FromPath[str]
) -> Redirect:
    """Approve or reject the step a parked run waits at, with an optional comment."""
    fields = await posted(request)
    approve = request.url.path.endswith("/approve")
    comment = optional_text(fields, "comment", 5_000)
    await run_ops.decide_run(
        caller_of(request, nonce(fields)),
        state.backend,
        run_id,
        approve,
        Decision(comment=comment),
    )
    done = "approved" if approve else "rejected"
    return Redirect(f"/ui/runs/{run_id}?done={done}", status_code=303)


@post(
    ["/runs/{run_id:str}/retry", "/runs/{run_id:str}/cancel"],
    opt=needs("tasks:write"),
    status_code=303,
)
async def steer(
    request: Request[Any, Any, Any], state: AppState, run_id: FromPath[str]
) -> Redirect:
    """Retry a dead run, or cancel one that has not finished."""
    fields = await posted(request)
    caller, backend = caller_of(request, nonce(fields)), state.backend
    if request.url.path.endswith("/retry"):
        await run_ops.retry_run(caller, backend, run_id)
        done = "retried"
    else:
        await run_ops.cancel_run(caller, backend, run_id)
        done = "run_canceled"
    return Redirect(f"/ui/runs/{run_id}?done={done}", status_code=303)


@post("/runs/retry-dead", opt=needs("tasks:write"), status_code=303)
async def retry_all_dead(request: Request[Any, Any, Any], state: AppState) -> Redirect:
    """Retry every dead run of the caller's (admin: all), a bounded batch per click."""
    await posted(request)
    retried = await retry_dead_runs(caller_of(request), state.backend)
    return Redirect(f"/ui/runs?done=retried_all&n={retried}", status_code=303)


async def retry_dead_runs(caller: Caller, backend: Backend) -> int:
    """Retry dead runs, newest first, up to BULK_RETRY_MAX; how many were retried."""
    retried, cursor = 0, None
    while True:
        found = await run_ops.find_runs(caller, backend, "dead", None, 100, cursor)
        for run in found.items:
            if retried >= BULK_RETRY_MAX:
                return retried
            try:
                await run_ops.retry_run(caller, backend, run.id)
            except (RuleViolation, ApplicationError):
                continue  # someone retried or changed it meanwhile
            retried += 1
        if found.next is None:
            return retried
        cursor = found.next
