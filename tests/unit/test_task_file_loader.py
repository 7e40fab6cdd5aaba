"""Reading tasks files: lines for every problem, text timestamps, one published schema."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path

import msgspec
import pytest

from domain.events import TaskDefinition
from domain.tasks import prepare_definition
from domain.tools import BUILTIN_TOOLS
from services.declarative.documents import MAX_DEPTH
from services.declarative.file_format import tasks_file_schema
from services.declarative.loader import FileInvalid, parse_field, parse_task_file

ROOT = Path(__file__).resolve().parents[2]


def problems(text: str) -> list[str]:
    with pytest.raises(FileInvalid) as caught:
        parse_task_file(text, "f.yaml")
    return caught.value.lines()


def test_the_published_schema_is_the_generated_one() -> None:
    published = json.loads((ROOT / "schemas" / "tasks-file.schema.json").read_text())
    assert published == tasks_file_schema(), (
        "regenerate: python -m services.declarative.file_format > schemas/tasks-file.schema.json"
    )


def test_timestamps_stay_text_and_keys_are_required() -> None:
    loaded = parse_task_file(
        "tasks:\n  - {key: a, title: A, schedule_kind: rrule, schedule_expr: FREQ=DAILY,"
        " dtstart: 2026-01-05T09:00:00}\n",
        "f.yaml",
    )
    assert loaded.content.tasks[0].dtstart is not None
    assert loaded.content.tasks[0].dtstart.isoformat() == "2026-01-05T09:00:00"
    assert loaded.source == "f.yaml"
    assert problems("tasks:\n  - title: A\n    schedule_kind: cron\n    schedule_expr: x\n") == [
        "f.yaml:2: tasks[0]: 'key' is a required property"
    ]


def test_unknown_fields_duplicate_keys_and_bad_documents_have_lines() -> None:
    assert problems("source: s\ntasks: []\ntask: []\n") == ["f.yaml:3: task: unknown field"]
    assert problems("tasks: []\ntasks: []\n") == ["f.yaml:2: tasks: duplicate key"]
    assert problems("- a\n- b\n") == [
        "f.yaml:1: must be a mapping with a tasks list (and optionally tools, source)"
    ]
    assert problems("tasks:\n  - key: a\n    schedule_kind: [\n")[0].startswith("f.yaml:4: ")


def test_alias_bombs_and_deep_nesting_are_refused() -> None:
    bomb = ["a: &a [x, x, x, x, x, x, x, x, x, x]"]
    for level in "bcdefg":
        previous = chr(ord(level) - 1)
        bomb.append(f"{level}: &{level} [" + ", ".join([f"*{previous}"] * 10) + "]")
    (message,) = problems("\n".join(bomb) + "\n")
    assert "expands to more than 200000 values" in message
    assert problems("tasks: " + "[" * 5000 + "]" * 5000 + "\n") == ["f.yaml: nests too deeply"]


@pytest.mark.timeout(10)
def test_an_alias_inside_its_own_anchor_is_refused_where_it_is() -> None:
    # PyYAML builds a recursive object from these: walking one would never end
    assert problems("a: &a [*a]\n") == [
        "f.yaml:1: alias *a refers to itself: it is inside the value &a names"
    ]
    assert problems("a: &a {b: *a}\ntasks: []\n") == [
        "f.yaml:1: alias *a refers to itself: it is inside the value &a names"
    ]
    text = (
        "tasks:\n  - &t\n    key: a\n    title: A\n    schedule_kind: event\n"
        "    schedule_expr: x\n    payload:\n      params: {again: [1, *t]}\n"
    )
    assert problems(text) == [
        "f.yaml:8: alias *t refers to itself: it is inside the value &t names"
    ]
    # an alias to a value that is complete is fine, even from inside a sibling
    loaded = parse_task_file(
        "tasks:\n  - &t {key: a, title: A, schedule_kind: event, schedule_expr: x}\n"
        "  - {key: b, title: B, schedule_kind: event, schedule_expr: x,"
        " payload: {params: {copy: *t}}}\n",
        "f.yaml",
    )
    assert loaded.content.tasks[1].payload["params"]["copy"]["key"] == "a"


def alias_chain(levels: int) -> str:
    """A valid file whose last task's params nest ``levels`` lists deep, through aliases."""
    defs = ["          - &x0 [leaf]"]
    defs += [f"          - &x{i} [*x{i - 1}]" for i in range(1, levels)]
    return (
        "tasks:\n  - key: deep\n    title: D\n    schedule_kind: event\n    schedule_expr: x\n"
        "    payload:\n      params:\n        defs:\n"
        + "\n".join(defs)
        + f"\n        v: *x{levels - 1}\n"
    )


@pytest.mark.timeout(10)
def test_depth_is_bounded_too_so_the_walk_stays_small() -> None:
    # six levels hold the chain (document, tasks, task, payload, params, v): 494 + 6 = 500
    loaded = parse_task_file(alias_chain(MAX_DEPTH - 6), "f.yaml")
    value = loaded.content.tasks[0].payload["params"]["v"]
    for _ in range(MAX_DEPTH - 7):
        (value,) = value
    assert value == ["leaf"]
    assert problems(alias_chain(MAX_DEPTH - 5)) == [
        f"f.yaml:9: nests more than {MAX_DEPTH} levels deep (check its YAML aliases)"
    ]


def test_merge_keys_may_override_what_they_merge() -> None:
    loaded = parse_task_file(
        "tasks:\n  - &t {key: a, title: A, schedule_kind: event, schedule_expr: x}\n"
        "  - {<<: *t, key: b, priority: 2}\n",
        "f.yaml",
    )
    assert [(t.key, t.title, t.priority) for t in loaded.content.tasks] == [
        ("a", "A", 5),
        ("b", "A", 2),
    ]
    lines = problems(
        "tasks:\n  - &t {key: a, title: A, schedule_kind: event, schedule_expr: x}\n"
        "  - {<<: *t, key: b, priority: 0}\n"
    )
    assert lines == ["f.yaml:3: tasks[1].priority: 0 is less than the minimum of 1"]


def test_fields_map_to_paths() -> None:
    assert parse_field("tasks[1].payload.pipeline[0].with.argv[0]") == (
        "tasks",
        1,
        "payload",
        "pipeline",
        0,
        "with",
        "argv",
        0,
    )


def test_the_readme_sample_is_a_valid_tasks_file() -> None:
    readme = (ROOT / "README.md").read_text()
    (sample,) = re.findall(r"```yaml\n(# tasks\.yaml.*?)```", readme, re.DOTALL)
    loaded = parse_task_file(sample, "tasks.yaml")
    kinds = {task.schedule_kind for task in loaded.content.tasks}
    assert kinds == {"cron", "rrule", "event", "once"}
    uses = {s["uses"] for t in loaded.content.tasks for s in t.payload.get("pipeline", [])}
    assert {"shell.exec", "reports.summarise"} <= uses
    assert [tool.transport for tool in loaded.content.tools] == ["python"]
    tools = frozenset(BUILTIN_TOOLS) | {tool.address for tool in loaded.content.tools}
    now = datetime(2026, 11, 29, tzinfo=UTC)
    for task in loaded.content.tasks:  # valid as POST /tasks would see it, too
        definition = msgspec.convert(msgspec.to_builtins(task), TaskDefinition)
        prepare_definition(definition, now, tools, ("/opt/jobs/*.sh", "/bin/sh"))
