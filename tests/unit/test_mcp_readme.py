"""The README's MCP tools table against the tools themselves: each tool in one row, with the
scope it needs, and every argument a row names is one its tools take (their input schemas, kept
in tests/data/mcp_tools.json)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from services.mcp.catalog import TOOLS
from services.mcp.server import listed_tools

README = Path(__file__).resolve().parents[2] / "README.md"
# | `tool` · `tool` | `scope` | what it does, naming arguments in backticks |
_ROW = re.compile(
    r"^\| (?P<tools>`[a-z_]+`(?: · `[a-z_]+`)*) \| (?P<scope>[^|]+) \| (?P<what>.+) \|$"
)
_TICKED = re.compile(r"`([^`]+)`")


def _rows() -> list[tuple[list[str], str, list[str]]]:
    text = README.read_text()
    section = text[text.index("\n## MCP\n") :]
    section = section[: section.index("\n## ", 1)]
    rows = []
    for line in section.splitlines():
        match = _ROW.match(line)
        if match:
            tools = _TICKED.findall(match["tools"])
            rows.append((tools, match["scope"].strip(), _TICKED.findall(match["what"])))
    return rows


def _properties() -> dict[str, set[str]]:
    schemas: dict[str, Any] = {tool.name: tool.input_schema for tool in listed_tools()}
    return {name: set(schema.get("properties", {})) for name, schema in schemas.items()}


def test_the_table_has_one_row_for_each_tool_with_the_scope_it_needs() -> None:
    rows = _rows()
    named = [tool for tools, _, _ in rows for tool in tools]
    assert sorted(named) == sorted(spec.name for spec in TOOLS)
    scopes = {spec.name: spec.scope for spec in TOOLS}
    for tools, scope, _ in rows:
        for tool in tools:
            needed = scopes[tool]
            # A tool without one scope checks the scope its arguments need (get_history).
            stated = _TICKED.findall(scope)
            assert stated == ([needed] if needed else ["tasks:read", "runs:read"]), (tool, scope)


def test_every_argument_a_row_names_is_one_its_tools_take() -> None:
    properties = _properties()
    named, unknown = 0, []
    for tools, _, ticked in _rows():
        takes = set().union(*(properties[tool] for tool in tools))
        names = [word for word in ticked if re.fullmatch(r"[a-z_]+", word) and word not in tools]
        named += len(names)
        unknown += [(tools[0], name) for name in names if name not in takes]
    assert named >= 10  # the rows were read
    assert unknown == []
