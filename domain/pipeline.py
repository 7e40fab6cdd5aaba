"""Validation of a task's pipeline: step structure and templates that reference earlier steps."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any

from domain.errors import Refusal, RuleViolation
from domain.limits import WorkLimits, exceeded
from domain.secrets import mentions_secrets
from domain.shell import check_static_env, check_static_steps
from domain.templates import TemplateError, bare_expression, check_expression, template_expressions
from domain.tool_schemas import check_literal_input
from domain.tools import BUILTIN_TOOLS
from domain.waits import check_wait_steps

STEP_KEYS = frozenset(
    {"id", "uses", "with", "save_as", "if", "timeout_seconds", "on_error", "idempotency_key"}
)
PAYLOAD_KEYS = frozenset({"pipeline", "params"})
FOREACH = "pipeline.foreach"
# Builtins whose input becomes an event or drives the run itself: no place for a secret.
RECORDING_BUILTINS = frozenset(
    {
        FOREACH,
        "orchestrator.publish_event",
        "orchestrator.request_approval",
        "orchestrator.wait_for_event",
        "orchestrator.sleep",
    }
)
_STEP_REF = re.compile(r"(?<![A-Za-z0-9_.])steps\.([A-Za-z_][A-Za-z0-9_-]*)")
_LOOP_REF = re.compile(r"(?<![A-Za-z0-9_.])(item|index)\b")
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]{0,63}$")
# Bounds that keep one task from costing the runner (and every reader) without limit.
MAX_STEPS = 200  # in the whole pipeline, foreach bodies included
MAX_TEMPLATE_LENGTH = 4000  # characters in one string that holds a template


class PipelineError(RuleViolation):
    """A pipeline problem at a dotted field path, e.g. ``payload.pipeline[2].with.text``."""


def validate_payload(
    payload: object,
    tools: frozenset[str] | None = None,
    shell_allow: tuple[str, ...] | None = None,
    limits: WorkLimits | None = None,
    now: datetime | None = None,
) -> None:
    """Raise PipelineError for the first structural or template problem in ``payload``.

    ``tools`` is the catalog (every address a step may use); None skips that check.
    ``shell_allow`` is the admin's allow-list for `shell.exec` (None skips that check).
    ``limits`` bound the foreach nesting (the defaults when None).
    ``now`` is when the task is checked: a literal sleep must end within a year of it
    (None skips that check).
    """
    if not isinstance(payload, Mapping):
        raise PipelineError("payload", "must be an object")
    unknown = sorted(set(payload) - PAYLOAD_KEYS)
    if unknown:
        raise PipelineError(f"payload.{unknown[0]}", "unknown field (expected pipeline, params)")
    if not isinstance(payload.get("params", {}), Mapping):
        raise PipelineError("payload.params", "must be an object")
    steps = payload.get("pipeline", [])
    _validate_steps(steps, "payload.pipeline", known=set(), in_loop=False)
    _check_size(steps, "payload.pipeline", (limits or WorkLimits()).foreach_max_depth)
    check_static_env(steps, "payload.pipeline")
    try:
        check_wait_steps(steps, "payload.pipeline", now)
    except RuleViolation as exc:
        raise PipelineError(exc.field, exc.reason) from None
    if tools is not None:
        _check_tools(steps, "payload.pipeline", tools)
    if shell_allow is not None:
        check_static_steps(steps, "payload.pipeline", shell_allow)


def check_tool_scopes(
    payload: Mapping[str, Any],
    tool_scopes: Mapping[str, Sequence[str]],
    granted: frozenset[str],
) -> None:
    """Every step's tool declares only scopes in ``granted`` (the task owner's); admin may
    use any tool. Refuses the first step that needs more, naming the missing scope."""
    if "admin" in granted:
        return

    def walk(steps: Sequence[Mapping[str, Any]], path: str) -> None:
        for index, step in enumerate(steps):
            missing = sorted(set(tool_scopes.get(step["uses"], ())) - granted)
            if missing:
                raise PipelineError(
                    f"{path}[{index}].uses",
                    f"tool {step['uses']!r} needs scope {missing[0]!r}, which this agent lacks",
                    kind=Refusal.FORBIDDEN,
                )
            if step["uses"] == FOREACH:
                walk(step["with"]["body"], f"{path}[{index}].with.body")

    walk(payload.get("pipeline", []), "payload.pipeline")


def _check_size(steps: Sequence[Mapping[str, Any]], path: str, max_depth: int) -> None:
    """At most MAX_STEPS steps in all and ``max_depth`` foreach levels."""
    total = 0

    def count(steps: Sequence[Mapping[str, Any]], where: str, depth: int) -> None:
        nonlocal total
        if depth > max_depth:
            raise exceeded(
                where, f"pipeline.foreach nested {depth} deep", "foreach_max_depth", max_depth
            )
        for index, step in enumerate(steps):
            total += 1
            if total > MAX_STEPS:
                raise PipelineError(path, f"must have at most {MAX_STEPS} steps in all")
            if step["uses"] == FOREACH:
                count(step["with"]["body"], f"{where}[{index}].with.body", depth + 1)

    count(steps, path, 0)


def _check_tools(steps: Sequence[Mapping[str, Any]], path: str, tools: frozenset[str]) -> None:
    """Every step (foreach bodies included) uses a tool in the catalog."""
    for index, step in enumerate(steps):
        if step["uses"] not in tools:
            reason = f"unknown tool {step['uses']!r} (register it with POST /tools)"
            raise PipelineError(f"{path}[{index}].uses", reason)
        if step["uses"] == FOREACH:
            _check_tools(step["with"]["body"], f"{path}[{index}].with.body", tools)


def _validate_steps(steps: object, path: str, known: set[str], in_loop: bool) -> None:
    if not isinstance(steps, Sequence) or isinstance(steps, str):
        raise PipelineError(path, "must be a list of steps")
    seen: set[str] = set()
    for index, step in enumerate(steps):
        where = f"{path}[{index}]"
        if not isinstance(step, Mapping):
            raise PipelineError(where, "a step must be an object")
        _validate_step(step, where, known, seen, in_loop)


def _validate_step(
    step: Mapping[str, object], where: str, known: set[str], seen: set[str], in_loop: bool
) -> None:
    unknown = sorted(set(step) - STEP_KEYS)
    if unknown:
        raise PipelineError(f"{where}.{unknown[0]}", "unknown step field")
    step_id = _name(step.get("id"), f"{where}.id")
    if step_id in seen:
        raise PipelineError(f"{where}.id", f"duplicate step id {step_id!r}")
    uses = step.get("uses")
    if not isinstance(uses, str) or not uses.strip():
        raise PipelineError(f"{where}.uses", "must name a tool, e.g. debug.echo")
    _check_options(step, where)
    _check_literal_input(uses, step.get("with", {}), f"{where}.with")
    for field, text in _strings(step.get("with", {}), f"{where}.with"):
        _check_templates(text, field, known, in_loop)
        if uses in RECORDING_BUILTINS and mentions_secrets(text):
            raise PipelineError(
                field, f"{uses} records its input as an event, so it cannot take a secret"
            )
    for option in ("if", "idempotency_key"):
        if isinstance(step.get(option), str) and mentions_secrets(str(step[option])):
            raise PipelineError(f"{where}.{option}", "secrets may only be used in a step's with")
    if "if" in step:
        _check_condition(step["if"], f"{where}.if", known, in_loop)
    if uses == FOREACH:
        _validate_foreach(step, where, known)
    seen.add(step_id)
    known.add(step_id)
    save_as = step.get("save_as")
    if isinstance(save_as, str):
        known.add(save_as)


def _validate_foreach(step: Mapping[str, object], where: str, known: set[str]) -> None:
    options = step.get("with")
    if not isinstance(options, Mapping) or not isinstance(options.get("items_path"), str):
        raise PipelineError(f"{where}.with.items_path", "pipeline.foreach needs a JMESPath string")
    field = f"{where}.with.items_path"
    _check_expression(_bare(options["items_path"], field), field, known, in_loop=False)
    _validate_steps(options.get("body"), f"{where}.with.body", known=set(known), in_loop=True)


def _check_options(step: Mapping[str, object], where: str) -> None:
    if "save_as" in step:
        _name(step["save_as"], f"{where}.save_as")
    if "with" in step and not isinstance(step["with"], Mapping):
        raise PipelineError(f"{where}.with", "must be an object")
    timeout = step.get("timeout_seconds", 1)
    if (
        isinstance(timeout, bool)
        or not isinstance(timeout, int | float)
        or not 0 < timeout <= 86400
    ):
        raise PipelineError(f"{where}.timeout_seconds", "must be a number of seconds in (0, 86400]")
    if step.get("on_error", "fail") not in ("fail", "continue"):
        raise PipelineError(f"{where}.on_error", "must be fail or continue")
    if "idempotency_key" in step and not isinstance(step["idempotency_key"], str):
        raise PipelineError(f"{where}.idempotency_key", "must be a string")


def _check_literal_input(uses: str, options: object, field: str) -> None:
    """A builtin's input parts written without templates are checked now, not at run time."""
    tool = BUILTIN_TOOLS.get(uses)
    if tool is None or uses == FOREACH:
        return
    try:
        check_literal_input(tool, options, field)
    except RuleViolation as exc:
        raise PipelineError(exc.field, exc.reason) from None


def _name(value: object, field: str) -> str:
    if not isinstance(value, str) or not _NAME.match(value):
        raise PipelineError(field, "must be a name of letters, digits, _ or - (max 64)")
    return value


def _strings(value: object, path: str) -> Iterator[tuple[str, str]]:
    """Every string inside ``value`` with its dotted path (bodies of foreach excluded)."""
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, Mapping):
        for key, item in value.items():
            if key != "body":
                yield from _strings(item, f"{path}.{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _strings(item, f"{path}[{index}]")


def _check_templates(text: str, field: str, known: set[str], in_loop: bool) -> None:
    if len(text) > MAX_TEMPLATE_LENGTH and "${" in text:
        raise PipelineError(field, f"a template must be at most {MAX_TEMPLATE_LENGTH} characters")
    try:
        expressions = template_expressions(text)
    except TemplateError as exc:
        raise PipelineError(field, exc.reason) from None
    for expression in expressions:
        _check_expression(expression, field, known, in_loop)


def _check_condition(condition: object, field: str, known: set[str], in_loop: bool) -> None:
    if not isinstance(condition, str) or not condition.strip():
        raise PipelineError(field, "must be a JMESPath boolean expression")
    _check_expression(_bare(condition, field), field, known, in_loop)


def _bare(text: str, field: str) -> str:
    """The JMESPath of an ``if`` or ``items_path``, which may be written inside ``${}``."""
    try:
        return bare_expression(text, field)
    except TemplateError as exc:
        raise PipelineError(field, exc.reason) from None


def _check_expression(expression: str, field: str, known: set[str], in_loop: bool) -> None:
    try:
        check_expression(expression, field)
    except TemplateError as exc:
        raise PipelineError(field, exc.reason) from None
    for name in _STEP_REF.findall(expression):
        if name not in known:
            raise PipelineError(
                field,
                f"${{{expression}}} refers to step {name!r}, which does not run before this one",
            )
    if not in_loop and _LOOP_REF.search(expression.split(".")[0]):
        raise PipelineError(field, f"${{{expression}}} uses item/index outside pipeline.foreach")
