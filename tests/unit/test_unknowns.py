"""What a dry run cannot know: open examples of output schemas, and templates reading them."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings

from domain.events import ToolRegistered
from domain.secrets import redact
from domain.templates import TemplateError, condition_holds, render, select_items
from domain.tool_schemas import (
    SchemaViolation,
    check_dry_run_input,
    dry_run_output,
    validator_for,
)
from domain.tools import BUILTIN_TOOLS
from domain.unknowns import OpenList, OpenObject, Unknown, revived, unknowns_in
from tests.unit.test_tool_schemas import SIMPLE_SCHEMAS

NOW = datetime(2026, 11, 23, 8, 30, tzinfo=ZoneInfo("Europe/Chisinau"))
HTTP = BUILTIN_TOOLS["http.request"].output_schema
CLOSED = {
    "type": "object",
    "additionalProperties": False,
    "required": ["temp", "days"],
    "properties": {
        "temp": {"type": "integer"},
        "days": {"type": "array", "maxItems": 3, "items": {"type": "string"}},
        "pair": {"type": "array", "prefixItems": [{"type": "string"}], "items": False},
    },
}


def context(**outputs: Any) -> dict[str, Any]:
    return {"params": {}, "steps": outputs, "event": None}


def value(template: str, **outputs: Any) -> Any:
    return render(template, context(**outputs), now=NOW)


def refused(template: str, **outputs: Any) -> str:
    with pytest.raises(TemplateError) as caught:
        value(template, **outputs)
    return caught.value.reason


# --- the examples --------------------------------------------------------------------------


def test_what_the_http_output_schema_leaves_open_stays_open() -> None:
    output = dry_run_output(HTTP)
    assert output == {
        "status": 100,
        "headers": {},
        "json": {"$unknown": "output.json"},
        "text": "example",
    }
    assert isinstance(output, OpenObject)
    assert output.other("cookies") == {"$unknown": "output.cookies"}
    assert output["headers"].other("etag") == "example"  # any header, but a string


def test_a_schema_that_says_nothing_is_unknown_whole() -> None:
    assert dry_run_output({}) == Unknown("output")
    assert dry_run_output({"description": "whatever the server says"}) == Unknown("output")
    assert dry_run_output({"type": "object"}) == {}
    assert dry_run_output({"type": "array"}) == [Unknown("output[0]")]


def test_a_closed_schema_rules_out_what_it_does_not_list() -> None:
    output = dry_run_output(CLOSED)
    for ruled_out in (lambda: output.other("humidity"), lambda: output["days"].other(3)):
        with pytest.raises(LookupError):
            ruled_out()
    assert output["days"].other(2) == "example"  # fewer than three shown, up to three allowed
    with pytest.raises(LookupError):
        output["pair"].other(1)  # one item, then none
    pinned = dry_run_output({"type": "object", "const": {"a": 1}})
    assert type(pinned) is dict  # exactly this object: nothing else can be there


def test_the_branch_the_example_came_from_decides_what_is_open() -> None:
    schema = {
        "oneOf": [
            {"type": "string"},
            {"type": "object", "additionalProperties": False, "properties": {"a": {}}},
        ]
    }
    output = dry_run_output(schema)
    if isinstance(output, dict):
        assert output.other("a") == Unknown("output.a")
        with pytest.raises(LookupError):
            output.other("b")


@settings(
    max_examples=200, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow]
)
@given(SIMPLE_SCHEMAS)
def test_what_a_dry_run_says_may_be_there_the_schema_allows(schema: dict[str, Any]) -> None:
    output = dry_run_output(schema)
    validator = validator_for(schema)
    assert list(validator.iter_errors(output)) == [], output  # the output check passes
    # One more field (or item) wherever the example is open: the schema still holds.
    for widened in _widened(output):
        assert [e.message for e in validator.iter_errors(widened)] == [], widened


def _widened(value: Any) -> Iterator[Any]:
    """``value`` with one more field or item, made by ``other``, in each open place."""
    if isinstance(value, OpenObject | OpenList):
        try:
            extra = value.other("zz") if isinstance(value, dict) else value.other(len(value))
        except LookupError:
            pass
        else:
            yield {**value, "zz": extra} if isinstance(value, dict) else [*value, extra]
    if isinstance(value, dict):
        for key, item in value.items():
            yield from ({**value, key: wider} for wider in _widened(item))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from ([*value[:index], wider, *value[index + 1 :]] for wider in _widened(item))


# --- templates reading them ----------------------------------------------------------------


def test_a_path_into_what_is_open_is_unknown_and_named_by_the_path() -> None:
    b = dry_run_output(HTTP)
    assert value("${steps.b.json.n}", b=b) == {"$unknown": "steps.b.json.n"}
    assert value("${steps.b.json.items[2].id}", b=b) == Unknown("steps.b.json.items[2].id")
    assert value("${steps.b.anything}", b=b) == Unknown("steps.b.anything")
    assert value("n=${steps.b.json.n}", b=b) == "n=<unknown steps.b.json.n>"
    assert value("${steps.b.headers.etag}", b=b) == "example"


def test_a_path_a_schema_rules_out_still_fails() -> None:
    b, wx = dry_run_output(HTTP), dry_run_output(CLOSED)
    assert refused("${steps.wx.humidity}", wx=wx) == (
        "${steps.wx.humidity}: steps.wx has no field 'humidity' (it has temp, days, pair)"
    )
    assert "steps.wx.days has no index 5" in refused("${steps.wx.days[5]}", wx=wx)
    assert "is a number, not an object" in refused("${steps.b.status.code}", b=b)
    assert "is a string, not an object" in refused("${steps.b.headers.etag.x}", b=b)
    assert "steps has no field 'c'" in refused("${steps.c.json}", b=b)


def test_an_expression_that_reads_an_unknown_is_unknown() -> None:
    b = dry_run_output(HTTP)
    assert value("${length(steps.b.json.items)}", b=b) == Unknown("length(steps.b.json.items)")
    assert value("${sum(steps.b.json.items[*].n)}", b=b) == Unknown("sum(steps.b.json.items[*].n)")
    assert value("${steps.b.json.name || 'friend'}", b=b) == Unknown(
        "steps.b.json.name || 'friend'"
    )
    assert value("${[steps.b.status, `1`]}", b=b) == [100, 1]  # nothing unknown read: known
    data = context(b=b)
    assert condition_holds("steps.b.json.ready", data, now=NOW) is True
    assert condition_holds("steps.b.json.count > `3`", data, now=NOW) is True
    assert condition_holds("steps.b.status == `200`", data, now=NOW) is False  # an example's
    assert select_items("steps.b.json.items", data, now=NOW, field="f") == [
        Unknown("steps.b.json.items[0]")
    ]


def test_real_data_that_looks_like_an_unknown_is_data() -> None:
    # A tool may answer anything: only a dry run's own examples are open.
    answer = {"json": {"$unknown": "x"}}
    assert refused("${steps.b.json.n}", b=answer) == (
        "${steps.b.json.n}: steps.b.json has no field 'n' (it has $unknown)"
    )
    with pytest.raises(TemplateError):
        condition_holds("steps.b.json", context(b=answer), now=NOW)
    assert value("${length(steps.b.json)}", b=answer) == 1


# --- a dry run's inputs ----------------------------------------------------------------------


RESTOCK = ToolRegistered(
    address="shop.restock",
    transport="http",
    endpoint="http://127.0.0.1:1/restock",
    input_schema={
        "type": "object",
        "additionalProperties": False,
        "required": ["sku", "count"],
        "properties": {
            "sku": {"type": "string", "pattern": "^[A-Z]+-[0-9]+$"},
            "count": {"type": "integer"},
            "tags": {"type": "array", "maxItems": 1, "items": {"type": "string"}},
        },
    },
)


def test_an_input_check_leaves_what_is_unknown_to_the_run() -> None:
    unknown = {"$unknown": "steps.b.json.n"}
    check_dry_run_input(RESTOCK, {"sku": unknown, "count": unknown})
    check_dry_run_input(RESTOCK, {"sku": "A-<unknown steps.b.json.n>", "count": 1})
    check_dry_run_input(RESTOCK, {"sku": "A-1", "count": 1, "tags": unknown})


@pytest.mark.parametrize(
    ("given", "field"),
    [
        ({"sku": "A-1", "count": {"$unknown": "n"}, "color": "red"}, "input"),
        ({"count": {"$unknown": "n"}}, "input"),
        ({"sku": "A-1", "count": "n=<unknown n>"}, "input.count"),
        ({"sku": "a1", "count": {"$unknown": "n"}}, "input.sku"),
        ({"sku": "A-1", "count": 1, "tags": ["a", {"$unknown": "n"}]}, "input.tags"),
    ],
)
def test_an_input_check_still_refuses_what_is_known_to_break(
    given: dict[str, Any], field: str
) -> None:
    with pytest.raises(SchemaViolation) as caught:
        check_dry_run_input(RESTOCK, given)
    assert caught.value.field == field


def test_unknowns_come_back_from_json_and_are_listed_once_each() -> None:
    sent = {"a": {"$unknown": "steps.b.json"}, "t": "x <unknown steps.b.n> <unknown item>"}
    assert type(revived(sent)["a"]) is Unknown
    assert unknowns_in({**sent, "again": [{"$unknown": "item"}]}) == [
        "steps.b.json",
        "steps.b.n",
        "item",
    ]


def test_an_open_example_stays_open_through_redaction() -> None:
    # A step that used a secret has its output redacted: an example holds none, so it is kept.
    output = dry_run_output(HTTP)
    assert redact(output, {"TOKEN": "<secret TOKEN>"}) is output
