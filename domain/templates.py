"""Pipeline templates: ``${...}`` JMESPath over a run's context, rendered into step inputs.

- Syntax: ``${expr}`` anywhere in a string, ``expr`` being JMESPath over the run context
  ``{params, steps, event, task, run, now}`` (plus ``item`` and ``index`` in a foreach body).
  The scanner matches braces and skips '...', "..." and `...` literals, so ``${ {a: params.a} }``
  works. ``$${`` is a literal ``${`` (so a dollar sign right before a value is ``${'$'}${x}``);
  an unclosed ``${`` is an error. Only strings are rendered; keys and other values are kept.
- Types: a string that is exactly one template (nothing around it, not even spaces) becomes the
  value itself, keeping its JSON type. In longer text strings go in as-is, everything else as
  compact JSON (true, null, {"a":1}). Values are shared with the context, not copied.
- Missing data: a plain path (fields and indexes, e.g. ``steps.cal.events[0].title``) must exist:
  a missing field, an index out of range or a step through null or a wrong type is an error
  naming the template and the part. A present null is a value: null as a whole string, "null"
  in text. Other expressions (projections, filters, functions, ``||``, multiselects) follow
  JMESPath, where missing is null, so ``${params.name || 'friend'}`` and
  ``${not_null(params.n, `10`)}`` handle optional data; but the plain path such an expression
  starts from (``steps.cal.events`` in ``steps.cal.events[?urgent].title``) must exist.
- Time: ``now`` is the run's instant in the task's zone, cut to the second, as ISO-8601 with
  offset (2026-11-23T08:30:00+02:00); it is the context's ``now`` for JMESPath too. In a whole
  template ``now±N<unit>`` (``${ now - 7d }``): s, m, h are elapsed time; d, w are calendar days
  in the zone (08:30 stays 08:30 across a DST change). A wall time a DST change skips moves
  forward by the gap (New York 02:30 on spring-forward day is 03:30 EDT) and a repeated one is
  its first occurrence, as for ``once`` schedules.
- ``if`` and foreach ``items_path``: one JMESPath expression, with or without ``${}``. A
  condition must give true or false, no truthiness (3, "yes" and null are errors); ``==`` and
  ``!=`` see a missing value as null (``steps.a.status == 'ok'`` is false), while ``<`` or ``>``
  on a non-number give null, an error (JMESPath reads ``!a.b`` as ``(!a).b``: write ``!(a.b)``).
  ``items_path`` must give a list.
- Errors are TemplateError; ``field`` is the string's dotted path (``with.items[2].to``), the
  reason starts with the template: "${steps.cal.events}: steps.cal has no field 'events'".
- Dry runs: a dry run's fake outputs may hold values it cannot know (``domain.unknowns``). A
  path into one, or a field or index an open example does not show but its schema allows,
  gives an ``Unknown`` (named by the path) instead of an error; an expression that reads one
  is unknown as a whole; an unknown condition holds; an unknown ``items_path`` is one unknown
  item. Real runs never hold such values.
"""

from __future__ import annotations

import functools
import itertools
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import jmespath
import msgspec
from jmespath.exceptions import IncompleteExpressionError, JMESPathError, LexerError, ParseError
from jmespath.functions import Functions
from jmespath.parser import ParsedResult
from jmespath.visitor import Options

from domain.errors import RuleViolation
from domain.limits import exceeded
from domain.unknowns import Reader, Unknown, beyond

_NOW = re.compile(r"\s*now\s*(?:([+-])\s*([0-9]+)\s*([smhdw]))?\s*")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
_NEGATED_PATH = re.compile(r"!\s*[A-Za-z_\"][^\s()]*[.\[]")
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_FUNCTIONS: frozenset[str] = frozenset(Functions.FUNCTION_TABLE)
_OPTIONS = Options(custom_functions=Functions())  # JMESPath's own functions (they keep no state)
_CACHE_SIZE = 4096
_SHOWN_FIELDS = 8

Step = str | int


class TemplateError(RuleViolation):
    """A template problem in the string at ``field`` (e.g. ``with.items[2].to``)."""


class _Problem(Exception):
    """A template problem found where the string's field is not known."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Template:
    """One ``${...}`` in a string."""

    source: str  # the text between ``${`` and ``}``


def render(
    value: Any,
    context: Mapping[str, Any],
    *,
    now: datetime,
    field: str = "with",
    max_bytes: int | None = None,
) -> Any:
    """Render every string inside ``value`` (dicts and lists walked, keys kept) over ``context``.

    ``now`` is aware and in the task's zone; the context's ``now`` becomes its ISO text.
    With ``max_bytes``, rendering stops with LimitExceeded (ORDINAUT_STEP_INPUT_MAX_BYTES) as
    soon as the values templates put in add up to more than that (measured as JSON), so a
    template repeating a large value cannot build a huge result first.
    """
    if isinstance(value, str) and "${" not in value:
        return value
    return _Run(context, now, max_bytes).render(value, field)


def condition_holds(
    expression: str, context: Mapping[str, Any], *, now: datetime, field: str = "if"
) -> bool:
    """Whether an ``if`` expression (with or without ``${}``) is true; it must give a boolean."""
    result = _Run(context, now).evaluate_bare(expression, field)
    if isinstance(result, bool):
        return result
    if type(result) is Unknown:  # a dry run cannot tell: it checks the step the condition guards
        return True
    reason = f"must evaluate to true or false, got {_preview(result)}"
    if result is None and _NEGATED_PATH.search(expression):
        reason += " (JMESPath reads !a.b as (!a).b: write !(a.b))"
    raise TemplateError(field, f"{expression.strip()}: {reason}")


def select_value(expression: str, context: Mapping[str, Any], *, now: datetime, field: str) -> Any:
    """Whatever an expression (with or without ``${}``) selects, e.g. a debounce key."""
    return _Run(context, now).evaluate_bare(expression, field)


def select_items(
    expression: str, context: Mapping[str, Any], *, now: datetime, field: str
) -> list[Any]:
    """The list a foreach ``items_path`` (with or without ``${}``) selects; anything else fails."""
    result = _Run(context, now).evaluate_bare(expression, field)
    if isinstance(result, list):
        return list(result)
    if type(result) is Unknown:  # a dry run runs the body once, for one item it cannot know
        return [Unknown(f"{result.where}[0]")]
    reason = f"must evaluate to a list, got {_kind(result)}"
    raise TemplateError(field, f"{expression.strip()}: {reason}")


def template_expressions(text: str) -> list[str]:
    """The expressions of the ``${...}`` templates in ``text``, in order (escapes skipped).

    An unclosed template raises TemplateError with field ``template``; callers re-raise it with
    their own field.
    """
    if "${" not in text:
        return []
    try:
        return [part.source for part in _split(text) if isinstance(part, Template)]
    except _Problem as problem:
        raise TemplateError("template", problem.reason) from None


def split_templates(text: str, field: str) -> tuple[str | Template, ...]:
    """``text`` as its literal pieces (``$${`` already read as ``${``) and templates, in order."""
    try:
        return _split(text)
    except _Problem as problem:
        raise TemplateError(field, problem.reason) from None


def template_value(source: str, context: Mapping[str, Any], *, now: datetime, field: str) -> Any:
    """The value of one template (``source`` is its inside) over ``context``."""
    try:
        return _Run(context, now).evaluate(source, f"${{{source}}}")
    except _Problem as problem:
        raise TemplateError(field, problem.reason) from None


def template_text(value: Any, source: str, field: str) -> str:
    """``value`` as a template puts it into longer text: strings as-is, the rest as JSON."""
    try:
        return _as_text(value, f"${{{source}}}")
    except _Problem as problem:
        raise TemplateError(field, problem.reason) from None


def bare_expression(text: str, field: str) -> str:
    """The JMESPath of an ``if`` or ``items_path`` value written with or without ``${}``."""
    stripped = text.strip()
    if stripped.startswith("${"):
        try:
            parts = _split(stripped)
        except _Problem as problem:
            raise TemplateError(field, problem.reason) from None
        if len(parts) == 1 and isinstance(parts[0], Template):
            stripped = parts[0].source.strip()
    if not stripped:
        raise TemplateError(field, "must be a JMESPath expression")
    return stripped


def check_expression(expression: str, field: str) -> None:
    """Raise TemplateError unless ``expression`` (a template's inside) is valid."""
    try:
        _compile(expression)
    except _Problem as problem:
        raise TemplateError(field, f"${{{expression}}}: {problem.reason}") from None


# --- scanning ---------------------------------------------------------------------------


@functools.lru_cache(maxsize=_CACHE_SIZE)
def _split(text: str) -> tuple[str | Template, ...]:
    """Literal text and templates, left to right; ``$${`` is a literal ``${``."""
    parts: list[str | Template] = []
    literal, start = "", 0
    while (opening := text.find("${", start)) >= 0:
        if opening > start and text[opening - 1] == "$":
            literal += text[start : opening - 1] + "${"
            start = opening + 2
            continue
        closing = _closing_brace(text, opening)
        if literal or opening > start:
            parts.append(literal + text[start:opening])
        parts.append(Template(text[opening + 2 : closing]))
        literal, start = "", closing + 1
    if literal or start < len(text):
        parts.append(literal + text[start:])
    return tuple(parts)


def _closing_brace(text: str, opening: int) -> int:
    """Index of the ``}`` closing the template at ``opening``, skipping nested braces and quotes."""
    depth, index = 0, opening + 2
    while index < len(text):
        char = text[index]
        if char in "'\"`":
            index = _closing_quote(text, index)
        elif char == "{":
            depth += 1
        elif char == "}":
            if depth == 0:
                return index
            depth -= 1
        index += 1
    snippet = text[opening : opening + 40]
    raise _Problem(f"{snippet}: template has no closing }} (write $${{ for a literal ${{)")


def _closing_quote(text: str, opening: int) -> int:
    index = opening + 1
    while index < len(text) and text[index] != text[opening]:
        index += 2 if text[index] == "\\" else 1
    return index  # len(text) when unclosed: the brace search then reports the template


# --- compiling --------------------------------------------------------------------------


@functools.lru_cache(maxsize=_CACHE_SIZE)
def _compile(source: str) -> _Shift | _Path | _Query:
    if not source.strip():
        raise _Problem("empty template")
    if now := _NOW.fullmatch(source):
        return _Shift.parse(now)
    try:
        parsed = jmespath.compile(source)
        _check_functions(parsed.parsed)
        path = _plain_path(parsed.parsed)
    except JMESPathError as exc:
        hint = " (write a condition as one expression)" if "${" in source else ""
        raise _Problem(f"invalid JMESPath: {_parse_message(exc)}{hint}") from None
    except RecursionError:  # the parser recurses per nesting level
        raise _Problem("invalid JMESPath: nested too deeply") from None
    if path is not None:
        return _Path(path)
    return _Query(parsed, _leading_path(parsed.parsed))


def _parse_message(exc: JMESPathError) -> str:
    if isinstance(exc, IncompleteExpressionError):
        return "incomplete expression"
    if isinstance(exc, LexerError):
        return f"{exc.message} at column {exc.lexer_position}"
    if isinstance(exc, ParseError):
        return f"{exc.msg} at column {exc.lex_position}"
    return str(exc)


def _check_functions(node: Mapping[str, Any]) -> None:
    # JMESPath itself only notices an unknown function when the expression runs.
    if node["type"] == "function_expression" and node["value"] not in _FUNCTIONS:
        raise _Problem(f"unknown function {node['value']}()")
    for child in node["children"]:
        if isinstance(child, Mapping):
            _check_functions(child)


def _plain_path(node: Mapping[str, Any]) -> tuple[Step, ...] | None:
    """The fields and indexes of a plain path expression, or None for anything else."""
    kind = node["type"]
    if kind in ("field", "index"):
        return (node["value"],)
    if kind in ("current", "identity"):
        return ()
    if kind not in ("subexpression", "index_expression"):
        return None
    steps: list[Step] = []
    for child in node["children"]:
        part = _plain_path(child)
        if part is None:
            return None
        steps.extend(part)
    return tuple(steps)


def _leading_path(node: Mapping[str, Any]) -> tuple[Step, ...]:
    """The plain path an expression starts by reading (``a.b`` in ``a.b[?c].d``), maybe empty."""
    kind = node["type"]
    if kind in ("subexpression", "index_expression"):
        steps: list[Step] = []
        for child in node["children"]:
            part = _plain_path(child)
            if part is None:
                return (*steps, *_leading_path(child))
            steps.extend(part)
        return tuple(steps)
    if kind in ("projection", "filter_projection", "value_projection", "flatten", "pipe"):
        return _leading_path(node["children"][0])
    return _plain_path(node) or ()


# --- evaluating -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Shift:
    """``now``, ``now+24h``, ``now-7d``: elapsed time for s/m/h, calendar days for d/w."""

    amount: timedelta
    calendar: bool

    @classmethod
    def parse(cls, match: re.Match[str]) -> _Shift:
        sign, number, unit = match.groups()
        if number is None:
            return cls(timedelta(0), calendar=False)
        try:
            amount = timedelta(**{_UNITS[unit]: int(number)})
        except OverflowError:
            raise _Problem(f"now{sign}{number}{unit} is too far away") from None
        return cls(-amount if sign == "-" else amount, calendar=unit in "dw")

    def evaluate(self, data: Mapping[str, Any], now: datetime) -> Any:
        zone = now.tzinfo
        try:
            if self.calendar:
                wall = now.replace(tzinfo=None, fold=0) + self.amount
                # fold=0 reads a skipped time with the offset before the gap, a repeated one
                # as its first pass; the round trip through UTC gives the real local time.
                moved = wall.replace(tzinfo=zone).astimezone(UTC).astimezone(zone)
            else:
                moved = (now.astimezone(UTC) + self.amount).astimezone(zone)
        except OverflowError:
            raise _Problem("the time is outside the years 1 to 9999") from None
        return moved.isoformat()


@dataclass(frozen=True, slots=True)
class _Path:
    steps: tuple[Step, ...]

    def evaluate(self, data: Mapping[str, Any], now: datetime) -> Any:
        return _walk(data, self.steps)


@dataclass(frozen=True, slots=True)
class _Query:
    parsed: ParsedResult
    leading: tuple[Step, ...]

    def evaluate(self, data: Mapping[str, Any], now: datetime) -> Any:
        if self.leading:
            _walk(data, self.leading)
        reader = Reader(_OPTIONS)
        try:
            result = reader.visit(self.parsed.parsed, data)
        except JMESPathError as exc:
            if reader.read_unknown:  # it may well work on what the run will find there
                return Unknown(self.parsed.expression.strip())
            raise _Problem(str(exc)) from None
        except RecursionError:  # data nested deeper than the interpreter can walk
            raise _Problem("the data is nested too deeply") from None
        return Unknown(self.parsed.expression.strip()) if reader.read_unknown else result


class _Run:
    """One call's evaluation: the context with ``now`` filled in as ISO text."""

    def __init__(
        self, context: Mapping[str, Any], now: datetime, max_bytes: int | None = None
    ) -> None:
        if now.utcoffset() is None:
            raise ValueError("now must be a timezone-aware datetime")
        self.now = now.replace(microsecond=0)
        self.data = {**context, "now": self.now.isoformat()}
        self.max_bytes = max_bytes
        self.spent = 0  # bytes the templates rendered so far (only counted with max_bytes)

    def render(self, value: Any, field: str) -> Any:
        if isinstance(value, str):
            return self.render_text(value, field) if "${" in value else value
        if isinstance(value, Mapping):
            return {key: self.render(item, f"{field}.{key}") for key, item in value.items()}
        if isinstance(value, list | tuple):
            return [self.render(item, f"{field}[{i}]") for i, item in enumerate(value)]
        return value

    def render_text(self, text: str, field: str) -> Any:
        try:
            parts = _split(text)
            if len(parts) == 1 and isinstance(parts[0], Template):
                value = self.evaluate(parts[0].source, f"${{{parts[0].source}}}")
                self.spend(value, field)
                return value
            pieces = []
            for part in parts:
                piece = part if isinstance(part, str) else self.evaluate_text(part.source)
                self.spend(piece, field)
                pieces.append(piece)
            return "".join(pieces)
        except _Problem as problem:
            raise TemplateError(field, problem.reason) from None

    def spend(self, value: Any, field: str) -> None:
        """Count a rendered value against ``max_bytes`` (LimitExceeded past it)."""
        if self.max_bytes is None:
            return
        if isinstance(value, str):
            self.spent += len(value)
        elif isinstance(value, Mapping | list):
            try:
                self.spent += len(msgspec.json.encode(value))
            except (TypeError, msgspec.EncodeError, RecursionError) as exc:
                raise _Problem(f"{_kind(value)} cannot be written as JSON ({exc})") from None
        if self.spent > self.max_bytes:
            raise exceeded(
                field,
                f"the rendered input (over {self.spent} bytes)",
                "step_input_max_bytes",
                self.max_bytes,
            )

    def evaluate_text(self, source: str) -> str:
        shown = f"${{{source}}}"
        return _as_text(self.evaluate(source, shown), shown)

    def evaluate_bare(self, text: str, field: str) -> Any:
        source = bare_expression(text, field)
        try:
            return self.evaluate(source, text.strip())
        except _Problem as problem:
            raise TemplateError(field, problem.reason) from None

    def evaluate(self, source: str, shown: str) -> Any:
        try:
            return _compile(source).evaluate(self.data, self.now)
        except _Problem as problem:
            raise _Problem(f"{shown}: {problem.reason}") from None


def _as_text(value: Any, shown: str) -> str:
    if isinstance(value, str):
        return value
    if type(value) is Unknown:
        return value.text()
    try:
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError, RecursionError) as exc:
        raise _Problem(f"{shown}: {_kind(value)} cannot be written as text ({exc})") from None


def _walk(data: Any, steps: tuple[Step, ...]) -> Any:
    """Follow a plain path as JMESPath would, but fail where JMESPath would give null (or,
    in a dry run, where the example does not show the step and its schema rules it out)."""
    node = data
    for depth, step in enumerate(steps):
        if isinstance(step, str):
            if isinstance(node, Mapping) and step in node:
                node = node[step]
                continue
        elif isinstance(node, list) and -len(node) <= step < len(node):
            node = node[step]
            continue
        try:
            node = beyond(node, step)
        except LookupError:
            raise _Problem(_missing(node, steps[:depth], step)) from None
    return Unknown(_display(steps)) if type(node) is Unknown else node


def _missing(node: Any, where: tuple[Step, ...], step: Step) -> str:
    place = _display(where) or "the context"
    if isinstance(step, str):
        if isinstance(node, Mapping):
            return f"{place} has no field {step!r}{_fields_hint(node)}"
        return f"{place} is {_kind(node)}, not an object, so it has no field {step!r}"
    if isinstance(node, list):
        return f"{place} has no index {step} (it has {len(node)} items)"
    return f"{place} is {_kind(node)}, not a list, so it has no index {step}"


def _display(steps: tuple[Step, ...]) -> str:
    text = ""
    for step in steps:
        if isinstance(step, int):
            text += f"[{step}]"
        else:
            name = step if _IDENTIFIER.fullmatch(step) else json.dumps(step)
            text += f".{name}" if text else name
    return text


def _fields_hint(node: Mapping[str, Any]) -> str:
    names = [str(key) for key in itertools.islice(node, _SHOWN_FIELDS + 1)]
    if not names:
        return " (it is empty)"
    more = ", ..." if len(names) > _SHOWN_FIELDS else ""
    return f" (it has {', '.join(names[:_SHOWN_FIELDS])}{more})"


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, Mapping):
        return "an object"
    return f"a {type(value).__name__}"


def _preview(value: Any) -> str:
    try:
        text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    except (TypeError, ValueError):
        text = _kind(value)
    return text if len(text) <= 60 else f"{text[:57]}..."
