"""The tasks file: its structure as msgspec structs, and the JSON Schema generated from them.

Run ``python -m services.declarative.file_format > schemas/tasks-file.schema.json`` after
changing a task or tool body; a test checks that the published file is current.
"""

from __future__ import annotations

import json
import sys
from typing import Annotated, Any

import msgspec

from services.application.task_bodies import TaskBody, Text
from services.application.tool_bodies import ToolBody

Source = Annotated[str, msgspec.Meta(min_length=1, max_length=1_000)]


class FileTask(TaskBody, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A task as POST /tasks takes it, except that ``key`` (its name in the file) is required."""

    key: Text


class TaskFile(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A file of tasks (and tools) applied with `ordinaut apply`.

    ``source`` labels every task (``metadata.source``); it defaults to the file's name.
    """

    source: Source | None = None
    tools: list[ToolBody] = msgspec.field(default_factory=list)
    tasks: list[FileTask] = msgspec.field(default_factory=list)


def tasks_file_schema() -> dict[str, Any]:
    """The JSON Schema (Draft 2020-12) of a tasks file."""
    generated = msgspec.json.schema(TaskFile)
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "Ordinaut tasks file",
        **generated,
    }


if __name__ == "__main__":
    sys.stdout.write(json.dumps(tasks_file_schema(), indent=2, sort_keys=True) + "\n")
