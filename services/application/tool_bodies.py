"""A tool registration's body and the event it becomes (for the API, tasks files, entry points)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec

from domain.events import ToolRateLimit, ToolRegistered
from domain.tools import ADDRESS, ADDRESS_MAX, ToolRuleError, validate_registration
from services.tools.python import CallableNotFound, resolve_callable


def _object_schema() -> dict[str, Any]:
    return {"type": "object"}


class RateLimitBody(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """At most ``calls`` calls in any ``per_seconds`` seconds; more calls wait their turn."""

    calls: int
    per_seconds: float


class ToolBody(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A tool to register: where it runs, the JSON Schemas of its input and output, its limits."""

    # Checked by domain.tools (with its own message); stated here for the document.
    address: Annotated[
        str, msgspec.Meta(extra_json_schema={"pattern": ADDRESS.pattern, "maxLength": ADDRESS_MAX})
    ]
    transport: Literal["http", "mcp", "python"]
    description: str | None = None
    endpoint: str | None = None
    command: list[str] | None = None
    # python tools: "package.module:function", from a module ORDINAUT_PYTHON_TOOLS_ALLOW allows
    callable: str | None = None
    input_schema: dict[str, Any] = msgspec.field(default_factory=_object_schema)
    output_schema: dict[str, Any] = msgspec.field(default_factory=dict)
    timeout_seconds: float = 30.0
    scopes: list[str] = msgspec.field(default_factory=list)
    rate_limit: RateLimitBody | None = None
    cost_per_call: float | None = None


def registration_of(body: ToolBody, python_allow: tuple[str, ...] = ()) -> ToolRegistered:
    """The validated event for ``body`` (a broken rule raises ToolRuleError: invalid input).

    A python tool's callable must also import: a typo is refused now, not at its first run.
    """
    tool = validate_registration(
        ToolRegistered(
            address=body.address,
            transport=body.transport,
            description=body.description,
            endpoint=body.endpoint,
            command=None if body.command is None else tuple(body.command),
            callable=body.callable,
            input_schema=body.input_schema,
            output_schema=body.output_schema,
            timeout_seconds=body.timeout_seconds,
            scopes=tuple(body.scopes),
            rate_limit=None
            if body.rate_limit is None
            else ToolRateLimit(
                calls=body.rate_limit.calls, per_seconds=body.rate_limit.per_seconds
            ),
            cost_per_call=body.cost_per_call,
        ),
        python_allow,
    )
    if tool.callable is not None:
        try:
            resolve_callable(tool.callable)
        except CallableNotFound as exc:
            raise ToolRuleError("callable", str(exc)) from None
    return tool
