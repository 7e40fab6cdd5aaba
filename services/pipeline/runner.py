"""Runs one leased run's pipeline, step by step, recording each step as it ends.

Steps that succeeded before (in an earlier attempt, or under a worker that died) are not
run again: their recorded output is reused, and a tool always sees the same idempotency key
for the same step. Rules (templates, conditions, retry decisions) come from `domain`.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import msgspec
import structlog

from domain.budgets import Overrun, step_cost
from domain.errors import RuleViolation
from domain.events import (
    ApprovalRequested,
    Event,
    RunCanceled,
    RunStepFailed,
    RunStepSkipped,
    RunStepSucceeded,
    RunSucceeded,
    RunWaiting,
    ToolRegistered,
)
from domain.limits import LimitExceeded, WorkBudget, WorkLimits
from domain.pipeline import FOREACH
from domain.runs import Failure, decide_failure, step_idempotency_key
from domain.secrets import redact, references
from domain.templates import TemplateError, condition_holds, render, select_items
from domain.tools import BUILTIN_TOOLS
from domain.wait_filters import render_filter
from domain.waits import SLEEP, WAIT_FOR_EVENT, WAIT_TOOLS, timeout_error
from domain.workload import planned_iterations
from services.pipeline.governance import Defer, Governor
from services.pipeline.recording import RecordOutcome, RecordRejected
from services.pipeline.run import LeasedRun
from services.pipeline.wait_steps import waiting_event
from services.runtime.metrics import RUN_DURATION, RUNS, STEP_DURATION, STEP_FAILURES
from services.runtime.redaction import remember_secrets
from services.runtime.tracing import span
from services.secrets.vault import SecretUnavailable
from services.tools.errors import ToolCallError, excerpt
from services.tools.invoker import cancellable, check_arguments

APPROVAL = "orchestrator.request_approval"
PUBLISH = "orchestrator.publish_event"

log = structlog.get_logger(__name__)

Record = Callable[[str, list[Event]], Awaitable[RecordOutcome]]
FindTool = Callable[[str], Awaitable[ToolRegistered | None]]
CallTool = Callable[[ToolRegistered, dict[str, Any], str, float], Awaitable[Any]]
Publish = Callable[[LeasedRun, dict[str, Any], str], Awaitable[dict[str, Any]]]
# (run owner, tool) -> why the owner may not use the tool now, or None
CheckAccess = Callable[[str, ToolRegistered], Awaitable[str | None]]
# (run owner, tool address, secret names) -> name -> value; raises SecretUnavailable
LoadSecrets = Callable[[str, str, set[str]], Awaitable[dict[str, str]]]
# Records a wait step's run.waiting (the worker's: services/worker/waits.py)
EnterWait = Callable[[RunWaiting], Awaitable[RecordOutcome]]


class _Stop(Exception):
    """The run stops here: parked, canceled, lost, or this attempt failed."""


class _Aborted(Exception):
    """The tool call in flight was abandoned because the run was canceled."""


@dataclass
class _Context:
    run: LeasedRun
    zone: ZoneInfo
    budget: WorkBudget
    steps: dict[str, Any] = field(default_factory=dict)
    # The last top-level step's success goes out with run.succeeded, in one record.
    last_step: str | None = None
    deferred: list[Event] = field(default_factory=list)
    # The step being run (path, tool), so an unexpected failure is recorded against it.
    current: tuple[str, str] | None = None

    def data(self, extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
        run = self.run
        data: dict[str, Any] = {
            "params": run.definition.payload.get("params", {}),
            "steps": self.steps,
            "event": run.queued.event,
            "task": {
                "id": run.task_id,
                "title": run.task_title,
                "timezone": run.definition.timezone,
                "metadata": run.definition.metadata,
            },
            "run": {
                "id": run.run_id,
                "attempt": run.attempt,
                "trigger": run.trigger,
                "scheduled_for": run.scheduled_for.isoformat(),
            },
        }
        if extra:
            data.update(extra)
        return data

    def now(self) -> datetime:
        return datetime.now(self.zone)


@dataclass
class Runner:
    """Executes pipelines; the adapters it calls are given, so tests can watch them."""

    record: Record
    find_tool: FindTool
    call_tool: CallTool
    publish: Publish
    # A dry run passes approval steps to call_tool (which fakes a decision) instead of parking.
    park_for_approval: bool = True
    # Quiet hours and budgets (a dry run has none: nothing is called, nothing waits).
    governor: Governor | None = None
    load_secrets: LoadSecrets | None = None
    # Whether runs count in the process's metrics (a dry run does not).
    observe: bool = True
    check_access: CheckAccess | None = None
    # What the store raises while it is unreachable: the run is left to its lease (a later
    # lease resumes the same attempt). Any other exception fails this run's attempt only.
    storage_errors: tuple[type[Exception], ...] = ()
    # What one run may do (foreach items and iterations, rendered input sizes).
    limits: WorkLimits = field(default_factory=WorkLimits)
    # A dry run lets LimitExceeded out (the API answers 422) instead of failing the step.
    raise_limits: bool = False
    # Wait steps park the run through this (None: they are recorded like any step's events).
    enter_wait: EnterWait | None = None
    # run id -> its tool call in flight, for calls that can be abandoned (see `abort`)
    _in_flight: dict[str, asyncio.Future[Any]] = field(default_factory=dict, init=False)
    # run id -> the secrets its steps received: redacted from everything the run records
    _secrets: dict[str, dict[str, str]] = field(default_factory=dict, init=False)

    def abortable_runs(self) -> list[str]:
        """Runs whose current tool call could be abandoned right now."""
        return list(self._in_flight)

    def abort(self, run_id: str) -> None:
        """Abandon the run's tool call in flight (its run was canceled); no-op without one."""
        call = self._in_flight.get(run_id)
        if call is not None:
            call.cancel()

    async def execute(self, run: LeasedRun) -> None:
        """Run the pipeline to its end, a park, a cancel or a failed attempt; record each."""
        pipeline = run.definition.payload.get("pipeline", [])
        context = _Context(run, ZoneInfo(run.definition.timezone), WorkBudget(self.limits))
        context.last_step = pipeline[-1]["id"] if pipeline else None
        started = time.perf_counter()
        try:
            await self._steps(context, pipeline, "", {})
            succeeded = RunSucceeded(run_id=run.run_id, attempt=run.attempt)
            await self._record(run, [*context.deferred, succeeded])
        except _Stop:
            return
        except self.storage_errors:
            raise
        except LimitExceeded as exc:  # met outside a guarded template (e.g. planning a foreach)
            if self.raise_limits:
                raise
            path, uses = context.current or ("", "")
            await self._over_limit(context, path, uses, exc)
        except Exception as exc:
            await self._crashed(context, exc)
        finally:
            self._secrets.pop(run.run_id, None)
            if self.observe:
                RUN_DURATION.observe(time.perf_counter() - started)

    async def _steps(
        self,
        context: _Context,
        steps: Sequence[Mapping[str, Any]],
        prefix: str,
        extra: dict[str, Any],
    ) -> dict[str, Any]:
        """Run ``steps`` in order; the outputs by name (for a foreach body, one item's)."""
        outputs: dict[str, Any] = {}
        for step in steps:
            path = f"{prefix}{step['id']}"
            name = step.get("save_as") or step["id"]
            output = await self._step(context, step, path, extra)
            outputs[name] = output
            if not prefix:
                context.steps[name] = output
            else:
                extra["steps"][name] = output
        return outputs

    async def _step(
        self, context: _Context, step: Mapping[str, Any], path: str, extra: dict[str, Any]
    ) -> Any:
        uses = str(step.get("uses", ""))
        attributes = {"ordinaut.step.id": path, "ordinaut.step.uses": uses}
        with (
            structlog.contextvars.bound_contextvars(step_id=path),
            span("ordinaut.step", attributes),
        ):
            return await self._bound_step(context, step, path, extra)

    async def _bound_step(
        self, context: _Context, step: Mapping[str, Any], path: str, extra: dict[str, Any]
    ) -> Any:
        run = context.run
        context.current = (path, str(step.get("uses", "")))
        done = run.steps.get(path)
        if done is not None and done.get("status") == "succeeded":
            return done.get("output")
        if done is not None and done.get("status") == "skipped":
            return None
        # A wait that timed out in this attempt fails its step (a later attempt waits again).
        if (
            done is not None
            and done.get("status") == "timed_out"
            and (done.get("attempt") == run.attempt)
        ):
            failure = Failure(timeout_error(done.get("input") or {}), retryable=False)
            return await self._fail(context, step, path, done.get("input"), 0.0, failure)
        data = context.data(extra)
        if "if" in step:
            holds = await self._guard(
                context,
                path,
                lambda: condition_holds(step["if"], data, now=context.now(), field=f"{path}.if"),
            )
            if not holds:
                await self._record(
                    run,
                    [
                        RunStepSkipped(
                            run_id=run.run_id,
                            step_id=path,
                            attempt=run.attempt,
                            condition=str(step["if"]),
                        )
                    ],
                )
                return None
        if step["uses"] == FOREACH:
            return await self._foreach(context, step, path, data, extra)
        if step["uses"] == APPROVAL and self.park_for_approval:
            await self._park(context, step, path, data)
        # A dry run stops at a wait for an event (what follows depends on it) and sleeps not.
        if step["uses"] in WAIT_TOOLS and (
            self.park_for_approval or step["uses"] == WAIT_FOR_EVENT
        ):
            await self._wait(context, step, path, data)
        return await self._call(context, step, path, data)

    async def _foreach(
        self,
        context: _Context,
        step: Mapping[str, Any],
        path: str,
        data: dict[str, Any],
        extra: dict[str, Any],
    ) -> Any:
        options = step.get("with", {})
        items = await self._guard(
            context, path, lambda: _planned_items(context, options, data, path), tool=FOREACH
        )
        results = []
        for index, item in enumerate(items):
            await self._guard(context, path, lambda: context.budget.iterate(path), tool=FOREACH)
            await asyncio.sleep(0)  # one run's loop never holds the event loop for long
            scope = {"item": item, "index": index, "steps": dict(data["steps"])}
            results.append(await self._steps(context, options["body"], f"{path}[{index}].", scope))
        output = {"items": results, "count": len(results)}
        context.current = (path, FOREACH)
        await self._record(
            context.run,
            [
                RunStepSucceeded(
                    run_id=context.run.run_id,
                    step_id=path,
                    attempt=context.run.attempt,
                    tool=FOREACH,
                    input={"items_path": options["items_path"], "count": len(items)},
                    output=output,
                )
            ],
        )
        return output

    async def _park(
        self, context: _Context, step: Mapping[str, Any], path: str, data: dict[str, Any]
    ) -> None:
        """Ask for approval and stop; the decision comes back as this step's recorded output."""
        run = context.run
        rendered = await self._guard(
            context,
            path,
            lambda: self._rendered_input(context, step.get("with", {}), data, f"{path}.with"),
            tool=APPROVAL,
        )
        try:
            check_arguments(BUILTIN_TOOLS[APPROVAL], rendered)
        except ToolCallError as exc:
            await self._fail(context, step, path, rendered, 0.0, Failure(exc.message, False))
            raise _Stop from None  # on_error: continue cannot park without a valid request
        timeout = rendered.get("timeout_seconds")
        expires = (
            datetime.now(UTC) + timedelta(seconds=float(timeout))
            if isinstance(timeout, int | float) and not isinstance(timeout, bool)
            else None
        )
        requested = ApprovalRequested(
            run_id=run.run_id,
            step_id=path,
            message=str(rendered.get("message", "")),
            data=rendered.get("data"),
            expires_at=expires,
            on_timeout="approve" if rendered.get("on_timeout") == "approve" else "reject",
        )
        await self._record(run, [requested])
        raise _Stop

    async def _wait(
        self, context: _Context, step: Mapping[str, Any], path: str, data: dict[str, Any]
    ) -> None:
        """Park the run until its event, timeout or wake-up; the step's output comes back
        recorded (``run.resumed``/``run.wait_timed_out``) when a worker leases it again."""
        run, uses = context.run, str(step["uses"])
        rendered = await self._guard(
            context,
            path,
            lambda: self._rendered_wait_input(context, step.get("with", {}), data, f"{path}.with"),
            tool=uses,
        )
        try:
            check_arguments(BUILTIN_TOOLS[uses], rendered)
            waiting = waiting_event(run, path, uses, rendered, data, datetime.now(UTC))
        except ToolCallError as exc:
            await self._fail(context, step, path, rendered, 0.0, Failure(exc.message, False))
            raise _Stop from None
        if uses == SLEEP and waiting.until is not None and self.governor is not None:
            # quiet hours hold the wake-up back to their end, as they hold notifying steps
            quiet = self.governor.quiet_until(run, waiting.until)
            if quiet is not None:
                waiting = msgspec.structs.replace(waiting, until=quiet)
        if self.enter_wait is None:
            await self._record(run, [waiting])
            raise _Stop
        outcome = await self.enter_wait(waiting)
        if outcome is RecordOutcome.LOST:
            log.warning("lease lost; another worker owns the run now", run_id=run.run_id)
        raise _Stop

    async def _call(
        self, context: _Context, step: Mapping[str, Any], path: str, data: dict[str, Any]
    ) -> Any:
        run = context.run
        tool = await self.find_tool(step["uses"])
        if tool is None:
            return await self._fail(
                context,
                step,
                path,
                None,
                0.0,
                Failure(f"tool {step['uses']!r} is no longer in the catalog", retryable=False),
            )
        if self.check_access is not None:
            refused = await self.check_access(run.queued.owner, tool)
            if refused is not None:
                return await self._fail(context, step, path, None, 0.0, Failure(refused, False))
        if self.governor is not None:
            verdict = await self.governor.admit(run, tool)
            if verdict is not None:
                await self._governed(run, path, tool, verdict)
        try:
            secrets = await self._step_secrets(context.run, step, tool)
        except SecretUnavailable as exc:
            return await self._fail(context, step, path, None, 0.0, Failure(str(exc), False))
        scope = {**data, "secrets": secrets} if secrets else data
        rendered = await self._guard(
            context,
            path,
            lambda: self._rendered_input(context, step.get("with", {}), scope, f"{path}.with"),
            tool=tool.address,
        )
        declared_key = step.get("idempotency_key")
        if declared_key is not None:  # most steps declare none: nothing to render
            declared_key = await self._guard(
                context,
                path,
                lambda: render(
                    step["idempotency_key"],
                    data,
                    now=context.now(),
                    field=f"{path}.idempotency_key",
                ),
            )
        key = step_idempotency_key(run.run_id, path, declared_key)
        timeout = float(step.get("timeout_seconds") or tool.timeout_seconds)
        started = time.perf_counter()
        try:
            if tool.address == PUBLISH:
                check_arguments(tool, rendered)  # the invoker checks every other tool's input
                output = await self.publish(run, rendered, key)
            else:
                output = await self._call_tool(run, tool, rendered, key, timeout)
        except _Aborted:
            elapsed = (time.perf_counter() - started) * 1000
            await self._abandoned(run, step, path, rendered, elapsed)
            raise _Stop from None
        except Exception as exc:  # a tool's failure is its step's, whatever it raised
            if tool.address == PUBLISH and isinstance(exc, self.storage_errors):
                raise  # the store is away: leave the run to its lease, as for any record
            elapsed = (time.perf_counter() - started) * 1000
            if self.observe:
                STEP_DURATION.labels(tool.address).observe(elapsed / 1000)
                STEP_FAILURES.labels(tool.address).inc()
            return await self._fail(context, step, path, rendered, elapsed, _tool_failure(exc))
        elapsed = (time.perf_counter() - started) * 1000
        if self.observe:
            STEP_DURATION.labels(tool.address).observe(elapsed / 1000)
        # later steps see the output as recorded: a secret echoed back goes no further
        output = redact(output, self._secrets.get(run.run_id, {}))
        cost = 0.0 if tool.transport == "builtin" else step_cost(tool.cost_per_call, output)
        succeeded = RunStepSucceeded(
            run_id=run.run_id,
            step_id=path,
            attempt=run.attempt,
            tool=tool.address,
            input=rendered,
            output=output,
            duration_ms=round(elapsed, 3),
            cost=cost,
            cost_day=self.governor.cost_day(run) if cost and self.governor else None,
        )
        if path == context.last_step:
            context.deferred.append(succeeded)
        else:
            await self._record(run, [succeeded])
        return output

    async def _governed(
        self, run: LeasedRun, path: str, tool: ToolRegistered, verdict: Defer | Overrun
    ) -> None:
        """Stop here: until quiet hours end (the run is due again then), or for good."""
        assert self.governor is not None
        await self._emit(run, self.governor.stopping(run, path, tool, verdict))
        raise _Stop

    async def _step_secrets(
        self, run: LeasedRun, step: Mapping[str, Any], tool: ToolRegistered
    ) -> dict[str, str]:
        """The secrets the step's ``with`` refers to; SecretUnavailable unless the run's owner
        may use every one and its tool may have it."""
        names = references(step.get("with", {}))
        if not names:
            return {}
        if self.load_secrets is None:
            raise SecretUnavailable("secrets are not available to this runner")
        secrets = await self.load_secrets(run.queued.owner, tool.address, names)
        remember_secrets(secrets)
        self._secrets.setdefault(run.run_id, {}).update(secrets)
        return secrets

    async def _call_tool(
        self, run: LeasedRun, tool: ToolRegistered, rendered: Any, key: str, seconds: float
    ) -> Any:
        if not cancellable(tool):
            return await self.call_tool(tool, rendered, key, seconds)
        call = asyncio.ensure_future(self.call_tool(tool, rendered, key, seconds))
        self._in_flight[run.run_id] = call
        try:
            return await call
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if current is not None and current.cancelling():
                raise  # the run itself is being stopped (shutdown), not just this call
            raise _Aborted from None
        finally:
            self._in_flight.pop(run.run_id, None)

    async def _abandoned(
        self, run: LeasedRun, step: Mapping[str, Any], path: str, rendered: Any, elapsed: float
    ) -> None:
        failed = RunStepFailed(
            run_id=run.run_id,
            step_id=path,
            attempt=run.attempt,
            tool=step["uses"],
            error="canceled on request while the tool call was in flight",
            input=rendered,
            duration_ms=round(elapsed, 3),
            retryable=False,
        )
        canceled = RunCanceled(run_id=run.run_id, reason="canceled on request")
        await self._emit(run, [failed, canceled])

    def _rendered_input(
        self, context: _Context, value: Any, scope: dict[str, Any], field: str
    ) -> Any:
        """A step's input rendered within the size limits, as a copy of its own: a value that
        shared the context's objects (``${@}`` echoed back as an output) could contain itself."""
        limit = self.limits.step_input_max_bytes
        rendered = render(value, scope, now=context.now(), field=field, max_bytes=limit)
        encoded = _encoded(rendered, field)
        context.budget.spend_rendered(field, len(encoded))
        return msgspec.json.decode(encoded)

    def _rendered_wait_input(
        self, context: _Context, value: Any, scope: dict[str, Any], field: str
    ) -> Any:
        """A wait's input: its filter's templates become literals (domain.wait_filters), so
        no value can change what the filter tests; the rest renders as any step's input."""
        text = value.get("filter") if isinstance(value, Mapping) else None
        if not isinstance(text, str):
            return self._rendered_input(context, value, scope, field)
        limit, now = self.limits.step_input_max_bytes, context.now()
        rest = render(
            {k: v for k, v in value.items() if k != "filter"},
            scope,
            now=now,
            field=field,
            max_bytes=limit,
        )
        filter_ = render_filter(text, scope, now=now, field=f"{field}.filter", max_bytes=limit)
        encoded = _encoded({k: filter_ if k == "filter" else rest[k] for k in value}, field)
        context.budget.spend_rendered(field, len(encoded))
        return msgspec.json.decode(encoded)

    async def _guard(
        self, context: _Context, path: str, evaluate: Callable[[], Any], tool: str = ""
    ) -> Any:
        """Evaluate a template or condition; a broken one fails the run (retrying can't help).

        A limit exceeded fails the step too (recorded as its failure, naming the limit).
        """
        try:
            return evaluate()
        except LimitExceeded as exc:
            if self.raise_limits:
                raise
            await self._over_limit(context, path, tool, exc)
            raise _Stop from None
        except RuleViolation as exc:
            await self._failed_for_good(context, path, tool, f"{exc.field}: {exc.reason}")
            raise _Stop from None

    async def _over_limit(
        self, context: _Context, path: str, tool: str, exc: LimitExceeded
    ) -> None:
        """A limit exceeded fails its step for good, naming the limit (retrying can't help)."""
        await self._failed_for_good(context, path, tool, f"{exc.field}: {exc.reason}")

    async def _failed_for_good(self, context: _Context, path: str, tool: str, error: str) -> None:
        """The step at ``path`` failed in a way no retry can mend (a template that cannot be
        evaluated, a limit): recorded on the step, and the run ends."""
        run = context.run
        failed = RunStepFailed(
            run_id=run.run_id,
            step_id=path,
            attempt=run.attempt,
            tool=tool or (context.current or ("", ""))[1],
            error=error,
            retryable=False,
        )
        await self._end_attempt(context, path, Failure(error, retryable=False), [failed])

    async def _fail(
        self,
        context: _Context,
        step: Mapping[str, Any],
        path: str,
        rendered: Any,
        elapsed_ms: float,
        failure: Failure,
    ) -> Any:
        run = context.run
        continued = step.get("on_error", "fail") == "continue"
        failed = RunStepFailed(
            run_id=run.run_id,
            step_id=path,
            attempt=run.attempt,
            tool=step["uses"],
            error=failure.error,
            input=rendered,
            duration_ms=round(elapsed_ms, 3),
            retryable=failure.retryable,
            continued=continued,
        )
        if continued:
            await self._record(run, [failed])
            return {"error": failure.error}
        await self._end_attempt(context, path, failure, [failed])
        raise _Stop

    async def _crashed(self, context: _Context, exc: Exception) -> None:
        """Something nothing expected went wrong in this run (its events could not be
        recorded, a rule raised): fail this attempt, saying why, and touch no other run."""
        run = context.run
        if not isinstance(exc, RecordRejected):  # the recorder has said why already
            log.error("run failed unexpectedly", run_id=run.run_id, exc_info=exc)
        path, uses = context.current or ("", "")
        if isinstance(exc, RecordRejected):
            prefix = "its events could not be recorded"
        else:
            prefix = f"the worker failed: {type(exc).__name__}"
        failure = Failure(f"{prefix}: {excerpt(str(exc), 300)}", retryable=True)
        failed: list[Event] = []
        if path:
            step = RunStepFailed(
                run_id=run.run_id,
                step_id=path,
                attempt=run.attempt,
                tool=uses,
                error=failure.error,
                retryable=True,
            )
            failed.append(step)
        await self._end_attempt(context, path, failure, failed)

    async def _end_attempt(
        self, context: _Context, path: str, failure: Failure, events: list[Event]
    ) -> None:
        run = context.run
        ending = decide_failure(run.run_id, run.attempt, failure, run.definition, datetime.now(UTC))
        log.info(
            "run attempt failed",
            run_id=run.run_id,
            step=path,
            error=redact(failure.error, self._secrets.get(run.run_id, {})),
            outcome=ending.__struct_config__.tag,
        )
        await self._emit(run, [*events, ending])

    async def _emit(self, run: LeasedRun, events: list[Event]) -> RecordOutcome:
        """Record ``events``, with the secrets the run received blanked out of them."""
        secrets = self._secrets.get(run.run_id)
        if secrets:
            events = [_redacted(event, secrets) for event in events]
        outcome = await self.record(run.run_id, events)
        if outcome is not RecordOutcome.LOST and self.observe:
            _count_outcomes(events)
        return outcome

    async def _record(self, run: LeasedRun, events: list[Event]) -> None:
        """Record; stop if the lease is gone, or stop at this boundary if canceled."""
        outcome = await self._emit(run, events)
        if outcome is RecordOutcome.LOST:
            log.warning("lease lost; another worker owns the run now", run_id=run.run_id)
            raise _Stop
        if outcome is RecordOutcome.CANCEL_REQUESTED and not isinstance(events[-1], RunSucceeded):
            await self._emit(run, [RunCanceled(run_id=run.run_id, reason="canceled on request")])
            raise _Stop


def _encoded(rendered: Any, field: str) -> bytes:
    try:
        return msgspec.json.encode(rendered)
    except (TypeError, msgspec.EncodeError, RecursionError) as exc:
        raise TemplateError(field, f"the rendered input is not JSON ({exc})") from None


def _tool_failure(exc: Exception) -> Failure:
    """A tool call's exception as its step's failure: a ToolCallError says whether to
    retry; anything else is the tool's (or its transport's) bug, worth another try."""
    if isinstance(exc, ToolCallError):
        return Failure(exc.message, exc.retryable)
    return Failure(f"the tool failed: {type(exc).__name__}: {excerpt(str(exc), 300)}", True)


def _planned_items(
    context: _Context, options: Mapping[str, Any], data: dict[str, Any], path: str
) -> list[Any]:
    """A foreach's items, once its items and the iterations it surely leads to (nested loops
    over known data included) are within the run's limits: refused before any work."""
    field = f"{path}.with.items_path"
    items = select_items(options["items_path"], data, now=context.now(), field=field)
    context.budget.check_items(field, len(items))
    inner = planned_iterations(
        options["body"], data, context.now(), context.budget, f"{path}.with.body"
    )
    context.budget.check_planned(field, len(items) * (1 + inner))
    return items


def _redacted(event: Event, secrets: dict[str, str]) -> Event:
    """The event with every secret value in its fields replaced by a marker."""
    fields = redact(msgspec.to_builtins(event), secrets)
    return msgspec.convert(fields, type(event))


_OUTCOMES = {
    "run.succeeded": "succeeded",
    "run.attempt_failed": "attempt_failed",
    "run.dead": "dead",
    "run.canceled": "canceled",
}


def _count_outcomes(events: list[Event]) -> None:
    for event in events:
        status = _OUTCOMES.get(str(event.__struct_config__.tag))
        if status is not None:
            RUNS.labels(status).inc()
