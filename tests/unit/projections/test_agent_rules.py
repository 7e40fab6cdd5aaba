"""What each event of an agent's stream does to its agent's row and its tokens' rows
(projections/rules/agent.py), without a database."""

from __future__ import annotations

from datetime import timedelta

from domain.events import (
    AgentCreated,
    AgentLimitsSet,
    AgentTokenIssued,
    AgentTokenRevoked,
    AgentUpdated,
)
from projections.agent import AgentProjection
from projections.rules import agent as rules
from projections.rules.row import Row
from tests.unit.projections.support import AT, LATER, envelope

STREAM = "agent-a1"
CREATED = AgentCreated(
    agent_id="a1",
    name="Mailer",
    scopes=("tasks:read", "tasks:write"),
    webhook_url="http://127.0.0.1:1/hook",
    notify_events=("run.failed",),
)
ISSUED = AgentTokenIssued(agent_id="a1", token_id="t1", token_sha256="ab" * 32, label="ci")


def created() -> Row:
    row = rules.AGENT_RULES["agent.created"](None, envelope(STREAM, CREATED, version=1))
    assert row is not None
    return row


def issued() -> Row:
    row = rules.TOKEN_RULES["agent.token_issued"](None, envelope(STREAM, ISSUED, version=2))
    assert row is not None
    return row


def test_a_created_agent_has_its_name_key_scopes_and_creator() -> None:
    assert created() == {
        "id": "a1",
        "name": "Mailer",
        "name_key": "mailer",
        "scopes": ["tasks:read", "tasks:write"],
        "webhook_url": "http://127.0.0.1:1/hook",
        "created_by": "alice",
        "created_at": AT,
        "updated_at": AT,
        "version": 1,
        "notify_events": ["run.failed"],
    }


def test_an_agent_created_without_chosen_notify_events_leaves_them_to_the_default() -> None:
    plain = AgentCreated(agent_id="a1", name="Mailer", scopes=())
    row = rules.AGENT_RULES["agent.created"](None, envelope(STREAM, plain, version=1))
    assert row is not None
    assert (row["scopes"], row["webhook_url"], row["notify_events"]) == ([], None, None)


def test_an_update_replaces_the_scopes_and_moves_the_version() -> None:
    update = envelope(STREAM, AgentUpdated(agent_id="a1", scopes=("admin",)), at=LATER)
    row = rules.AGENT_RULES["agent.updated"](created(), update)
    assert row is not None
    assert (row["scopes"], row["updated_at"], row["version"]) == (["admin"], LATER, 2)
    assert row["created_at"] == AT


def test_an_update_that_names_no_scopes_keeps_them_and_still_moves_the_version() -> None:
    update = envelope(STREAM, AgentUpdated(agent_id="a1"), at=LATER, version=3)
    row = rules.AGENT_RULES["agent.updated"](created(), update)
    assert row is not None
    assert (row["scopes"], row["updated_at"], row["version"]) == (
        ["tasks:read", "tasks:write"],
        LATER,
        3,
    )


def test_an_update_that_empties_the_scopes_leaves_none() -> None:
    update = envelope(STREAM, AgentUpdated(agent_id="a1", scopes=()))
    row = rules.AGENT_RULES["agent.updated"](created(), update)
    assert row is not None
    assert row["scopes"] == []


def test_every_other_event_of_the_stream_moves_the_agents_version_only() -> None:
    limits = AgentLimitsSet(agent_id="a1", budget_per_day=1.0)
    revoked = AgentTokenRevoked(agent_id="a1", token_id="t1")
    for version, event in enumerate((ISSUED, revoked, limits), start=2):
        before = created()
        at = AT + timedelta(minutes=version)
        change = envelope(STREAM, event, version=version, at=at)
        row = rules.AGENT_RULES[change.type](before, change)
        assert row == {**before, "updated_at": at, "version": version}


def test_an_event_for_an_agent_with_no_row_makes_none() -> None:
    update = envelope(STREAM, AgentUpdated(agent_id="a1", scopes=("admin",)))
    assert rules.AGENT_RULES["agent.updated"](None, update) is None
    limits = envelope(STREAM, AgentLimitsSet(agent_id="a1"))
    assert rules.AGENT_RULES["agent.limits_set"](None, limits) is None


def test_an_issued_token_keeps_only_its_hash_and_is_live() -> None:
    assert issued() == {
        "id": "t1",
        "agent_id": "a1",
        "token_sha256": "ab" * 32,
        "label": "ci",
        "created_at": AT,
        "revoked_at": None,
    }


def test_a_revoked_token_keeps_the_first_revocation_instant() -> None:
    revoke = AgentTokenRevoked(agent_id="a1", token_id="t1")
    first = rules.TOKEN_RULES["agent.token_revoked"](issued(), envelope(STREAM, revoke, at=LATER))
    assert first == {**issued(), "revoked_at": LATER}
    again = envelope(STREAM, revoke, at=LATER + timedelta(hours=1), version=4)
    assert rules.TOKEN_RULES["agent.token_revoked"](first, again) == first


def test_a_revocation_naming_another_agent_or_no_token_changes_nothing() -> None:
    other = AgentTokenRevoked(agent_id="a2", token_id="t1")
    assert (
        rules.TOKEN_RULES["agent.token_revoked"](issued(), envelope("agent-a2", other)) == issued()
    )
    missing = AgentTokenRevoked(agent_id="a1", token_id="t9")
    assert rules.TOKEN_RULES["agent.token_revoked"](None, envelope(STREAM, missing)) is None


def test_rows_are_keyed_by_agent_and_by_token() -> None:
    assert rules.agent_of(envelope(STREAM, ISSUED)) == "a1"
    assert rules.token_of(envelope(STREAM, ISSUED)) == "t1"
    assert rules.AGENT.is_new(envelope(STREAM, CREATED, version=1))
    # A token's events are never the first of its agent's stream: its row is looked for.
    assert not rules.TOKEN.is_new(envelope(STREAM, ISSUED, version=1))


def test_the_projection_handles_every_event_of_an_agents_stream() -> None:
    assert AgentProjection.handles == {
        "agent.created",
        "agent.updated",
        "agent.token_issued",
        "agent.token_revoked",
        "agent.limits_set",
    }
    assert rules.TOKEN.handles <= rules.AGENT.handles
    assert AgentProjection.tables == ("agent", "agent_token")
