"""The tool catalog's rules: the builtin tools, and what a valid registration looks like."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any
from urllib.parse import urlsplit

import msgspec
from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError

from domain.budgets import check_amount
from domain.errors import RuleViolation
from domain.events import ToolRateLimit, ToolRegistered
from domain.json_equality import same_json
from domain.shell import INPUT_SCHEMA as _SHELL_INPUT
from domain.shell import OUTPUT_SCHEMA as _SHELL_OUTPUT
from domain.shell import SHELL_EXEC
from domain.waits import SLEEP, SLEEP_INPUT, SLEEP_OUTPUT, WAIT_FOR_EVENT, WAIT_INPUT, WAIT_OUTPUT

ADDRESS = re.compile(r"^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)+$")
SCOPE = re.compile(r"^[a-z][a-z0-9_.:-]{0,63}$")
ADDRESS_MAX = 200
DESCRIPTION_MAX = 2000
ENDPOINT_MAX = 2000
COMMAND_MAX = 100
SCOPES_MAX = 50
TIMEOUT_MAX = 3600.0
RATE_CALLS_MAX = 1_000_000
RATE_WINDOW_MAX = 86_400.0
# Deep enough for any real schema; checking a deeper one would exhaust Python's stack.
SCHEMA_DEPTH_MAX = 64
DRAFT_2020_12 = "https://json-schema.org/draft/2020-12/schema"


class ToolRuleError(RuleViolation):
    """A tool registration breaks a rule."""


def _builtin(
    address: str,
    description: str,
    input_schema: dict[str, Any],
    output_schema: dict[str, Any],
    *scopes: str,
) -> ToolRegistered:
    return ToolRegistered(
        address=address,
        transport="builtin",
        description=description,
        input_schema=input_schema,
        output_schema=output_schema,
        scopes=scopes,
    )


_ANY_OBJECT: dict[str, Any] = {"type": "object"}
_HTTP_INPUT: dict[str, Any] = {
    "type": "object",
    "required": ["url"],
    "additionalProperties": False,
    "properties": {
        "method": {"enum": ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"], "default": "GET"},
        "url": {"type": "string", "pattern": "^https?://", "maxLength": ENDPOINT_MAX},
        "headers": {"type": "object", "additionalProperties": {"type": "string"}},
        "query": {
            "type": "object",
            "additionalProperties": {"type": ["string", "number", "boolean"]},
        },
        "json": {},
        "body": {"type": "string"},
        "timeout_seconds": {"type": "number", "exclusiveMinimum": 0, "maximum": TIMEOUT_MAX},
    },
}
_HTTP_OUTPUT: dict[str, Any] = {
    "type": "object",
    "required": ["status", "headers"],
    "properties": {
        "status": {"type": "integer", "minimum": 100, "maximum": 599},
        "headers": {"type": "object", "additionalProperties": {"type": "string"}},
        "json": {},
        "text": {"type": "string"},
    },
}
_PUBLISH_INPUT: dict[str, Any] = {
    "type": "object",
    "required": ["topic"],
    "additionalProperties": False,
    "properties": {
        "topic": {"type": "string", "pattern": r"^[A-Za-z0-9_.:\-]+$", "maxLength": 200},
        "payload": {"type": "object", "default": {}},
        "idempotency_key": {"type": "string", "minLength": 1, "maxLength": 200},
    },
}
_PUBLISH_OUTPUT: dict[str, Any] = {
    "type": "object",
    "required": ["event_id", "position"],
    "properties": {"event_id": {"type": "string"}, "position": {"type": "integer"}},
}
_APPROVAL_INPUT: dict[str, Any] = {
    "type": "object",
    "required": ["message"],
    "additionalProperties": False,
    "properties": {
        "message": {"type": "string", "minLength": 1},
        "data": {},
        "timeout_seconds": {"type": "number", "exclusiveMinimum": 0, "maximum": 31_536_000},
        "on_timeout": {"enum": ["reject", "approve"], "default": "reject"},
    },
}
_APPROVAL_OUTPUT: dict[str, Any] = {
    "type": "object",
    "required": ["status", "approved_items"],
    "properties": {
        "status": {"enum": ["approved", "rejected"]},
        "approved_items": {},
        "comment": {"type": ["string", "null"]},
        "by": {"type": ["string", "null"]},
        "expired": {"type": "boolean"},
    },
}
_FOREACH_INPUT: dict[str, Any] = {
    "type": "object",
    "required": ["items_path", "body"],
    "properties": {
        "items_path": {"type": "string", "minLength": 1},
        "body": {"type": "array", "minItems": 1, "items": {"type": "object"}},
    },
}
_FOREACH_OUTPUT: dict[str, Any] = {
    "type": "object",
    "required": ["items"],
    "properties": {"items": {"type": "array"}, "count": {"type": "integer", "minimum": 0}},
}

# Fixed in code: users cannot register, replace or remove these addresses.
BUILTIN_TOOLS: Mapping[str, ToolRegistered] = MappingProxyType(
    {
        tool.address: tool
        for tool in (
            _builtin("debug.echo", "Returns its input unchanged.", _ANY_OBJECT, _ANY_OBJECT),
            _builtin(
                "http.request",
                "Sends one HTTP request and returns the response.",
                _HTTP_INPUT,
                _HTTP_OUTPUT,
            ),
            _builtin(
                "orchestrator.publish_event",
                "Publishes an event to Ordinaut.",
                _PUBLISH_INPUT,
                _PUBLISH_OUTPUT,
                "events:publish",
            ),
            _builtin(
                "orchestrator.request_approval",
                "Parks the run until someone approves or rejects it.",
                _APPROVAL_INPUT,
                _APPROVAL_OUTPUT,
            ),
            _builtin(
                WAIT_FOR_EVENT,
                "Parks the run until a matching event arrives (or its timeout).",
                WAIT_INPUT,
                WAIT_OUTPUT,
            ),
            _builtin(
                SLEEP,
                "Parks the run for a duration or until an instant.",
                SLEEP_INPUT,
                SLEEP_OUTPUT,
            ),
            _builtin(
                "pipeline.foreach",
                "Runs the body steps once for each item.",
                _FOREACH_INPUT,
                _FOREACH_OUTPUT,
            ),
            # an agent needs the "shell" scope: running programs on a worker is no small thing
            _builtin(
                SHELL_EXEC,
                "Runs an allow-listed program; returns its exit code and output.",
                _SHELL_INPUT,
                _SHELL_OUTPUT,
                "shell",
            ),
        )
    }
)


# "package.module:function" (a dotted attribute path after the colon is allowed too)
_DOTTED = r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*"
CALLABLE = re.compile(f"^{_DOTTED}:{_DOTTED}$")


def same_registration(current: ToolRegistered, desired: ToolRegistered) -> bool:
    """Whether registering ``desired`` over ``current`` would change nothing, compared as JSON
    (a schema's 1e23 is read back from the store as 100000000000000000000000)."""
    return same_json(msgspec.to_builtins(current), msgspec.to_builtins(desired))


def validate_registration(
    tool: ToolRegistered, python_allow: tuple[str, ...] = ()
) -> ToolRegistered:
    """The registration with its scopes sorted and deduplicated; ToolRuleError if it is invalid.

    ``python_allow`` lists the module prefixes a python tool's callable may come from.
    """
    _check_address(tool.address)
    if tool.transport == "builtin":
        raise ToolRuleError("transport", "builtin tools are fixed in code; use http, mcp or python")
    if tool.transport == "python" or tool.callable is not None:
        check_python_callable(tool, python_allow)
    if tool.description is not None and len(tool.description) > DESCRIPTION_MAX:
        raise ToolRuleError("description", f"must be at most {DESCRIPTION_MAX} characters")
    _check_target(tool)
    _check_schema(tool.input_schema, "input_schema")
    _check_schema(tool.output_schema, "output_schema")
    timeout = tool.timeout_seconds
    if not math.isfinite(timeout) or not 0 < timeout <= TIMEOUT_MAX:
        raise ToolRuleError("timeout_seconds", f"must be more than 0 and at most {TIMEOUT_MAX:g}")
    _check_rate_limit(tool.rate_limit)
    check_amount(tool.cost_per_call, "cost_per_call")
    return msgspec.structs.replace(tool, scopes=_check_scopes(tool.scopes))


def _check_rate_limit(limit: ToolRateLimit | None) -> None:
    if limit is None:
        return
    if not 1 <= limit.calls <= RATE_CALLS_MAX:
        raise ToolRuleError("rate_limit.calls", f"must be from 1 to {RATE_CALLS_MAX}")
    per = limit.per_seconds
    if not math.isfinite(per) or not 0 < per <= RATE_WINDOW_MAX:
        raise ToolRuleError(
            "rate_limit.per_seconds", f"must be more than 0 and at most {RATE_WINDOW_MAX:g}"
        )


def callable_module(target: str) -> str:
    """The module part of "package.module:function"."""
    return target.partition(":")[0]


def python_module_allowed(module: str, allow: tuple[str, ...]) -> bool:
    """Whether ``module`` is an allowed prefix or inside one (``a.b`` allows ``a.b.c``)."""
    return any(module == prefix or module.startswith(f"{prefix}.") for prefix in allow)


def check_python_callable(tool: ToolRegistered, allow: tuple[str, ...]) -> None:
    """A python tool names a well-formed callable from an allowed module, and nothing else."""
    if tool.transport != "python":
        raise ToolRuleError("callable", "only a python tool has a callable")
    if tool.callable is None or not CALLABLE.match(tool.callable):
        raise ToolRuleError("callable", 'must be "package.module:function"')
    if tool.endpoint is not None or tool.command is not None:
        raise ToolRuleError("endpoint", "a python tool runs in the worker; give no endpoint")
    module = callable_module(tool.callable)
    if not python_module_allowed(module, allow):
        hint = "nothing is allowed" if not allow else "it is under no allowed prefix"
        raise ToolRuleError(
            "callable", f"module {module!r} is not allowed ({hint} in ORDINAUT_PYTHON_TOOLS_ALLOW)"
        )


def _check_address(address: str) -> None:
    if len(address) > ADDRESS_MAX or not ADDRESS.match(address):
        raise ToolRuleError(
            "address", "must be dotted names of letters, digits, _ or -, e.g. weather-mcp.forecast"
        )
    if address in BUILTIN_TOOLS:
        raise ToolRuleError("address", f"{address!r} is a builtin tool and cannot be registered")


def _check_target(tool: ToolRegistered) -> None:
    """Where the tool runs: http needs an endpoint; mcp an endpoint or a command, not both."""
    if tool.endpoint is not None:
        _check_endpoint(tool.endpoint)
    if tool.command is not None:
        _check_command(tool.command, tool.transport)
    if tool.transport == "http" and tool.endpoint is None:
        raise ToolRuleError("endpoint", "an http tool needs the http(s) URL it is POSTed to")
    if tool.transport == "mcp" and (tool.endpoint is None) == (tool.command is None):
        raise ToolRuleError(
            "endpoint",
            "an mcp tool needs either an endpoint (streamable HTTP) or a command (stdio)",
        )


def _check_endpoint(endpoint: str) -> None:
    reason = "must be an http or https URL with a host and no spaces"
    if len(endpoint) > ENDPOINT_MAX or any(c.isspace() or not c.isprintable() for c in endpoint):
        raise ToolRuleError("endpoint", reason)
    try:
        parts = urlsplit(endpoint)
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number in range
    except ValueError as exc:
        raise ToolRuleError("endpoint", f"is not a valid URL: {exc}") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ToolRuleError("endpoint", reason)


def _check_command(command: tuple[str, ...], transport: str) -> None:
    if transport != "mcp":
        raise ToolRuleError("command", "only an mcp tool (over stdio) runs a command")
    if not command or not command[0].strip():
        raise ToolRuleError("command", "must start with the program to run")
    if len(command) > COMMAND_MAX:
        raise ToolRuleError("command", f"must have at most {COMMAND_MAX} arguments")


def _check_schema(schema: dict[str, Any], field: str) -> None:
    """A valid Draft 2020-12 schema; the error names the keyword path inside it."""
    declared = schema.get("$schema", DRAFT_2020_12)
    if not isinstance(declared, str) or declared.rstrip("#") != DRAFT_2020_12:
        raise ToolRuleError(f"{field}.$schema", f"must be {DRAFT_2020_12} (or left out)")
    if _depth(schema) > SCHEMA_DEPTH_MAX:
        raise ToolRuleError(field, f"must not nest more than {SCHEMA_DEPTH_MAX} levels deep")
    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError as exc:
        path = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in exc.absolute_path)
        raise ToolRuleError(f"{field}{path}", f"is not valid JSON Schema: {exc.message}") from None


def _depth(value: object) -> int:
    """How deeply objects and arrays nest in ``value`` (found without recursion)."""
    deepest, pending = 0, [(value, 0)]
    while pending:
        item, depth = pending.pop()
        children = (
            item.values() if isinstance(item, dict) else item if isinstance(item, list) else ()
        )
        if children:
            deepest = max(deepest, depth + 1)
            pending.extend((child, depth + 1) for child in children)
    return deepest


def _check_scopes(scopes: tuple[str, ...]) -> tuple[str, ...]:
    if len(scopes) > SCOPES_MAX:
        raise ToolRuleError("scopes", f"must list at most {SCOPES_MAX} scopes")
    for index, scope in enumerate(scopes):
        if not SCOPE.match(scope):
            raise ToolRuleError(
                f"scopes[{index}]",
                "must be a lower-case name of letters, digits, _ . : or - (max 64), e.g. notify",
            )
    return tuple(sorted(set(scopes)))
