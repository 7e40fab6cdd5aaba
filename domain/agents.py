"""Agents: the scopes that exist, the rules for names and webhooks, and the decisions on tokens."""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urlsplit

from domain.errors import RuleViolation
from domain.events import (
    EVENT_TYPES,
    AgentCreated,
    AgentTokenIssued,
    AgentTokenRevoked,
    AgentUpdated,
)
from domain.tools import SCOPE as TOOL_SCOPE

SCOPES: frozenset[str] = frozenset(
    {
        "tasks:read",
        "tasks:write",
        "runs:read",
        "runs:approve",
        "events:publish",
        "events:read",
        # May set dedupe/concurrency keys shared across agents (domain/ownership.py).
        "keys:shared",
        # List the secrets it owns or that are shared with it / store, rotate and delete its
        # own secrets (domain/secrets.py).
        "secrets:read",
        "secrets:write",
        "admin",
    }
)
_API_RESOURCES = frozenset(scope.split(":", 1)[0] for scope in SCOPES)
NAME_MAX = 100
LABEL_MAX = 100
WEBHOOK_URL_MAX = 2000


class AgentRuleError(RuleViolation):
    """An agent command breaks a rule."""


def _has_control(text: str) -> bool:
    return any(unicodedata.category(char) in ("Cc", "Cs") for char in text)


def check_name(name: str) -> str:
    """A valid agent name unchanged: 1..100 characters, no surrounding blanks or control chars."""
    if not 1 <= len(name) <= NAME_MAX:
        raise AgentRuleError("name", f"must be 1 to {NAME_MAX} characters")
    if name != name.strip():
        raise AgentRuleError("name", "must not start or end with whitespace")
    if _has_control(name):
        raise AgentRuleError("name", "must not contain control characters")
    return name


def name_key(name: str) -> str:
    """What makes two names the same name: case does not (``Mailer`` and ``mailer`` clash)."""
    return name.casefold()


def normalise_scopes(scopes: Iterable[str]) -> tuple[str, ...]:
    """The scopes sorted without repeats; an empty list or an unknown scope is refused.

    Besides the API scopes, an agent may hold tool scopes (``notify``, ``calendar.read``):
    the scopes tools declare, which decide what its pipelines may use. A scope on one of the
    API's resources (``tasks:…``) must be an API scope, so a typo there is caught.
    """
    given = set(scopes)
    unknown = sorted(
        scope
        for scope in given - SCOPES
        if scope.split(":", 1)[0] in _API_RESOURCES or not TOOL_SCOPE.match(scope)
    )
    if unknown:
        known = ", ".join(sorted(SCOPES))
        listed = ", ".join(repr(scope) for scope in unknown)
        raise AgentRuleError(
            "scopes",
            f"unknown scope {listed}; API scopes are {known}, tool scopes look like notify",
        )
    if not given:
        raise AgentRuleError("scopes", "at least one scope is required")
    return tuple(sorted(given))


def change_scopes(
    agent_id: str, current: Iterable[str], scopes: Iterable[str]
) -> list[AgentUpdated]:
    """Replace an agent's scopes (effective from the next request and the next step it runs);
    the same scopes again record nothing."""
    normalised = normalise_scopes(scopes)
    if normalised == tuple(sorted(set(current))):
        return []
    return [AgentUpdated(agent_id=agent_id, scopes=normalised)]


def check_webhook_url(url: str | None) -> str | None:
    """An absolute http(s) URL with a host, or None."""
    if url is None:
        return None
    if len(url) > WEBHOOK_URL_MAX or url != url.strip() or any(c.isspace() for c in url):
        raise AgentRuleError("webhook_url", "must be an http or https URL without spaces")
    try:
        parts = urlsplit(url)
        hostname = parts.hostname
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number in range
    except ValueError as exc:
        raise AgentRuleError("webhook_url", f"is not a valid URL: {exc}") from exc
    if parts.scheme not in ("http", "https") or not hostname:
        raise AgentRuleError("webhook_url", "must be an http or https URL with a host")
    if _has_control(url):
        raise AgentRuleError("webhook_url", "must not contain control characters")
    return url


def check_notify_events(types: Iterable[str] | None) -> tuple[str, ...] | None:
    """Known event types, sorted without repeats; None keeps the defaults."""
    if types is None:
        return None
    chosen = set(types)
    unknown = sorted(chosen - EVENT_TYPES.keys())
    if unknown:
        listed = ", ".join(repr(kind) for kind in unknown[:5])
        raise AgentRuleError("notify_events", f"unknown event type {listed}")
    return tuple(sorted(chosen))


def check_label(label: str | None) -> str | None:
    """A token label: optional, at most 100 characters, no control characters."""
    if label is None:
        return None
    if len(label) > LABEL_MAX:
        raise AgentRuleError("label", f"must be at most {LABEL_MAX} characters")
    if _has_control(label):
        raise AgentRuleError("label", "must not contain control characters")
    return label


def create_agent(
    agent_id: str,
    name: str,
    scopes: Iterable[str],
    webhook_url: str | None,
    notify_events: Iterable[str] | None = None,
) -> AgentCreated:
    """The event that creates an agent, once every input is valid (AgentRuleError otherwise)."""
    return AgentCreated(
        agent_id=agent_id,
        name=check_name(name),
        scopes=normalise_scopes(scopes),
        webhook_url=check_webhook_url(webhook_url),
        notify_events=check_notify_events(notify_events),
    )


def issue_token(
    agent_id: str, token_id: str, token_sha256: str, label: str | None
) -> AgentTokenIssued:
    """The event that records a new token by its SHA-256 (hex); the token itself is never kept."""
    if len(token_sha256) != 64 or any(c not in "0123456789abcdef" for c in token_sha256):
        raise ValueError("token_sha256 must be a lower-case hex SHA-256 digest")
    return AgentTokenIssued(
        agent_id=agent_id, token_id=token_id, token_sha256=token_sha256, label=check_label(label)
    )


@dataclass(frozen=True)
class TokenState:
    """What a revocation needs to know about a token."""

    agent_id: str
    token_id: str
    revoked_at: datetime | None


def revoke_token(token: TokenState) -> list[AgentTokenRevoked]:
    """Revoke a live token; revoking an already revoked one records nothing."""
    if token.revoked_at is not None:
        return []
    return [AgentTokenRevoked(agent_id=token.agent_id, token_id=token.token_id)]
