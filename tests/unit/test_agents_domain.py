"""Agent rules: the scopes that exist, valid names and webhooks, and what a revocation records."""

from __future__ import annotations

import hashlib
import pickle
from datetime import UTC, datetime

import pytest

from domain.agents import (
    SCOPES,
    AgentRuleError,
    TokenState,
    check_label,
    check_name,
    check_webhook_url,
    create_agent,
    issue_token,
    name_key,
    normalise_scopes,
    revoke_token,
)
from domain.events import AgentCreated, AgentTokenIssued, AgentTokenRevoked


def test_the_scopes_are_the_documented_set() -> None:
    assert {
        "tasks:read",
        "tasks:write",
        "runs:read",
        "runs:approve",
        "events:publish",
        "events:read",
        "keys:shared",
        "secrets:read",
        "secrets:write",
        "admin",
    } == SCOPES


def test_scopes_are_sorted_without_repeats() -> None:
    assert normalise_scopes(["tasks:write", "admin", "tasks:write"]) == ("admin", "tasks:write")


@pytest.mark.parametrize("scopes", [["tasks:delete"], ["admin", "Admin"], ["tasks:read", ""]])
def test_an_unknown_scope_is_refused_by_name(scopes: list[str]) -> None:
    with pytest.raises(AgentRuleError) as caught:
        normalise_scopes(scopes)
    assert caught.value.field == "scopes"
    assert repr(scopes[-1]) in caught.value.reason
    assert "tasks:read" in caught.value.reason  # lists what is allowed


def test_at_least_one_scope_is_required() -> None:
    with pytest.raises(AgentRuleError, match="at least one"):
        normalise_scopes([])


@pytest.mark.parametrize("name", ["a", "Mail bot", "x" * 100, "Привет-бот", "bot 🤖"])
def test_valid_names_are_kept_as_given(name: str) -> None:
    assert check_name(name) == name


@pytest.mark.parametrize("name", ["", "x" * 101, " lead", "trail ", "new\nline", "nul\x00", "  "])
def test_invalid_names_are_refused(name: str) -> None:
    with pytest.raises(AgentRuleError) as caught:
        check_name(name)
    assert caught.value.field == "name"


def test_names_clash_regardless_of_case() -> None:
    assert name_key("Mailer") == name_key("MAILER") == name_key("mailer")
    assert name_key("Straße") == name_key("STRASSE")
    assert name_key("mailer") != name_key("mailer2")


@pytest.mark.parametrize(
    "url",
    [None, "https://hooks.example.com/x?y=1", "http://10.0.0.5:8080/hook", "https://[::1]/h"],
)
def test_valid_webhook_urls(url: str | None) -> None:
    assert check_webhook_url(url) == url


@pytest.mark.parametrize(
    "url",
    [
        "ftp://example.com/x",
        "https://",
        "example.com/hook",
        "javascript:alert(1)",
        "https://exa mple.com/",
        " https://example.com/",
        "https://example.com:99999/",
        "https://example.com:port/",
        "https://[::1/",
        "https://example.com/" + "x" * 2000,
    ],
)
def test_invalid_webhook_urls(url: str) -> None:
    with pytest.raises(AgentRuleError) as caught:
        check_webhook_url(url)
    assert caught.value.field == "webhook_url"


def test_labels() -> None:
    assert check_label(None) is None
    assert check_label("ci runner") == "ci runner"
    for bad in ("x" * 101, "tab\t"):
        with pytest.raises(AgentRuleError):
            check_label(bad)


def test_create_agent_validates_and_normalises() -> None:
    event = create_agent("a-1", "bot", ["runs:read", "admin"], None)
    assert event == AgentCreated(agent_id="a-1", name="bot", scopes=("admin", "runs:read"))
    with pytest.raises(AgentRuleError):
        create_agent("a-1", "bot", ["runs:read"], "mailto:me@example.com")


def test_issue_token_records_only_a_digest() -> None:
    digest = hashlib.sha256(b"secret-token").hexdigest()
    event = issue_token("a-1", "t-1", digest, "ci")
    assert event == AgentTokenIssued(
        agent_id="a-1", token_id="t-1", token_sha256=digest, label="ci"
    )
    with pytest.raises(ValueError, match="SHA-256"):
        issue_token("a-1", "t-1", "secret-token", None)


def test_revoking_a_live_token_records_one_event_and_a_revoked_one_nothing() -> None:
    live = TokenState("a-1", "t-1", None)
    assert revoke_token(live) == [AgentTokenRevoked(agent_id="a-1", token_id="t-1")]
    revoked = TokenState("a-1", "t-1", datetime(2030, 1, 1, tzinfo=UTC))
    assert revoke_token(revoked) == []


def test_a_rule_error_survives_pickling() -> None:
    error = pickle.loads(pickle.dumps(AgentRuleError("name", "is taken")))
    assert (error.field, error.reason, str(error)) == ("name", "is taken", "name: is taken")
