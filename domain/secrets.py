"""Secrets in pipelines: the rules for names and who may receive them, and redaction.

A pipeline refers to a secret as ``${secrets.NAME}`` in a step's ``with``. The value is put
in only at run time, only for a tool the secret allows and only in a run of the secret's
owner or of an agent the admin shared it with, and is replaced by a marker wherever it would
otherwise be recorded (step inputs, outputs and errors).
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable, Mapping
from typing import Any

from domain.errors import Refusal, RuleViolation

NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
VALUE_MAX = 64 * 1024
ALLOWED_TOOLS_MAX = 50
_PATTERN = re.compile(r"^[A-Za-z0-9_.*?\-]{1,200}$")
# A reference inside a template expression: secrets.NAME
_REFERENCE = re.compile(r"(?<![A-Za-z0-9_.])secrets\.([A-Za-z_][A-Za-z0-9_]*)")


class SecretRuleError(RuleViolation):
    """A secret command or a pipeline's use of a secret breaks a rule."""


def check_name(name: str) -> str:
    """A valid secret name unchanged: a letter or _, then letters, digits or _ (max 64)."""
    if not NAME.match(name):
        raise SecretRuleError("name", "must be a letter or _ then letters, digits or _ (max 64)")
    return name


def check_value(value: str) -> str:
    """A storable value: 1 byte to 64 KiB of UTF-8."""
    if not value:
        raise SecretRuleError("value", "must not be empty")
    if len(value.encode()) > VALUE_MAX:
        raise SecretRuleError("value", f"must be at most {VALUE_MAX} bytes")
    return value


def check_allowed_tools(patterns: Iterable[str]) -> tuple[str, ...]:
    """Tool addresses or globs (``telegram-mcp.*``), sorted, at least one."""
    given = sorted(set(patterns))
    if not given:
        raise SecretRuleError("allowed_tools", "name at least one tool (globs like mcp.* work)")
    if len(given) > ALLOWED_TOOLS_MAX:
        raise SecretRuleError("allowed_tools", f"must list at most {ALLOWED_TOOLS_MAX} tools")
    for index, pattern in enumerate(given):
        if not _PATTERN.match(pattern):
            raise SecretRuleError(f"allowed_tools[{index}]", "must be a tool address or a glob")
    return tuple(given)


# Who may use a secret: its owner's runs, and the agents the admin shared it with.
EVERY_AGENT = "*"
AGENTS_MAX = 100
AGENT_ID_MAX = 100
WRITE_SCOPE = "secrets:write"
READ_SCOPE = "secrets:read"


def check_agents(agents: Iterable[str]) -> tuple[str, ...]:
    """Agent ids to share a secret with, sorted; ``["*"]`` alone means every agent."""
    given = sorted(set(agents))
    if len(given) > AGENTS_MAX:
        raise SecretRuleError("agents", f"must list at most {AGENTS_MAX} agents (or '*')")
    if EVERY_AGENT in given and len(given) > 1:
        raise SecretRuleError("agents", "'*' (every agent) must be the only entry")
    for index, agent in enumerate(given):
        if not agent or len(agent) > AGENT_ID_MAX or agent != agent.strip():
            raise SecretRuleError(f"agents[{index}]", "must be an agent id or '*'")
    return tuple(given)


def shared_with(agents: tuple[str, ...] | None) -> tuple[str, ...]:
    """Who a ``secret.stored`` shares with: a secret stored before sharing existed (None)
    stays usable by every agent, as it was then."""
    return (EVERY_AGENT,) if agents is None else agents


def usable_by(owner: str, agents: Iterable[str], run_owner: str) -> bool:
    """Whether a run of ``run_owner`` may use a secret of ``owner`` shared with ``agents``."""
    return run_owner == owner or any(a in (EVERY_AGENT, run_owner) for a in agents)


def owner_on_store(caller: str, is_admin: bool, held_by: str | None) -> str:
    """Who owns a secret ``caller`` stores under a name ``held_by`` owns (None: a new name).

    A name stays its first owner's, even once deleted, so one agent never takes over a name
    (and the log of it) another agent or the admin used; the admin may rotate any secret.
    """
    if held_by is None:
        return caller
    if is_admin or held_by == caller:
        return held_by
    raise SecretRuleError(
        "name", "is another owner's secret; choose another name", Refusal.CONFLICT
    )


def agents_on_store(
    is_admin: bool, requested: Iterable[str] | None, current: Iterable[str]
) -> tuple[str, ...]:
    """Who a stored secret is shared with: whom the admin names (nobody unless named); an
    agent cannot share, and its rotation keeps what the admin set (``current``)."""
    if is_admin:
        return check_agents(requested or ())
    if requested is not None:
        reason = "only the admin shares a secret; an agent's secret is used by its own runs"
        raise SecretRuleError("agents", reason, Refusal.FORBIDDEN)
    return tuple(current)


def allows(allowed_tools: Iterable[str], address: str) -> bool:
    """Whether a secret allowed for ``allowed_tools`` may be sent to tool ``address``."""
    return any(fnmatch.fnmatchcase(address, pattern) for pattern in allowed_tools)


def references(value: Any) -> set[str]:
    """The secret names ``value`` (a step's ``with``) refers to in its templates."""
    names: set[str] = set()
    if isinstance(value, str):
        if "${" in value:
            names.update(_REFERENCE.findall(value))
    elif isinstance(value, Mapping):
        for item in value.values():
            names |= references(item)
    elif isinstance(value, list | tuple):
        for item in value:
            names |= references(item)
    return names


def mentions_secrets(text: str) -> bool:
    """Whether an expression (an ``if``, ``items_path``, key) refers to any secret."""
    return bool(_REFERENCE.search(text))


def redact(value: Any, secrets: Mapping[str, str]) -> Any:
    """``value`` with every secret's text replaced by ``[secret:NAME]``, at any depth, in
    object keys as well as in values (a tool may well answer with a secret as a key).

    What holds no secret is returned as it is, not copied: a large output costs no copy, and a
    dry run's open examples (domain.unknowns) stay what they are.
    """
    if not secrets:
        return value
    if isinstance(value, str):
        # longest first, so a secret containing another is replaced whole
        for name, secret in sorted(secrets.items(), key=lambda kv: -len(kv[1])):
            if secret and secret in value:
                value = value.replace(secret, f"[secret:{name}]")
        return value
    if isinstance(value, Mapping):
        pairs = [
            (key, item, redact(key, secrets), redact(item, secrets)) for key, item in value.items()
        ]
        if all(new_key is key and new is item for key, item, new_key, new in pairs):
            return value
        return {new_key: new for _, _, new_key, new in pairs}
    if isinstance(value, list | tuple):
        items = [redact(item, secrets) for item in value]
        if all(new is item for new, item in zip(items, value, strict=True)):
            return value
        return items
    return value
