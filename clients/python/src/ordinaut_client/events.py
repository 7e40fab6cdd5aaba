"""Every event Ordinaut records, as pydantic models: one discriminated union on ``type``.

The models are generated from the server's msgspec structs (scripts/generate.sh); a test checks
they still match. ``parse_event`` reads an event's JSON (an ``ordinaut:events`` entry's ``data``
field, or a StoredEvent's ``data``); an unknown ``type`` raises (a newer server: upgrade).
"""

from __future__ import annotations

import typing
from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, Field, TypeAdapter

from ordinaut_client._event_models import (
    AgentCreated,
    AgentLimitsSet,
    AgentTokenIssued,
    AgentTokenRevoked,
    AgentUpdated,
    ApprovalGranted,
    ApprovalRejected,
    ApprovalRequested,
    BudgetExceeded,
    ConditionEvaluated,
    EventReceived,
    RunAttemptFailed,
    RunCanceled,
    RunCancelRequested,
    RunDead,
    RunDebounced,
    RunDeduplicated,
    RunDeferred,
    RunQueued,
    RunRerunRequested,
    RunResumed,
    RunStarted,
    RunStepFailed,
    RunStepSkipped,
    RunStepSucceeded,
    RunSucceeded,
    RunWaiting,
    RunWaitTimedOut,
    ScheduleMissed,
    SecretDeleted,
    SecretStored,
    TaskCanceled,
    TaskCompleted,
    TaskCreated,
    TaskDeleted,
    TaskDue,
    TaskPaused,
    TaskResumed,
    TaskRunRequested,
    TaskSnoozed,
    TaskUpdated,
    ToolRegistered,
    ToolRemoved,
    WebhookAttempted,
    WebhookDelivered,
    WebhookFailed,
)

AnyEvent = (
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
    | WebhookAttempted
    | WebhookDelivered
    | WebhookFailed
    | SecretStored
    | SecretDeleted
    | RunWaiting
    | RunResumed
    | RunWaitTimedOut
    | RunRerunRequested
    | RunDebounced
)
Event = Annotated[AnyEvent, Field(discriminator="type")]
EVENT_MODELS: dict[str, type[BaseModel]] = {
    typing.get_args(cls.model_fields["type"].annotation)[0]: cls
    for cls in typing.get_args(AnyEvent)
}
_EVENT: TypeAdapter[AnyEvent] = TypeAdapter(Event)


def parse_event(data: bytes | str | dict[str, Any]) -> AnyEvent:
    """The typed event in ``data`` (JSON text or an already decoded object)."""
    if isinstance(data, dict):
        return _EVENT.validate_python(data)
    return _EVENT.validate_json(data)


class Entry(BaseModel):
    """Where an event sits in the log, from its ``ordinaut:events`` entry (or a StoredEvent)."""

    position: int
    stream: str
    version: int
    recorded_at: datetime
    meta: dict[str, Any] = Field(default_factory=dict)
