"""Every fact Ordinaut records, as frozen msgspec structs in one tagged union."""

from __future__ import annotations

import typing
from datetime import datetime
from typing import Any, Literal

import msgspec

ScheduleKind = Literal["cron", "rrule", "once", "event", "condition"]
BackoffStrategy = Literal["exponential_jitter", "exponential", "linear", "fixed"]
MisfirePolicy = Literal["run_once", "skip", "run_all"]


class _Event(
    msgspec.Struct, frozen=True, kw_only=True, tag_field="type", forbid_unknown_fields=False
):
    """Base of all events; the tag is the event type, e.g. ``task.created``.

    Unknown fields are tolerated on decode so that an older reader can still read events that a
    newer writer extended with optional fields.
    """


class QuietWindow(msgspec.Struct, frozen=True, kw_only=True):
    """Local wall times ``HH:MM[:SS]``; a window whose end is before its start crosses midnight."""

    start: str
    end: str


class TaskDefinition(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """The user-controlled part of a task, as validated by the command layer."""

    title: str
    schedule_kind: ScheduleKind
    schedule_expr: str
    timezone: str = "UTC"
    description: str | None = None
    payload: dict[str, Any] = msgspec.field(default_factory=dict)
    priority: int = 5
    dedupe_key: str | None = None
    dedupe_window_seconds: int | None = None
    max_retries: int = 3
    backoff_strategy: BackoffStrategy = "exponential_jitter"
    backoff_base_seconds: float = 2.0
    backoff_max_seconds: float = 3_600.0
    concurrency_key: str | None = None
    max_concurrency: int = 1
    key: str | None = None
    dtstart: datetime | None = None
    misfire_policy: MisfirePolicy = "run_once"
    misfire_grace_seconds: int | None = None
    jitter_seconds: int = 0
    metadata: dict[str, str] = msgspec.field(default_factory=dict)
    # Event and condition tasks: a JMESPath boolean over the event that must hold to fire.
    filter: str | None = None
    # Condition tasks: a JMESPath boolean over {event, state}; fires when it turns true.
    condition: str | None = None
    # Re-evaluating a condition on a cron cadence; refused for now (not supported yet).
    condition_cron: str | None = None
    # Governance: what the task's tool calls may cost per day (in the task's zone), and when
    # steps that notify must wait (local windows in the task's zone).
    budget_per_day: float | None = None
    quiet_hours: tuple[QuietWindow, ...] = ()
    # Event tasks: events within this many seconds of the first one join its run (which
    # starts when the window ends), per ``debounce_key`` (JMESPath over the event) if given.
    debounce_seconds: int | None = None
    debounce_key: str | None = None


class TaskCreated(_Event, frozen=True, tag="task.created"):
    """A task was defined; ``next_run_at`` is decided once, here, so replay never needs a clock."""

    task_id: str
    definition: TaskDefinition
    next_run_at: datetime | None = None


class TaskUpdated(_Event, frozen=True, tag="task.updated"):
    """Some fields of a task changed; ``definition`` is the whole new definition."""

    task_id: str
    definition: TaskDefinition
    changed: tuple[str, ...]
    next_run_at: datetime | None = None


class TaskPaused(_Event, frozen=True, tag="task.paused"):
    """The task stops firing until resumed."""

    task_id: str


class TaskResumed(_Event, frozen=True, tag="task.resumed"):
    """The task fires again from ``next_run_at``."""

    task_id: str
    next_run_at: datetime | None = None
    catch_up: bool = False


class TaskSnoozed(_Event, frozen=True, tag="task.snoozed"):
    """Only the next occurrence moved to ``until``."""

    task_id: str
    until: datetime


class TaskCanceled(_Event, frozen=True, tag="task.canceled"):
    """The task will never fire again (terminal)."""

    task_id: str


class TaskCompleted(_Event, frozen=True, tag="task.completed"):
    """The schedule has no further occurrence (terminal)."""

    task_id: str


class TaskDeleted(_Event, frozen=True, tag="task.deleted"):
    """The task is hidden from reads; its events stay for audit."""

    task_id: str


class TaskDue(_Event, frozen=True, tag="task.due"):
    """An occurrence fired: run ``run_id`` becomes due work at ``run_at``.

    ``next_run_at`` is the task's following occurrence (None once the schedule is exhausted);
    priority and concurrency key are copied as they were when the occurrence fired.
    """

    task_id: str
    run_id: str
    scheduled_for: datetime
    fired_at: datetime
    run_at: datetime
    next_run_at: datetime | None
    priority: int = 5
    concurrency_key: str | None = None
    catch_up: bool = False


class TaskRunRequested(_Event, frozen=True, tag="task.run_requested"):
    """Someone asked for a run now; the schedule is not disturbed."""

    task_id: str
    run_id: str
    run_at: datetime
    priority: int = 5
    concurrency_key: str | None = None


class ScheduleMissed(_Event, frozen=True, tag="schedule.missed"):
    """Occurrences that passed while no timer ran and that the misfire policy chose not to run."""

    task_id: str
    occurrences: tuple[datetime, ...]
    policy: MisfirePolicy
    more: bool = False
    next_run_at: datetime | None = None


class AgentCreated(_Event, frozen=True, tag="agent.created"):
    """An identity that holds tokens and scopes; every event it causes names it as actor."""

    agent_id: str
    name: str
    scopes: tuple[str, ...]
    webhook_url: str | None = None
    # Event types the webhook receives; None means domain.webhooks.DEFAULT_NOTIFY_EVENTS.
    notify_events: tuple[str, ...] | None = None


class AgentLimitsSet(_Event, frozen=True, tag="agent.limits_set"):
    """The admin set an agent's limits (each replaces the previous setting as a whole).

    ``budget_per_day`` caps what the tool calls of all the agent's tasks cost per UTC day;
    ``quiet_hours`` (read in ``timezone``) hold back notifying steps of all its tasks;
    ``rate_limits`` overrides the API's limits by route group, e.g. ``{"commands": "5/s"}``.
    """

    agent_id: str
    budget_per_day: float | None = None
    quiet_hours: tuple[QuietWindow, ...] = ()
    timezone: str = "UTC"
    rate_limits: dict[str, str] = msgspec.field(default_factory=dict)


class AgentUpdated(_Event, frozen=True, tag="agent.updated"):
    """An admin changed an agent; fields left None did not change."""

    agent_id: str
    scopes: tuple[str, ...] | None = None


class AgentTokenIssued(_Event, frozen=True, tag="agent.token_issued"):
    """A bearer token for an agent; only its SHA-256 is recorded, never the token."""

    agent_id: str
    token_id: str
    token_sha256: str
    label: str | None = None


class AgentTokenRevoked(_Event, frozen=True, tag="agent.token_revoked"):
    """The token stops working at once."""

    agent_id: str
    token_id: str


class ToolRateLimit(msgspec.Struct, frozen=True, kw_only=True):
    """At most ``calls`` calls of a tool in any window of ``per_seconds`` seconds."""

    calls: int
    per_seconds: float


class ToolRegistered(_Event, frozen=True, tag="tool.registered"):
    """A tool joined the catalog (or its registration was replaced)."""

    address: str
    transport: Literal["builtin", "http", "mcp", "python"]
    description: str | None = None
    endpoint: str | None = None
    command: tuple[str, ...] | None = None
    # A python tool's function, "package.module:function" (sync or async).
    callable: str | None = None
    input_schema: dict[str, Any] = msgspec.field(default_factory=dict)
    output_schema: dict[str, Any] = msgspec.field(default_factory=dict)
    timeout_seconds: float = 30.0
    scopes: tuple[str, ...] = ()
    # At most ``calls`` calls in any ``per_seconds``, across all runs and workers; more wait.
    rate_limit: ToolRateLimit | None = None
    # What one call costs against budgets (an output's ``_cost`` number overrides it).
    cost_per_call: float | None = None


class ToolRemoved(_Event, frozen=True, tag="tool.removed"):
    """A tool left the catalog; tasks using it are refused from now on."""

    address: str


class SecretStored(_Event, frozen=True, tag="secret.stored"):
    """A named secret was stored or replaced; only its ciphertext is ever recorded."""

    name: str
    # AES-GCM under the deployment's secret key, bound to the name (see services/secrets)
    ciphertext: str
    allowed_tools: tuple[str, ...]
    description: str | None = None
    # Whose secret it is: the agent that stored it, or the admin. Events recorded before
    # secrets had owners were all the admin's.
    owner: str = "admin"
    # Agents besides the owner whose runs may use it ("*": every agent); only the admin
    # shares. None: recorded before sharing existed, and kept shared with every agent so
    # deployments that relied on that keep working (see domain/secrets.py).
    agents: tuple[str, ...] | None = None


class SecretDeleted(_Event, frozen=True, tag="secret.deleted"):
    """A secret was deleted; steps referring to it fail from now on."""

    name: str


class EventReceived(_Event, frozen=True, tag="event.received"):
    """An external event was published to Ordinaut (HTTP or the ingest stream)."""

    event_id: str
    topic: str
    payload: dict[str, Any]
    occurred_at: datetime | None = None
    source: str = "api"


RunTrigger = Literal["schedule", "run_now", "event", "condition", "retry", "rerun"]


class RunQueued(_Event, frozen=True, tag="run.queued"):
    """A run (or a new attempt of it) waits for a worker from ``run_at``.

    Flow control is copied from the task when the run is queued, so a later edit of the task
    changes future runs only, and a worker needs nothing else to decide when this one may go.
    """

    run_id: str
    task_id: str
    owner: str
    scheduled_for: datetime
    run_at: datetime
    attempt: int = 1
    trigger: RunTrigger = "schedule"
    priority: int = 5
    concurrency_key: str | None = None
    max_concurrency: int = 1
    dedupe_key: str | None = None
    dedupe_window_seconds: int | None = None
    event: dict[str, Any] | None = None
    # A re-run: the run it repeats, from which step (the steps before keep that run's outputs).
    rerun_of: str | None = None
    from_step: str | None = None
    # A debounced event task's key (the owner's; see domain.debounce): later events within the
    # window join this run (``run.debounced``) instead of queueing their own.
    debounce_key: str | None = None


class ConditionEvaluated(_Event, frozen=True, tag="condition.evaluated"):
    """A condition task's condition changed value on event ``event_id``.

    Only changes are recorded, so replaying them rebuilds the state the next evaluation sees
    (the value, and the payload of the event that set it). ``run_id`` is the run it fired on a
    false-to-true edge.
    """

    task_id: str
    value: bool
    previous: bool | None
    event_id: str
    topic: str
    payload: dict[str, Any] = msgspec.field(default_factory=dict)
    run_id: str | None = None


class RunStarted(_Event, frozen=True, tag="run.started"):
    """A worker leased the run until ``lease_until``; ``resumed`` if an earlier lease lapsed."""

    run_id: str
    attempt: int
    worker: str
    lease_until: datetime
    resumed: bool = False


class RunStepSucceeded(_Event, frozen=True, tag="run.step_succeeded"):
    """A step's tool returned ``output`` for the rendered ``input``.

    ``step_id`` is a path: ``notify``, or ``each[2].send`` for a step of a foreach body.
    """

    run_id: str
    step_id: str
    attempt: int
    tool: str
    input: Any = None
    output: Any = None
    duration_ms: float = 0.0
    # What the call cost against budgets (the tool's cost_per_call, or the _cost it reported),
    # and the day it counts for in the task's zone (agents' budgets count UTC days).
    cost: float = 0.0
    cost_day: str | None = None
    # A re-run's kept step: the run whose recorded output this is (the tool was not called).
    reused_from: str | None = None


class RunStepFailed(_Event, frozen=True, tag="run.step_failed"):
    """A step failed; with ``continued`` the run went on (``on_error: continue``)."""

    run_id: str
    step_id: str
    attempt: int
    tool: str
    error: str
    input: Any = None
    duration_ms: float = 0.0
    retryable: bool = True
    continued: bool = False


class RunStepSkipped(_Event, frozen=True, tag="run.step_skipped"):
    """A step's ``if`` was false."""

    run_id: str
    step_id: str
    attempt: int
    condition: str


class RunSucceeded(_Event, frozen=True, tag="run.succeeded"):
    """Every step succeeded, was skipped, or failed with ``on_error: continue``."""

    run_id: str
    attempt: int


class RunAttemptFailed(_Event, frozen=True, tag="run.attempt_failed"):
    """An attempt failed; the next one is due at ``retry_at``."""

    run_id: str
    attempt: int
    error: str
    retry_at: datetime


class RunDead(_Event, frozen=True, tag="run.dead"):
    """The run failed for good (retries exhausted, or an error retrying cannot fix)."""

    run_id: str
    attempt: int
    error: str
    # Why, when a rule rather than an error ended it, e.g. "budget_exceeded".
    reason: str | None = None


class RunDeferred(_Event, frozen=True, tag="run.deferred"):
    """The run stopped before ``step_id`` and is due again at ``until`` (e.g. quiet hours end).

    Steps done so far are kept; the same attempt goes on from ``step_id`` when leased again.
    """

    run_id: str
    step_id: str
    attempt: int
    until: datetime
    reason: str = "quiet_hours"


class BudgetExceeded(_Event, frozen=True, tag="budget.exceeded"):
    """A step would have spent more than a daily budget allows, so its run was stopped.

    ``owner`` is the agent owning the task (who is told); ``scope`` says whose budget it was.
    """

    run_id: str
    task_id: str
    owner: str
    step_id: str
    tool: str
    scope: Literal["task", "agent"]
    budget: float
    spent: float
    cost: float
    day: str


class RunCancelRequested(_Event, frozen=True, tag="run.cancel_requested"):
    """Someone asked a running run to stop at its next step boundary."""

    run_id: str
    reason: str | None = None


class RunCanceled(_Event, frozen=True, tag="run.canceled"):
    """The run stopped for good before finishing."""

    run_id: str
    reason: str | None = None


class RunDeduplicated(_Event, frozen=True, tag="run.deduplicated"):
    """Not run: ``duplicate_of`` with the same dedupe key ran (or runs) within the window."""

    run_id: str
    dedupe_key: str
    duplicate_of: str


class ApprovalRequested(_Event, frozen=True, tag="approval.requested"):
    """The run is parked at ``step_id`` until someone approves or rejects it."""

    run_id: str
    step_id: str
    message: str
    data: Any = None
    expires_at: datetime | None = None
    on_timeout: Literal["reject", "approve"] = "reject"


class ApprovalGranted(_Event, frozen=True, tag="approval.granted"):
    """The parked step was approved (perhaps only some of its items); the run resumes."""

    run_id: str
    step_id: str
    comment: str | None = None
    approved_items: Any = None
    expired: bool = False


class ApprovalRejected(_Event, frozen=True, tag="approval.rejected"):
    """The parked step was rejected (or timed out); the run resumes and sees the rejection."""

    run_id: str
    step_id: str
    comment: str | None = None
    expired: bool = False


class RunWaiting(_Event, frozen=True, tag="run.waiting"):
    """The run parked at ``step_id``, holding no lease, for an event or for a time.

    ``kind`` "event": until an ``event.received`` on ``topic`` (a glob) whose ``filter`` (JMESPath
    over ``{event, params, steps, run}``; ``scope`` holds the run's part) holds, published by
    the run's owner or the admin after ``since_position``; or until ``until`` (then
    ``on_timeout``: fail the step, or output ``default``). ``kind`` "sleep": until ``until``.
    """

    run_id: str
    step_id: str
    attempt: int
    kind: Literal["event", "sleep"]
    tool: str
    input: Any = None
    topic: str | None = None
    filter: str | None = None
    scope: dict[str, Any] = msgspec.field(default_factory=dict)
    until: datetime | None = None
    on_timeout: Literal["fail", "default"] = "fail"
    default: Any = None
    since_position: int = 0
    # Event ids earlier waits of this run consumed: one event resumes one wait.
    consumed: tuple[str, ...] = ()


class RunResumed(_Event, frozen=True, tag="run.resumed"):
    """The waiting step ended: its event came (``output`` is that event) or a sleep ended."""

    run_id: str
    step_id: str
    reason: Literal["event", "woke"]
    output: Any = None
    position: int | None = None


class RunWaitTimedOut(_Event, frozen=True, tag="run.wait_timed_out"):
    """No matching event came in time: the step failed, or output its default."""

    run_id: str
    step_id: str
    failed: bool
    output: Any = None


class RunRerunRequested(_Event, frozen=True, tag="run.rerun_requested"):
    """Someone re-ran this run from ``from_step`` as the new run ``rerun_id``."""

    run_id: str
    rerun_id: str
    from_step: str


class RunDebounced(_Event, frozen=True, tag="run.debounced"):
    """One more event joined a debounced run before it started: the run sees ``event`` (the
    last one, with ``debounce.count`` events so far)."""

    run_id: str
    event: dict[str, Any]
    count: int


class WebhookAttempted(_Event, frozen=True, tag="webhook.attempted"):
    """One try to deliver the event at ``position`` to an agent's webhook.

    ``status`` is the HTTP status (None when no answer came); ``error`` says what went wrong.
    """

    agent_id: str
    position: int
    event_type: str
    attempt: int
    status: int | None = None
    error: str | None = None
    duration_ms: float = 0.0


class WebhookDelivered(_Event, frozen=True, tag="webhook.delivered"):
    """The receiver acknowledged the event (2xx); it is never sent again."""

    agent_id: str
    position: int
    attempt: int


class WebhookFailed(_Event, frozen=True, tag="webhook.failed"):
    """Every allowed attempt failed; the event is not sent again."""

    agent_id: str
    position: int
    attempts: int
    error: str


Event = (
    TaskCreated
    | TaskUpdated
    | TaskPaused
    | TaskResumed
    | TaskSnoozed
    | TaskCanceled
    | TaskCompleted
    | TaskDeleted
    | TaskDue
    | TaskRunRequested
    | ScheduleMissed
    | AgentCreated
    | AgentUpdated
    | AgentTokenIssued
    | AgentLimitsSet
    | AgentTokenRevoked
    | ToolRegistered
    | ToolRemoved
    | EventReceived
    | RunQueued
    | ConditionEvaluated
    | RunStarted
    | RunStepSucceeded
    | RunStepFailed
    | RunStepSkipped
    | RunSucceeded
    | RunAttemptFailed
    | RunDead
    | RunDeferred
    | BudgetExceeded
    | RunCancelRequested
    | RunCanceled
    | RunDeduplicated
    | ApprovalRequested
    | ApprovalGranted
    | ApprovalRejected
    | RunWaiting
    | RunResumed
    | RunWaitTimedOut
    | RunRerunRequested
    | RunDebounced
    | WebhookAttempted
    | WebhookDelivered
    | WebhookFailed
    | SecretStored
    | SecretDeleted
)

EVENT_TYPES: dict[str, type[_Event]] = {
    str(cls.__struct_config__.tag): cls for cls in typing.get_args(Event)
}


def task_stream(task_id: str) -> str:
    """The stream holding one task's events."""
    return f"task-{task_id}"


def run_stream(run_id: str) -> str:
    """The stream holding one run's events."""
    return f"run-{run_id}"


def condition_stream(task_id: str) -> str:
    """The stream holding one condition task's evaluations (apart from its commands)."""
    return f"condition-{task_id}"


def tool_stream(address: str) -> str:
    """The stream holding one catalog entry's events."""
    return f"tool-{address}"


def secret_stream(name: str) -> str:
    """The stream holding one secret's events."""
    return f"secret-{name}"


def agent_stream(agent_id: str) -> str:
    """The stream holding one agent's events."""
    return f"agent-{agent_id}"


def webhook_stream(agent_id: str, position: int) -> str:
    """The stream recording the delivery of the event at ``position`` to one agent: its
    version counts the attempts, so a second delivery cannot be recorded unnoticed."""
    return f"webhook-{agent_id}-{position}"


def event_type(event: Event) -> str:
    """The tag under which ``event`` is stored, e.g. ``task.created``."""
    tag = event.__struct_config__.tag
    assert isinstance(tag, str)
    return tag
