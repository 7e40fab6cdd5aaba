"""Checking tool inputs and outputs against their JSON Schemas, and making up plausible outputs."""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Callable, Iterator, Mapping
from typing import Any
from urllib.parse import unquote

import msgspec
from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError, best_match

from domain.errors import RuleViolation
from domain.events import ToolRegistered
from domain.unknowns import OpenList, OpenObject, Unknown, below, mentions_unknown, shows_unknown

REASON_MAX = 300
_PLAIN_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*$")
# Past this depth a recursive schema gets only what it requires: examples stay finite.
_OPTIONAL_DEPTH = 6
_DEPTH_MAX = 48
_FORMATS = {
    "date-time": "2025-01-01T09:00:00Z",
    "date": "2025-01-01",
    "time": "09:00:00Z",
    "email": "user@example.com",
    "uri": "https://example.com/",
    "url": "https://example.com/",
    "uuid": "00000000-0000-4000-8000-000000000000",
    "hostname": "example.com",
    "ipv4": "192.0.2.1",
    "ipv6": "2001:db8::1",
}
_NONE = object()  # no candidate yet (None is a candidate like any other)
# Keywords that say nothing about a value: a schema of only these allows anything.
_ANNOTATIONS = frozenset(
    {
        "title",
        "description",
        "$comment",
        "$schema",
        "$id",
        "$anchor",
        "$defs",
        "definitions",
        "deprecated",
        "readOnly",
        "writeOnly",
        "contentMediaType",
        "contentEncoding",
    }
)
_STRINGS = ("example", "https://example.com/", "user@example.com", "2025-01-01", "a", "A", "0")


class SchemaViolation(RuleViolation):
    """A tool's input or output breaks its schema; ``field`` says where, e.g. ``input.a[0]``."""


def check_input(tool: ToolRegistered, value: object) -> None:
    """Raise SchemaViolation (field ``input...``) if ``value`` breaks the tool's input schema."""
    _check(tool.input_schema, value, "input")


def check_output(tool: ToolRegistered, value: object) -> None:
    """Raise SchemaViolation (field ``output...``) if ``value`` breaks the tool's output schema."""
    _check(tool.output_schema, value, "output")


# Errors about a value's shape (which keys, how many items): a template cannot change those.
_SHAPE_KEYWORDS = frozenset(
    {"required", "additionalProperties", "minProperties", "maxProperties", "minItems", "maxItems"}
)


def check_literal_input(tool: ToolRegistered, value: object, root: str) -> None:
    """Raise SchemaViolation (field ``root...``) for a part of a step's ``with`` that breaks
    the tool's input schema although no template is involved: values holding a ``${...}``
    are only known when the run renders them, so errors about them wait until then."""
    if not tool.input_schema:
        return
    errors = [
        error
        for error in validator_for(tool.input_schema).iter_errors(value)
        if error.validator in _SHAPE_KEYWORDS or not _templated(error.instance)
    ]
    error = best_match(errors)
    if error is not None:
        raise SchemaViolation(_instance_path(root, error), _reason(error))


def check_dry_run_input(tool: ToolRegistered, value: object) -> None:
    """check_input for a dry run's rendered input, in which the values the dry run cannot know
    stand as ``{"$unknown": ...}`` (``<unknown ...>`` in text, see domain.unknowns): an error
    only they could cause waits for the run, as check_literal_input leaves templated values."""
    if not tool.input_schema:
        return
    errors = [
        error
        for error in validator_for(tool.input_schema).iter_errors(value)
        if not _blames_unknown(error)
    ]
    error = best_match(errors)
    if error is not None:
        raise SchemaViolation(_instance_path("input", error), _reason(error))


def _blames_unknown(error: ValidationError) -> bool:
    if shows_unknown(error.instance):
        return True  # it may be anything
    # Text around an unknown is still text, and an object's keys are known: those hold.
    kept = error.validator in _SHAPE_KEYWORDS or error.validator == "type"
    return not kept and mentions_unknown(error.instance)


def _templated(value: object) -> bool:
    if isinstance(value, str):
        return "${" in value
    if isinstance(value, Mapping):
        return any(_templated(item) for item in value.values())
    if isinstance(value, list):
        return any(_templated(item) for item in value)
    return False


def _check(schema: dict[str, Any], value: object, root: str) -> None:
    if not schema:  # the empty schema allows anything
        return
    error = best_match(validator_for(schema).iter_errors(value))
    if error is not None:
        raise SchemaViolation(_instance_path(root, error), _reason(error))


def validator_for(schema: Mapping[str, Any]) -> Draft202012Validator:
    """A compiled Draft 2020-12 validator for ``schema``, shared by every equal schema.

    Formats are annotations, as Draft 2020-12 says by default: ``format`` is not asserted.
    """
    return _compiled(msgspec.json.encode(schema, order="sorted"))


@functools.lru_cache(maxsize=512)
def _compiled(canonical: bytes) -> Draft202012Validator:
    return Draft202012Validator(msgspec.json.decode(canonical))


def _instance_path(root: str, error: ValidationError) -> str:
    parts = [root]
    for part in error.absolute_path:
        if isinstance(part, int):
            parts.append(f"[{part}]")
        elif _PLAIN_KEY.match(part):
            parts.append(f".{part}")
        else:
            parts.append(f"[{msgspec.json.encode(part).decode()}]")
    return "".join(parts)


def _reason(error: ValidationError) -> str:
    message = error.message
    if len(message) > REASON_MAX:
        message = f"{message[: REASON_MAX - 3]}..."
    schema_path = ".".join(str(part) for part in error.absolute_schema_path)
    return f"{message} (schema: {schema_path or '(root)'})"


def example_output(schema: dict[str, Any]) -> Any:
    """A plausible value that satisfies ``schema`` (for dry runs that call no tool).

    Prefers what the schema offers (const, default, examples, enum), then builds one from
    type, properties, items and the usual bounds. Rough by design: patterns and exotic
    keywords are honoured only when a simple candidate happens to fit. {} for ``{}``.
    """
    return _Examples(schema).make(schema, 0, 0)


def dry_run_output(schema: dict[str, Any]) -> Any:
    """An example of ``schema`` for a dry run, which leaves open what the schema leaves open
    (domain.unknowns): an Unknown where it does not say what a value holds (``{}``, ``true``),
    an OpenObject where an object may have fields the example does not show, an OpenList
    where an array may have more items. Each Unknown is named by its place (``output.json``).
    """
    examples = _Examples(schema)
    return examples.opened(schema, examples.make(schema, 0, 0), "output", 0)


class _Examples:
    """The example maker for one root schema (whose ``$defs`` its ``$ref``s point into)."""

    def __init__(self, root: dict[str, Any]) -> None:
        self.root = root
        self._validator = validator_for(root) if isinstance(root, dict) else None

    def fits(self, schema: Any, value: Any) -> bool:
        """Whether ``value`` satisfies ``schema``, a part of the root schema."""
        if self._validator is None or not isinstance(schema, (dict, bool)):
            return True
        try:
            return bool(self._validator.evolve(schema=schema).is_valid(value))
        except Exception:  # an unresolvable $ref or the like: cannot tell, assume it fits
            return True

    def make(self, schema: Any, depth: int, variant: int) -> Any:
        """An example of ``schema``; ``variant`` > 0 asks for a different one (unique items)."""
        if schema is True or schema == {}:
            return {}
        if not isinstance(schema, dict) or depth > _DEPTH_MAX:
            return None
        schema = self._flatten(schema, depth)
        first: Any = _NONE
        for candidate in self._candidates(schema, depth, variant):
            if self.fits(schema, candidate):
                return candidate
            first = candidate if first is _NONE else first
        return None if first is _NONE else first  # nothing fits: the likeliest, roughly

    def opened(self, schema: Any, value: Any, where: str, depth: int) -> Any:
        """``value``, an example of ``schema`` at ``where``, with what the schema leaves open
        left open."""
        if schema is True:
            return Unknown(where)
        if not isinstance(schema, dict) or depth > _DEPTH_MAX:
            return value
        schema = self._branch(self._flatten(schema, depth), value, depth)
        if not schema.keys() - _ANNOTATIONS:
            return Unknown(where)
        if "const" in schema or "enum" in schema:
            return value  # the value is one of these, exactly
        if isinstance(value, dict):
            return self._open_object(schema, value, where, depth)
        if isinstance(value, list):
            return self._open_list(schema, value, where, depth)
        return value

    def _open_object(
        self, schema: dict[str, Any], value: dict[str, Any], where: str, depth: int
    ) -> OpenObject:
        fields = {
            name: self.opened(_field_schema(schema, name), item, below(where, name), depth + 1)
            for name, item in value.items()
        }
        most = schema.get("maxProperties")
        full = isinstance(most, int) and len(fields) >= most

        def other(name: str) -> Any:
            field = _field_schema(schema, name)
            if field is False or full or not self.fits(schema.get("propertyNames", True), name):
                raise LookupError(name)
            example = self.make(field, depth + 1, 0)
            return self.opened(field, example, below(where, name), depth + 1)

        return OpenObject(fields, other)

    def _open_list(
        self, schema: dict[str, Any], value: list[Any], where: str, depth: int
    ) -> OpenList:
        items = [
            self.opened(_item_schema(schema, i), item, below(where, i), depth + 1)
            for i, item in enumerate(value)
        ]
        most = schema.get("maxItems")

        def other(index: int) -> Any:
            item = _item_schema(schema, index)
            if item is False or (isinstance(most, int) and not -most <= index < most):
                raise LookupError(index)
            variant = abs(index) if schema.get("uniqueItems") else 0  # unlike those shown
            example = self.make(item, depth + 1, variant)
            return self.opened(item, example, below(where, index), depth + 1)

        return OpenList(items, other)

    def _branch(self, schema: dict[str, Any], value: Any, depth: int) -> dict[str, Any]:
        """``schema`` with the oneOf/anyOf branches ``value`` was made from merged in."""
        for key in ("oneOf", "anyOf"):
            branches = [b for b in schema.get(key, []) if isinstance(b, dict)]
            if not branches:
                continue
            rest = {k: v for k, v in schema.items() if k != key}
            merged = (_merge(rest, self._flatten(b, depth + 1)) for b in branches)
            chosen = next((m for m in merged if self.fits(m, value)), None)
            if chosen is None or depth >= _DEPTH_MAX:
                return rest
            return self._branch(chosen, value, depth + 1)  # a branch may branch again
        return schema

    def _flatten(self, schema: dict[str, Any], depth: int) -> dict[str, Any]:
        """``schema`` with its ``$ref`` and ``allOf`` parts merged in."""
        merged = {k: v for k, v in schema.items() if k not in ("$ref", "allOf")}
        parts = [self._resolve(schema["$ref"])] if isinstance(schema.get("$ref"), str) else []
        parts += [p for p in schema.get("allOf", []) if isinstance(p, dict)]
        for part in parts:
            merged = _merge(merged, self._flatten(part, depth + 1) if depth < _DEPTH_MAX else {})
        return merged

    def _resolve(self, ref: str) -> Any:
        """A local reference such as ``#/$defs/Item``; anything else counts as ``{}``."""
        if not ref.startswith("#"):
            return {}
        target: Any = self.root
        for token in filter(None, ref[1:].split("/")):
            key = unquote(token).replace("~1", "/").replace("~0", "~")
            if isinstance(target, dict) and key in target:
                target = target[key]
            elif isinstance(target, list) and key.isdigit() and int(key) < len(target):
                target = target[int(key)]
            else:
                return {}
        return target

    def _candidates(self, schema: dict[str, Any], depth: int, variant: int) -> Iterator[Any]:
        offered = [schema["const"]] if "const" in schema else []
        offered += [schema["default"]] if "default" in schema else []
        offered += [*schema.get("examples", []), *schema.get("enum", [])]
        if offered:
            yield offered[variant % len(offered)]
            yield from offered
        for key in ("oneOf", "anyOf"):
            for branch in schema.get(key, []):
                rest = {k: v for k, v in schema.items() if k not in ("oneOf", "anyOf")}
                yield self.make(
                    _merge(rest, branch) if isinstance(branch, dict) else branch, depth + 1, variant
                )
        for kind in _types(schema):
            yield _MAKERS[kind](self, schema, depth, variant)


def _merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    """Two schemas as one (roughly what allOf means): properties and required combine."""
    merged = {**base, **extra}
    if "properties" in base and "properties" in extra:
        ours, theirs = base["properties"], extra["properties"]
        shared = {k: {"allOf": [ours[k], theirs[k]]} for k in ours.keys() & theirs.keys()}
        merged["properties"] = {**ours, **theirs, **shared}
    for part in (base, extra):  # a closed part allows only its own properties
        if part.get("additionalProperties") is False and "properties" in merged:
            allowed = part.get("properties", {})
            merged["properties"] = {k: v for k, v in merged["properties"].items() if k in allowed}
            merged["additionalProperties"] = False
    if "required" in base and "required" in extra:
        merged["required"] = list(dict.fromkeys([*base["required"], *extra["required"]]))
    if "type" in base and "type" in extra:
        both = set(_listed(base["type"])) & set(_listed(extra["type"]))
        merged["type"] = [t for t in _listed(base["type"]) if t in both] or extra["type"]
    return merged


def _field_schema(schema: dict[str, Any], name: str) -> Any:
    """What an object ``schema`` allows in field ``name``: a schema, or False."""
    properties = schema.get("properties", {})
    if isinstance(properties, dict) and name in properties:
        return properties[name]
    patterns = schema.get("patternProperties", {})
    matching = [sub for pattern, sub in patterns.items() if _matches(pattern, name)]
    if matching:
        return matching[0] if len(matching) == 1 else {"allOf": matching}
    return schema.get("additionalProperties", schema.get("unevaluatedProperties", True))


def _item_schema(schema: dict[str, Any], index: int) -> Any:
    """What an array ``schema`` allows at ``index``: a schema, or False."""
    prefix = schema.get("prefixItems", [])
    if 0 <= index < len(prefix):
        return prefix[index]
    if index < 0 and prefix:
        return True  # which item it is depends on the length: anything the schema allows
    return schema.get("items", schema.get("unevaluatedItems", True))


def _listed(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _types(schema: dict[str, Any]) -> list[str]:
    """The types to try, null last: a null is the least telling example."""
    declared = [t for t in _listed(schema.get("type", [])) if t in _MAKERS]
    if not declared:
        hints = (
            ("object", ("properties", "required", "additionalProperties")),
            ("array", ("items", "prefixItems", "minItems")),
            ("string", ("minLength", "maxLength", "pattern", "format")),
            ("number", ("minimum", "maximum", "exclusiveMinimum", "multipleOf")),
        )
        declared = [kind for kind, keys in hints if any(k in schema for k in keys)]
        declared = declared or ["object", "string"]
    return sorted(declared, key=lambda kind: kind == "null")


def _object(ex: _Examples, schema: dict[str, Any], depth: int, variant: int) -> dict[str, Any]:
    properties = schema.get("properties", {})
    required = [k for k in schema.get("required", []) if isinstance(k, str)]
    optional = [k for k in properties if k not in required] if depth < _OPTIONAL_DEPTH else []
    most = schema.get("maxProperties", math.inf)
    names = [*required, *optional][: max(len(required), int(min(most, 1 << 16)))]
    value = {name: ex.make(properties.get(name, True), depth + 1, variant) for name in names}
    extra = schema.get("additionalProperties", True)
    for index in range(schema.get("minProperties", 0) - len(value)):
        if extra is False:
            break
        value[f"key{index + 1}"] = ex.make(extra, depth + 1, variant)
    return value


def _array(ex: _Examples, schema: dict[str, Any], depth: int, variant: int) -> list[Any]:
    prefix = [p for p in schema.get("prefixItems", []) if isinstance(p, (dict, bool))]
    items = schema.get("items", True)
    wanted = max(schema.get("minItems", 0), 1 if depth < _OPTIONAL_DEPTH else 0)
    count = min(wanted, schema.get("maxItems", wanted))
    if items is False:
        count = min(count, len(prefix))
    unique = bool(schema.get("uniqueItems"))
    return [
        ex.make(prefix[i] if i < len(prefix) else items, depth + 1, variant + i * unique)
        for i in range(count)
    ]


def _string(ex: _Examples, schema: dict[str, Any], depth: int, variant: int) -> str:
    low, high = int(schema.get("minLength", 0)), schema.get("maxLength", math.inf)
    suffix = str(variant) if variant else ""
    texts = [_FORMATS.get(schema.get("format", ""), ""), *_STRINGS]
    sized = [_sized(text, suffix, low, high) for text in texts if text]
    pattern = schema.get("pattern")
    matching = [t for t in sized if not isinstance(pattern, str) or _matches(pattern, t)]
    return (matching or sized)[0]


def _sized(text: str, suffix: str, low: int, high: float) -> str:
    """``text`` with ``suffix``, padded or cut to between ``low`` and ``high`` characters."""
    text = f"{text}{suffix}".ljust(low, "x")
    if len(text) > high:
        text = (text[: max(0, int(high) - len(suffix))] + suffix)[: int(high)]
    return text


def _matches(pattern: str, text: str) -> bool:
    try:
        return re.search(pattern, text) is not None
    except re.error:  # an ECMA-262 pattern Python cannot read
        return True


def _number(ex: _Examples, schema: dict[str, Any], depth: int, variant: int) -> int | float:
    types = _listed(schema.get("type"))
    integer = "integer" in types and "number" not in types
    low, low_open = _limit(schema, "minimum", "exclusiveMinimum")
    high, high_open = _limit(schema, "maximum", "exclusiveMaximum")
    step = schema.get("multipleOf")
    step = step if isinstance(step, (int, float)) and step > 0 else None
    value = (0.0 if low is None else low + (1 if low_open else 0)) + variant * (step or 1)
    too_high = high is not None and (value > high or (high_open and value >= high))
    if high is not None and too_high:
        value = (low + high) / 2 if low is not None else high - (1 if high_open else 0)
    if step is not None:
        value = math.ceil(value / step) * step
        if high is not None and (value > high or (high_open and value >= high)):
            top = math.floor(high / step)
            value = (top - 1 if high_open and top * step >= high else top) * step
    if integer:
        rounded = math.ceil(value)
        return rounded if high is None or rounded <= high else math.floor(value)
    return value


def _limit(schema: dict[str, Any], inclusive: str, exclusive: str) -> tuple[float | None, bool]:
    """A bound and whether it is exclusive (an exclusive one wins: it is usually the only one)."""
    for key, is_open in ((exclusive, True), (inclusive, False)):
        value = schema.get(key)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value), is_open
    return None, False


_MAKERS: dict[str, Callable[[_Examples, dict[str, Any], int, int], Any]] = {
    "object": _object,
    "array": _array,
    "string": _string,
    "integer": _number,
    "number": _number,
    "boolean": lambda ex, schema, depth, variant: variant % 2 == 0,
    "null": lambda ex, schema, depth, variant: None,
}
