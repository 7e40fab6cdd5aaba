"""Tool catalog rules: the builtins, and which registrations are refused, naming the field."""

from __future__ import annotations

import pickle
from typing import Any

import msgspec
import pytest
from jsonschema import Draft202012Validator

from domain.events import ToolRegistered
from domain.tools import BUILTIN_TOOLS, ToolRuleError, same_registration, validate_registration

FORECAST = ToolRegistered(
    address="weather-mcp.forecast",
    transport="http",
    endpoint="https://weather.example/tools/forecast",
    input_schema={"type": "object", "required": ["city"]},
    output_schema={"type": "object"},
    timeout_seconds=15,
    scopes=("weather.read", "notify", "notify"),
)


def tool(**changes: Any) -> ToolRegistered:
    return msgspec.structs.replace(FORECAST, **changes)


def refused_field(candidate: ToolRegistered) -> str:
    with pytest.raises(ToolRuleError) as caught:
        validate_registration(candidate)
    return caught.value.field


def test_the_builtins_are_the_documented_ones() -> None:
    assert set(BUILTIN_TOOLS) == {
        "debug.echo",
        "http.request",
        "orchestrator.publish_event",
        "orchestrator.request_approval",
        "orchestrator.sleep",
        "orchestrator.wait_for_event",
        "pipeline.foreach",
        "shell.exec",
    }
    for address, builtin in BUILTIN_TOOLS.items():
        assert (builtin.address, builtin.transport) == (address, "builtin")
        assert builtin.description
        Draft202012Validator.check_schema(builtin.input_schema)
        Draft202012Validator.check_schema(builtin.output_schema)


def test_builtin_schemas_accept_the_inputs_the_examples_use() -> None:
    approval = Draft202012Validator(BUILTIN_TOOLS["orchestrator.request_approval"].input_schema)
    assert approval.is_valid({"message": "Review 3 follow-ups", "data": [1, 2, 3]})
    assert not approval.is_valid({"data": []})
    foreach = Draft202012Validator(BUILTIN_TOOLS["pipeline.foreach"].input_schema)
    assert foreach.is_valid({"items_path": "steps.targets.items", "body": [{"id": "a"}]})
    request = Draft202012Validator(BUILTIN_TOOLS["http.request"].input_schema)
    assert request.is_valid({"url": "https://example.com", "method": "POST", "json": {"a": 1}})
    assert not request.is_valid({"url": "ftp://example.com"})


def test_a_valid_registration_comes_back_with_sorted_unique_scopes() -> None:
    assert validate_registration(FORECAST) == tool(scopes=("notify", "weather.read"))


@pytest.mark.parametrize(
    "address", ["weather-mcp.forecast", "a.b", "A_1.b-2.c", "google-calendar-mcp.list_events"]
)
def test_dotted_addresses_are_accepted(address: str) -> None:
    assert validate_registration(tool(address=address)).address == address


@pytest.mark.parametrize(
    "address",
    [
        "forecast",
        ".forecast",
        "weather.",
        "weather..forecast",
        "wea ther.f",
        "é.f",
        "weather/forecast",
        "a." + "b" * 300,
        "",
    ],
)
def test_addresses_that_are_not_dotted_names_are_refused(address: str) -> None:
    assert refused_field(tool(address=address)) == "address"


@pytest.mark.parametrize("address", sorted(BUILTIN_TOOLS))
def test_a_builtin_address_cannot_be_registered(address: str) -> None:
    with pytest.raises(ToolRuleError, match="builtin") as caught:
        validate_registration(tool(address=address))
    assert caught.value.field == "address"


def test_the_builtin_transport_cannot_be_registered() -> None:
    assert refused_field(tool(transport="builtin")) == "transport"


@pytest.mark.parametrize(
    "endpoint",
    [
        None,
        "weather.example/forecast",
        "ftp://weather.example/x",
        "http://",
        "https://host:99999/x",
        "https://host/a b",
        "javascript:alert(1)",
    ],
)
def test_an_http_tool_needs_an_http_endpoint(endpoint: str | None) -> None:
    assert refused_field(tool(endpoint=endpoint)) == "endpoint"


def test_an_http_tool_runs_no_command() -> None:
    assert refused_field(tool(command=("weather-server",))) == "command"


def test_an_mcp_tool_is_reached_over_streamable_http_or_stdio() -> None:
    assert validate_registration(tool(transport="mcp")).endpoint == FORECAST.endpoint
    stdio = tool(transport="mcp", endpoint=None, command=("uvx", "weather-mcp", "--stdio"))
    assert validate_registration(stdio).command == ("uvx", "weather-mcp", "--stdio")


@pytest.mark.parametrize(
    ("endpoint", "command", "field"),
    [
        (None, None, "endpoint"),
        (None, (), "command"),
        (None, ("  ", "x"), "command"),
        ("https://mcp.example/mcp", ("weather-mcp",), "endpoint"),
        ("file:///tmp/mcp.sock", None, "endpoint"),
    ],
)
def test_an_mcp_tool_needs_exactly_one_way_to_reach_it(
    endpoint: str | None, command: tuple[str, ...] | None, field: str
) -> None:
    assert refused_field(tool(transport="mcp", endpoint=endpoint, command=command)) == field


@pytest.mark.parametrize(
    ("schema", "field"),
    [
        ({"type": "objekt"}, "input_schema.type"),
        ({"properties": {"city": {"type": 5}}}, "input_schema.properties.city.type"),
        ({"required": "city"}, "input_schema.required"),
        ({"allOf": [{"minimum": "x"}]}, "input_schema.allOf[0].minimum"),
        ({"$schema": "http://json-schema.org/draft-04/schema#"}, "input_schema.$schema"),
    ],
)
def test_input_schemas_must_be_draft_2020_12(schema: dict[str, Any], field: str) -> None:
    assert refused_field(tool(input_schema=schema)) == field


def test_output_schemas_are_checked_too() -> None:
    assert refused_field(tool(output_schema={"type": ["string", 3]})).startswith("output_schema")
    explicit = {"$schema": "https://json-schema.org/draft/2020-12/schema", "type": "object"}
    assert validate_registration(tool(output_schema=explicit)).output_schema == explicit


@pytest.mark.parametrize("seconds", [0, -1, 3600.5, float("inf"), float("nan")])
def test_timeouts_outside_0_to_3600_seconds_are_refused(seconds: float) -> None:
    assert refused_field(tool(timeout_seconds=seconds)) == "timeout_seconds"


@pytest.mark.parametrize("seconds", [0.1, 30, 3600])
def test_timeouts_inside_the_range_are_accepted(seconds: float) -> None:
    assert validate_registration(tool(timeout_seconds=seconds)).timeout_seconds == seconds


@pytest.mark.parametrize("scope", ["", "Notify", "1notify", "no tify", "a" * 65, "notify!"])
def test_scopes_must_be_lower_case_names(scope: str) -> None:
    assert refused_field(tool(scopes=("notify", scope))) == "scopes[1]"


def test_a_long_description_is_refused() -> None:
    assert refused_field(tool(description="x" * 2001)) == "description"


def test_rule_errors_survive_pickling() -> None:
    error = pickle.loads(pickle.dumps(ToolRuleError("address", "bad")))
    assert (error.field, error.reason) == ("address", "bad")


def test_a_schema_nested_too_deeply_to_check_is_refused() -> None:
    nested: dict[str, Any] = {"type": "string"}
    for _ in range(300):
        nested = {"not": nested}
    assert refused_field(tool(input_schema=nested)) == "input_schema"


def test_a_registration_read_back_from_the_store_is_the_same_registration() -> None:
    written = tool(input_schema={"type": "number", "maximum": 1e23, "default": True})
    read_back = tool(input_schema={"type": "number", "maximum": 10**23, "default": True})
    assert written != read_back  # as Python compares them
    assert same_registration(read_back, written)
    as_number = tool(input_schema={"type": "number", "maximum": 10**23, "default": 1})
    assert as_number == read_back  # as Python compares them: True == 1
    assert not same_registration(read_back, as_number)
