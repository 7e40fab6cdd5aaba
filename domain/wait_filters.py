r"""A wait step's ``filter``: its ``${...}`` values become JMESPath literals, never its text (pure).

A filter such as ``event.payload.in_reply_to == '${steps.send.message_id}'`` is rendered when
the wait begins. Pasting a value into the text would let it rewrite the expression (the value
``zz' || `true` || 'a`` would match every event) or break it (``O'Brien``). So:

- A template inside a ``'...'`` raw string adds its text (a string as-is, anything else as
  JSON) to that string, and the whole string is written again as one literal: ``'...'`` with
  ``'`` as ``\'`` when it holds no backslash, else the JSON literal `` `"..."` ``. (jmespath
  reads only ``\'`` as an escape in a raw string: ``\\`` stays two backslashes, and a string
  ending in one backslash cannot be written as a raw string at all.)
- A template outside quotes becomes the JSON literal of its value (`` `3` ``, `` `"ana"` ``,
  `` `{"a":1}` ``), every backtick in it written ``\u0060`` so that no value can close it.
- Refused: a template inside ``"..."`` (a field name) or `` `...` ``, a template right after a
  backslash inside ``'...'``, and a filter that is one template (a constant, not a test).

Whatever the values, the rendered filter parses as the author's text does with placeholder
literals in their place, so ``check_filter`` knows when the task is created that it compiles.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from domain.limits import exceeded
from domain.templates import (
    Template,
    TemplateError,
    bare_expression,
    check_expression,
    split_templates,
    template_text,
    template_value,
)

_QUOTES = "'\"`"
_RAW_ESCAPE = re.compile(r"\\(.)", re.DOTALL)  # jmespath pairs a backslash with what follows


@dataclass(frozen=True, slots=True)
class _Quoted:
    """A ``'...'`` raw string that holds templates: its raw text pieces and its templates."""

    pieces: tuple[str | Template, ...]


# Expression text (kept as written), a template outside quotes, a raw string with templates.
_Part = str | Template | _Quoted


def check_filter(text: str, field: str) -> None:
    """Raise TemplateError unless every rendering of the filter ``text`` is valid JMESPath."""
    parts = _parse(text, field)
    if len(parts) == 1 and isinstance(parts[0], Template):
        raise TemplateError(
            field,
            "a filter cannot be one template (its value would be a literal, not a test): "
            "write the expression, e.g. event.payload.id == '${params.id}'",
        )
    templated = any(not isinstance(part, str) for part in parts)
    placeholder = "".join(_placeholder(part) for part in parts)
    try:
        compile_filter(placeholder, field)
    except TemplateError as exc:
        hint = " (each ${...} read as one literal value)" if templated else ""
        raise TemplateError(field, f"{text.strip()}: {exc.reason}{hint}") from None


def render_filter(
    text: str,
    context: Mapping[str, Any],
    *,
    now: datetime,
    field: str,
    max_bytes: int | None = None,
) -> str:
    """The filter ``text`` with its templates rendered over ``context`` as literals.

    With ``max_bytes``, LimitExceeded (ORDINAUT_STEP_INPUT_MAX_BYTES) as soon as the rendered
    filter is longer than that.
    """
    rendered: list[str] = []
    size = 0
    for part in _parse(text, field):
        if isinstance(part, str):
            piece = part
        elif isinstance(part, Template):
            value = template_value(part.source, context, now=now, field=field)
            piece = _json_literal(value, part.source, field)
        else:
            piece = _string_literal(_quoted_value(part, context, now, field))
        size += len(piece)
        if max_bytes is not None and size > max_bytes:
            raise exceeded(
                field, f"the rendered filter (over {size} bytes)", "step_input_max_bytes", max_bytes
            )
        rendered.append(piece)
    return "".join(rendered)


def compile_filter(text: str, field: str) -> None:
    """Raise TemplateError unless ``text`` (a filter as it is matched) is valid JMESPath."""
    expression = bare_expression(text, field)
    try:
        check_expression(expression, field)
    except TemplateError as exc:
        raise TemplateError(field, exc.reason.removeprefix(f"${{{expression}}}: ")) from None


# --- parsing ----------------------------------------------------------------------------


def _parse(text: str, field: str) -> tuple[_Part, ...]:
    """``text`` as expression text, templates outside quotes and raw strings with templates."""
    items: list[str | Template] = []
    for part in split_templates(text, field):
        items.extend([part] if isinstance(part, Template) else list(part))
    parts: list[_Part] = []
    index = 0
    while index < len(items):
        item = items[index]
        if not isinstance(item, str) or item not in _QUOTES:
            parts.append(item)
            index += 1
            continue
        end = _closing(items, index, field)
        inside = items[index + 1 : end]
        if all(isinstance(piece, str) for piece in inside):
            parts.append("".join(str(piece) for piece in items[index : end + 1]))
        elif item == "'":
            parts.append(_Quoted(_joined(inside)))
        else:
            raise TemplateError(
                field,
                f"a template cannot stand inside {item}...{item}: write it outside quotes "
                "(its value becomes a JSON literal) or inside '...'",
            )
        index = end + 1
    return _joined(parts)


def _closing(items: list[str | Template], opening: int, field: str) -> int:
    """Index of the quote closing the one at ``opening`` (a backslash escapes what follows)."""
    quote, index = items[opening], opening + 1
    while index < len(items):
        item = items[index]
        if item == "\\":
            if index + 1 < len(items) and isinstance(items[index + 1], Template):
                raise TemplateError(field, "a backslash cannot come right before a ${...}")
            index += 2
        elif item == quote:
            return index
        else:
            index += 1
    raise TemplateError(field, f"a {quote} literal is not closed")


def _joined(items: list[Any]) -> tuple[Any, ...]:
    """``items`` with every run of adjacent strings joined into one."""
    joined: list[Any] = []
    for item in items:
        if isinstance(item, str) and joined and isinstance(joined[-1], str):
            joined[-1] += item
        else:
            joined.append(item)
    return tuple(joined)


def _placeholder(part: _Part) -> str:
    """A literal as wide as ``part`` (so a parse error's column stays right), any value's shape."""
    if isinstance(part, str):
        return part
    if isinstance(part, Template):
        return "`0" + " " * len(part.source) + "`"  # as wide as ${source}
    width = sum(len(p) if isinstance(p, str) else len(p.source) + 3 for p in part.pieces)
    return "'" + "x" * width + "'"


# --- rendering --------------------------------------------------------------------------


def _quoted_value(quoted: _Quoted, context: Mapping[str, Any], now: datetime, field: str) -> str:
    """The string a raw string with templates stands for, once they are rendered."""
    text = []
    for piece in quoted.pieces:
        if isinstance(piece, str):
            text.append(_RAW_ESCAPE.sub(_unescape, piece))
        else:
            value = template_value(piece.source, context, now=now, field=field)
            text.append(template_text(value, piece.source, field))
    return "".join(text)


def _unescape(match: re.Match[str]) -> str:
    # As jmespath reads a raw string: \' is a quote, any other pair is kept as written.
    return "'" if match.group(1) == "'" else match.group(0)


def _string_literal(value: str) -> str:
    if "\\" in value:
        return _json_literal(value, "", "")
    return "'" + value.replace("'", "\\'") + "'"


def _json_literal(value: Any, source: str, field: str) -> str:
    try:
        text = json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError, RecursionError) as exc:
        raise TemplateError(field, f"${{{source}}}: cannot be written as JSON ({exc})") from None
    # A backtick only occurs inside a JSON string, where \u0060 means the same character.
    return "`" + text.replace("`", "\\u0060") + "`"
