"""Tools that installed packages declare through the entry point group ``ordinaut.tools``.

A package lists, in its pyproject.toml::

    [project.entry-points."ordinaut.tools"]
    reports = "reports.ordinaut:TOOLS"

where ``TOOLS`` is a list of tool registrations (the fields of POST /tools), or a function
returning one. ``ordinaut tools sync`` registers them through the same rules as a tasks
file's ``tools:`` (python tools still need ORDINAUT_PYTHON_TOOLS_ALLOW).
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import Any

import msgspec

from services.application.tool_bodies import ToolBody

GROUP = "ordinaut.tools"


@dataclass(frozen=True)
class Declared:
    """The tools one entry point declares, or why they could not be read."""

    name: str
    value: str
    tools: list[ToolBody]
    error: str | None = None


def declared_tools() -> list[Declared]:
    """Every entry point of the group, loaded (a broken one says why instead of failing)."""
    found = []
    for point in sorted(entry_points(group=GROUP), key=lambda p: p.name):
        try:
            loaded: Any = point.load()
            listed = loaded() if callable(loaded) else loaded
            tools = msgspec.convert(listed, list[ToolBody])
        except Exception as exc:  # a broken package must not hide the others
            found.append(Declared(point.name, point.value, [], f"{type(exc).__name__}: {exc}"))
            continue
        found.append(Declared(point.name, point.value, tools))
    return found
