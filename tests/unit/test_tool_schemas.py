"""Tool inputs and outputs checked against their schemas, and made-up outputs for dry runs."""

from __future__ import annotations

import json
import pickle
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator

from domain.errors import Refusal, RuleViolation
from domain.events import ToolRegistered
from domain.tool_schemas import (
    SchemaViolation,
    check_input,
    check_output,
    example_output,
    validator_for,
)
from domain.tools import BUILTIN_TOOLS

EXAMPLES = Path(__file__).parent.parent / "data" / "examples"
CATALOG: list[dict[str, Any]] = json.loads((EXAMPLES / "tool_catalog_example.json").read_text())
CONTACTS = {
    "type": "object",
    "required": ["items"],
    "properties": {
        "items": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["email"],
                "properties": {"email": {"type": "string", "minLength": 3}},
            },
        },
        "odd key": {"type": "integer"},
    },
}
TOOL = ToolRegistered(
    address="crm.contacts",
    transport="http",
    endpoint="http://127.0.0.1:1/contacts",
    input_schema=CONTACTS,
    output_schema={"type": "object", "properties": {"status": {"type": "integer"}}},
)


def violation(check: Any, value: object, tool: ToolRegistered = TOOL) -> SchemaViolation:
    with pytest.raises(SchemaViolation) as caught:
        check(tool, value)
    return caught.value


def test_a_violation_names_the_instance_path_and_the_schema_path() -> None:
    found = violation(check_input, {"items": [{"email": "ok@x"}, {"email": 7}]})
    assert found.field == "input.items[1].email"
    assert found.reason == (
        "7 is not of type 'string' (schema: properties.items.items.properties.email.type)"
    )
    assert isinstance(found, RuleViolation)
    assert found.kind is Refusal.INVALID
    output = violation(check_output, {"status": "x"})
    assert (output.field, output.reason) == (
        "output.status",
        "'x' is not of type 'integer' (schema: properties.status.type)",
    )


def test_keys_that_are_not_names_are_quoted_and_the_root_has_no_path() -> None:
    assert violation(check_input, {"items": [], "odd key": "1"}).field == 'input["odd key"]'
    missing = violation(check_input, {})
    assert missing.field == "input"
    assert missing.reason == "'items' is a required property (schema: required)"
    assert violation(check_input, []).reason.endswith("(schema: type)")


def test_valid_values_and_the_empty_schema_pass() -> None:
    check_input(TOOL, {"items": [{"email": "someone@example.com"}], "odd key": 3})
    check_output(TOOL, {"status": 200, "extra": True})
    anything = ToolRegistered(address="a.b", transport="http", endpoint="http://127.0.0.1/")
    for value in (None, 1, "x", [1], {"a": {}}):
        check_input(anything, value)
        check_output(anything, value)


def test_a_long_reason_is_cut_short() -> None:
    found = violation(check_input, {"items": "x" * 5000})
    assert len(found.reason) < 400
    assert "..." in found.reason
    assert found.reason.endswith("(schema: properties.items.type)")


def test_violations_survive_pickling() -> None:
    found = violation(check_output, {"status": "x"})
    copy = pickle.loads(pickle.dumps(found))
    assert (type(copy), copy.field, copy.reason) == (SchemaViolation, found.field, found.reason)


def test_equal_schemas_share_one_compiled_validator() -> None:
    first = validator_for({"type": "object", "required": ["a"]})
    assert validator_for({"required": ["a"], "type": "object"}) is first
    assert validator_for({"type": "object", "required": ["b"]}) is not first


def test_formats_are_annotations_only() -> None:
    tool = ToolRegistered(
        address="a.b",
        transport="http",
        endpoint="http://127.0.0.1/",
        input_schema={"properties": {"at": {"type": "string", "format": "date-time"}}},
    )
    check_input(tool, {"at": "not a date"})


@pytest.mark.parametrize(
    "schema",
    [
        *(t.output_schema for t in BUILTIN_TOOLS.values()),
        *(t.input_schema for t in BUILTIN_TOOLS.values()),
        *(entry.get(key, {}) for entry in CATALOG for key in ("input_schema", "output_schema")),
    ],
)
def test_example_outputs_of_the_builtin_and_example_schemas_validate(
    schema: dict[str, Any],
) -> None:
    assert validator_for(schema).is_valid(example_output(schema))


def test_example_output_prefers_what_the_schema_offers() -> None:
    assert example_output({}) == {}
    assert example_output({"const": "fixed"}) == "fixed"
    assert example_output({"type": "integer", "default": 5}) == 5
    assert example_output({"type": "string", "examples": ["Chisinau"]}) == "Chisinau"
    assert example_output({"enum": ["approved", "rejected"]}) == "approved"
    assert example_output({"type": ["null", "string"], "format": "email"}) == "user@example.com"
    assert example_output({"type": "string", "pattern": "^https?://"}) == "https://example.com/"


def test_example_output_follows_refs_combinators_and_bounds() -> None:
    schema = {
        "$defs": {
            "Event": {
                "type": "object",
                "required": ["id", "attendees"],
                "properties": {
                    "id": {"type": "integer", "exclusiveMinimum": 10, "multipleOf": 5},
                    "attendees": {"type": "array", "items": {"$ref": "#/$defs/Event"}},
                },
            }
        },
        "type": "object",
        "required": ["events", "status"],
        "properties": {
            "events": {
                "type": "array",
                "minItems": 2,
                "uniqueItems": True,
                "items": {"$ref": "#/$defs/Event"},
            },
            "status": {"oneOf": [{"type": "integer"}, {"type": "string", "minLength": 4}]},
            "title": {"allOf": [{"type": "string"}, {"maxLength": 3}]},
        },
    }
    value = example_output(schema)
    assert validator_for(schema).is_valid(value)
    assert len(value["events"]) == 2
    assert value["events"][0]["id"] == 15
    assert value["events"][0]["attendees"][0]["id"] == 15  # recursion ends: finite
    assert len(value["title"]) <= 3


# Simple schemas: each one is satisfiable, and example_output must find a value for it.
def _names(alphabet: str) -> st.SearchStrategy[str]:
    return st.text(alphabet, min_size=1, max_size=6)


_NAMES = _names("abcdefgh_")


@st.composite
def _integers(draw: st.DrawFn) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": draw(st.sampled_from(["integer", "number"]))}
    low = draw(st.none() | st.integers(-1000, 1000))
    if low is not None:
        schema[draw(st.sampled_from(["minimum", "exclusiveMinimum"]))] = low
        if draw(st.booleans()):
            schema["maximum"] = low + draw(st.integers(2, 1000))
    elif draw(st.booleans()):
        schema[draw(st.sampled_from(["maximum", "exclusiveMaximum"]))] = draw(
            st.integers(-1000, 1000)
        )
    if "maximum" not in schema and draw(st.booleans()):
        schema["multipleOf"] = draw(st.integers(1, 50))
    return schema


@st.composite
def _strings(draw: st.DrawFn) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "string"}
    low = draw(st.integers(0, 20))
    if draw(st.booleans()):
        schema["minLength"] = low
    if draw(st.booleans()):
        schema["maxLength"] = low + draw(st.integers(0, 20))
    if draw(st.booleans()):
        schema["format"] = draw(st.sampled_from(["date-time", "email", "uri", "uuid"]))
    return schema


_LEAVES = st.one_of(
    st.sampled_from([{"type": "null"}, {"type": "boolean"}, {}, {"type": ["string", "null"]}]),
    _integers(),
    _strings(),
    st.lists(st.integers() | _NAMES, min_size=1, max_size=4, unique=True).map(
        lambda values: {"enum": values}
    ),
    st.integers().map(lambda value: {"const": value}),
)


def _arrays(items: st.SearchStrategy[dict[str, Any]]) -> st.SearchStrategy[dict[str, Any]]:
    @st.composite
    def build(draw: st.DrawFn) -> dict[str, Any]:
        low = draw(st.integers(0, 4))
        schema: dict[str, Any] = {"type": "array", "items": draw(items), "minItems": low}
        if draw(st.booleans()):
            schema["maxItems"] = low + draw(st.integers(0, 3))
        return schema

    unique = st.builds(
        lambda low, item: {"type": "array", "uniqueItems": True, "minItems": low, "items": item},
        st.integers(0, 5),
        st.sampled_from([{"type": "integer"}, {"type": "string"}, {"type": "number"}]),
    )
    return build() | unique


def _objects(
    values: st.SearchStrategy[dict[str, Any]], names: st.SearchStrategy[str] = _NAMES
) -> st.SearchStrategy[dict[str, Any]]:
    @st.composite
    def build(draw: st.DrawFn) -> dict[str, Any]:
        properties = draw(st.dictionaries(names, values, max_size=4))
        schema: dict[str, Any] = {"type": "object", "properties": properties}
        schema["required"] = draw(
            st.lists(st.sampled_from(sorted(properties)), unique=True)
            if properties
            else st.just([])
        )
        if draw(st.booleans()):
            schema["additionalProperties"] = False
        return schema

    return build()


def _combined(parts: st.SearchStrategy[dict[str, Any]]) -> st.SearchStrategy[dict[str, Any]]:
    kinds = ["string", "boolean", "null", "integer", "array"]
    distinct = st.lists(
        st.sampled_from([{"type": kind} for kind in kinds]),
        min_size=1,
        max_size=3,
        unique_by=lambda schema: schema["type"],
    )
    return st.one_of(
        parts.map(lambda part: {"anyOf": [part, {"type": "null"}]}),
        distinct.map(lambda branches: {"oneOf": branches}),
        st.builds(_all_of, _objects(parts, _names("abcd")), _objects(parts, _names("cdef"))),
    )


def _all_of(first: dict[str, Any], second: dict[str, Any]) -> dict[str, Any]:
    """Both objects at once: a closed one must not leave the other's requirements unmet."""
    for closed, other in ((first, second), (second, first)):
        if closed.get("additionalProperties") is False:
            other["required"] = [k for k in other["required"] if k in closed["properties"]]
    shared = first["properties"].keys() & second["properties"].keys()
    for name in shared:  # the same name in both: the same schema, so they can agree
        second["properties"][name] = first["properties"][name]
    return {"allOf": [first, second]}


_NESTED = st.recursive(
    _LEAVES,
    lambda inner: _arrays(inner) | _objects(inner) | _combined(inner),
    max_leaves=12,
)
_PART = {"$ref": "#/$defs/Part"}
# "#" is the root document, so $defs live at the root and parts refer to them from anywhere.
SIMPLE_SCHEMAS = st.one_of(
    _NESTED,
    _NESTED.map(lambda part: {"$defs": {"Part": part}, **_PART}),
    _NESTED.map(
        lambda part: {
            "$defs": {"Part": part},
            "type": "object",
            "required": ["one"],
            "properties": {"one": _PART, "many": {"type": "array", "items": _PART}},
        }
    ),
)


@settings(
    max_examples=300, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow]
)
@given(SIMPLE_SCHEMAS)
def test_example_output_satisfies_any_simple_schema(schema: dict[str, Any]) -> None:
    Draft202012Validator.check_schema(schema)
    value = example_output(schema)
    errors = [e.message for e in validator_for(schema).iter_errors(value)]
    assert errors == [], (value, errors)
