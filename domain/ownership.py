"""Who owns which events: the rule behind what an agent may read from the log.

Every stream belongs to one principal, fixed by the event that opens it: a task (and its
condition evaluations) to the actor who created it, a run to its task's owner (named on
``run.queued``), an agent's stream to the agent, a webhook delivery to the agent it goes to, a
tool to whoever registered it, a secret to the admin. Every later event of a stream belongs to
the stream's owner, whoever caused it (a worker's ``run.started`` is the run owner's).

External events (``event.received``) go to per-topic streams that many publishers share, so
each one belongs to its publisher only. The tasks it fires get it inside their ``run.queued``
(its ``event`` field), in a stream their owner owns.
"""

from __future__ import annotations

from domain.events import (
    AgentCreated,
    ConditionEvaluated,
    Event,
    EventReceived,
    RunQueued,
    SecretStored,
    TaskCreated,
    ToolRegistered,
    WebhookAttempted,
    WebhookDelivered,
    WebhookFailed,
    task_stream,
)

ADMIN = "admin"


def opened_by(event: Event, actor: str) -> str | None:
    """The owner of the stream ``event`` opens (None: it inherits, or opens no stream)."""
    match event:
        case TaskCreated() | ToolRegistered():
            return actor
        case RunQueued(owner=owner):
            return owner
        case AgentCreated(agent_id=agent_id):
            return agent_id
        case WebhookAttempted() | WebhookDelivered() | WebhookFailed():
            return event.agent_id
        case SecretStored():
            return ADMIN
    return None


def inherited_from(event: Event) -> str | None:
    """The stream whose owner also owns the stream ``event`` opens (a condition's task)."""
    if isinstance(event, ConditionEvaluated):
        return task_stream(event.task_id)
    return None


def own_owner(event: Event, actor: str) -> str | None:
    """The owner of an event that belongs to no stream's owner (an external event's
    publisher); None for every other event."""
    if isinstance(event, EventReceived):
        return actor
    return None
