"""What each event does to tools, secrets, agents' limits and condition state
(projections/rules/tool.py, secret.py, agent_limits.py, condition.py), without a database."""

from __future__ import annotations

import msgspec
import pytest

from domain.events import (
    AgentLimitsSet,
    ConditionEvaluated,
    SecretDeleted,
    SecretStored,
    TaskDefinition,
    TaskUpdated,
    ToolRegistered,
    ToolRemoved,
)
from domain.secrets import EVERY_AGENT
from projections.rules import agent_limits, condition, secret, tool
from tests.unit.projections.support import AT, LATER, envelope

TOOL = ToolRegistered(address="acme.send", transport="http", endpoint="http://127.0.0.1:1/s")


def test_a_registered_tool_stores_its_whole_registration_without_the_type_tag() -> None:
    row = tool.RULES["tool.registered"](None, envelope("tool-acme.send", TOOL, version=1))
    assert row is not None
    assert (row["address"], row["transport"], row["registered_at"]) == ("acme.send", "http", AT)
    assert (row["updated_at"], row["version"]) == (AT, 1)
    definition = msgspec.json.decode(row["definition"])
    assert "type" not in definition
    assert definition["endpoint"] == "http://127.0.0.1:1/s"


def test_a_replaced_tool_keeps_when_it_was_first_registered() -> None:
    first = tool.RULES["tool.registered"](None, envelope("tool-acme.send", TOOL, version=1))
    again = msgspec.structs.replace(TOOL, timeout_seconds=5.0)
    row = tool.RULES["tool.registered"](first, envelope("tool-acme.send", again, at=LATER))
    assert row is not None
    assert (row["registered_at"], row["updated_at"], row["version"]) == (AT, LATER, 2)
    assert msgspec.json.decode(row["definition"])["timeout_seconds"] == 5.0


def test_a_removed_tool_has_no_row() -> None:
    first = tool.RULES["tool.registered"](None, envelope("tool-acme.send", TOOL, version=1))
    removed = envelope("tool-acme.send", ToolRemoved(address="acme.send"))
    assert tool.RULES["tool.removed"](first, removed) is None
    assert tool.MODEL.removes == {"tool.removed"}


SECRET = SecretStored(
    name="api-key", ciphertext="c1", allowed_tools=("acme.send",), owner="alice", agents=("bob",)
)


def test_a_stored_secret_names_its_owner_and_who_may_use_it() -> None:
    row = secret.RULES["secret.stored"](None, envelope("secret-api-key", SECRET, version=1))
    assert row == {
        "name": "api-key",
        "ciphertext": "c1",
        "allowed_tools": ["acme.send"],
        "description": None,
        "created_at": AT,
        "updated_at": AT,
        "version": 1,
        "owner": "alice",
        "agents": ["bob"],
    }


def test_a_replaced_secret_keeps_its_creation_and_an_old_one_stays_shared_with_every_agent() -> (
    None
):
    first = secret.RULES["secret.stored"](None, envelope("secret-api-key", SECRET, version=1))
    old_style = SecretStored(name="api-key", ciphertext="c2", allowed_tools=())
    row = secret.RULES["secret.stored"](first, envelope("secret-api-key", old_style, at=LATER))
    assert row is not None
    assert (row["created_at"], row["updated_at"], row["ciphertext"]) == (AT, LATER, "c2")
    assert (row["owner"], row["agents"]) == ("admin", [EVERY_AGENT])


def test_a_deleted_secret_has_no_row() -> None:
    first = secret.RULES["secret.stored"](None, envelope("secret-api-key", SECRET, version=1))
    deleted = envelope("secret-api-key", SecretDeleted(name="api-key"))
    assert secret.RULES["secret.deleted"](first, deleted) is None
    assert secret.MODEL.removes == {"secret.deleted"}


def test_limits_set_replace_the_agents_limits_whole() -> None:
    limits = AgentLimitsSet(agent_id="a-1", budget_per_day=2.5, rate_limits={"commands": "5/s"})
    before = {"agent_id": "a-1", "budget_per_day": 9.0, "quiet_hours": "[1]", "timezone": "X"}
    row = agent_limits.RULES["agent.limits_set"](before, envelope("agent-a-1", limits, at=LATER))
    assert row == {
        "agent_id": "a-1",
        "budget_per_day": 2.5,
        "quiet_hours": "[]",
        "timezone": "UTC",
        "rate_limits": '{"commands":"5/s"}',
        "updated_at": LATER,
    }


EVALUATED = ConditionEvaluated(
    task_id="t-1", value=True, previous=None, event_id="e-1", topic="x", payload={"n": 1}
)
STATE = {
    "task_id": "t-1",
    "value": True,
    "payload": '{"n":1}',
    "event_id": "e-1",
    "evaluated_at": AT,
}


def test_an_evaluation_keeps_the_latest_value_and_the_payload_that_set_it() -> None:
    row = condition.RULES["condition.evaluated"](None, envelope("condition-t-1", EVALUATED))
    assert row == STATE


def _updated(*changed: str) -> TaskUpdated:
    definition = TaskDefinition(title="t", schedule_kind="event", schedule_expr="x")
    return TaskUpdated(task_id="t-1", definition=definition, changed=changed)


@pytest.mark.parametrize("field", sorted(condition.RESET_ON))
def test_a_change_of_what_the_condition_watches_starts_it_again_from_unknown(field: str) -> None:
    assert condition.RULES["task.updated"](STATE, envelope("task-t-1", _updated(field))) is None


def test_another_change_of_the_task_keeps_the_state() -> None:
    assert condition.RULES["task.updated"](STATE, envelope("task-t-1", _updated("title"))) == STATE


@pytest.mark.parametrize("model", [tool, secret, agent_limits, condition])
def test_each_projection_handles_exactly_its_rules_table(model: object) -> None:
    from projections.registry import inline_projections

    rules = model.RULES  # type: ignore[attr-defined]
    names = {p.name: p for p in inline_projections().projections}
    by_table = {p.tables[0]: p for p in names.values()}
    assert by_table[model.TABLE].handles == frozenset(rules)  # type: ignore[attr-defined]
