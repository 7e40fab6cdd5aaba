"""Who owns which events: the rule behind what an agent may read from the log.

Every stream belongs to one principal, fixed by the event that opens it: a task (and its
condition evaluations) to the actor who created it, a run to its task's owner (named on
``run.queued``), an agent's stream to the agent, a webhook delivery to the agent it goes to, a
tool to whoever registered it, a secret to its owner (the agent that first stored
its name, or the admin). Every later event of a stream belongs to
the stream's owner, whoever caused it (a worker's ``run.started`` is the run owner's).

External events (``event.received``) go to per-topic streams that many publishers share, so
each one belongs to its publisher only. The tasks it fires get it inside their ``run.queued``
(its ``event`` field), in a stream their owner owns.
"""

from __future__ import annotations

from domain.errors import Refusal, RuleViolation
from domain.events import (
    AgentCreated,
    ConditionEvaluated,
    Event,
    EventReceived,
    RunQueued,
    SecretStored,
    TaskCreated,
    TaskDefinition,
    ToolRegistered,
    WebhookAttempted,
    WebhookDelivered,
    WebhookFailed,
    task_stream,
)

ADMIN = "admin"


# Every event whose owner the three rules below may decide: it opens a stream, inherits one or
# belongs to its publisher. Any other event belongs to its stream's owner, so whoever files the
# whole log (the rebuild) skips the rules for most events. Keep it the union of the classes the
# rules name (tests/unit/projections/test_ownership_and_spend_rules.py checks it).
DECIDES_OWNER: tuple[type[Event], ...] = (
    TaskCreated,
    ToolRegistered,
    RunQueued,
    AgentCreated,
    WebhookAttempted,
    WebhookDelivered,
    WebhookFailed,
    SecretStored,
    ConditionEvaluated,
    EventReceived,
)


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
        case SecretStored(owner=owner):
            return owner
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


# Keys that coordinate runs (dedupe_key, concurrency_key) are the owner's own: the same text in
# two agents' tasks names two keys. A key starting with SHARED is one key across every agent;
# only the admin (or an agent granted SHARE_KEYS_SCOPE) may set one on a task.
SHARED = "shared:"
SHARE_KEYS_SCOPE = "keys:shared"


def scoped_key(owner: str, key: str | None) -> str | None:
    """The key as read models compare it: prefixed with its owner unless shared."""
    if key is None or key.startswith(SHARED):
        return key
    return f"{owner}/{key}"


def check_shared_keys(definition: TaskDefinition, granted: frozenset[str]) -> None:
    """Refuse a shared coordination key unless the caller may share keys (forbidden)."""
    if ADMIN in granted or SHARE_KEYS_SCOPE in granted:
        return
    for name in ("dedupe_key", "concurrency_key"):
        key = getattr(definition, name)
        if key is not None and key.startswith(SHARED):
            reason = f"a key starting with {SHARED!r} is shared by every agent: the admin "
            raise RuleViolation(
                name, reason + f"may set one (or grant {SHARE_KEYS_SCOPE!r})", Refusal.FORBIDDEN
            )
