"""Secrets in pipelines: the rules for names and who may receive them, and redaction.

A pipeline refers to a secret as ``${secrets.NAME}`` in a step's ``with``. The value is put
in only at run time, only for a tool the secret allows, and is replaced by a marker wherever
it would otherwise be recorded (step inputs, outputs and errors).
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable, Mapping
from typing import Any

from domain.errors import RuleViolation

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
    object keys as well as in values (a tool may well answer with a secret as a key)."""
    if not secrets:
        return value
    if isinstance(value, str):
        # longest first, so a secret containing another is replaced whole
        for name, secret in sorted(secrets.items(), key=lambda kv: -len(kv[1])):
            if secret and secret in value:
                value = value.replace(secret, f"[secret:{name}]")
        return value
    if isinstance(value, Mapping):
        return {redact(key, secrets): redact(item, secrets) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [redact(item, secrets) for item in value]
    return value
