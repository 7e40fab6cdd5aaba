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


def task_with_params(params: str) -> str:
    return (
        "tasks:\n  - key: k3\n    title: K\n    schedule_kind: event\n    schedule_expr: x\n"
        f"    payload:\n      params: {params}\n"
    )


QUOTE_IT = "not a string: quote it (JSON object keys are strings)"


@pytest.mark.parametrize(
    ("params", "problem"),
    [
        ("{true: b}", f"key 'true' is a boolean in YAML, {QUOTE_IT}"),
        ("{null: c}", f"key 'null' is null in YAML, {QUOTE_IT}"),
        ("{~: c}", f"key '~' is null in YAML, {QUOTE_IT}"),
        ("{1: a}", f"key '1' is a number in YAML, {QUOTE_IT}"),
        ("{0.5: a}", f"key '0.5' is a number in YAML, {QUOTE_IT}"),
        ("{? [a]: b}", "a key cannot be a list (JSON object keys are strings)"),
        ("{!!binary aGk=: b}", f"key 'aGk=' is a !!binary value in YAML, {QUOTE_IT}"),
    ],
)
def test_keys_must_be_strings_as_in_json(params: str, problem: str) -> None:
    # msgspec stores 1 as "1" (so the file never matches what is stored) and cannot store true
    assert problems(task_with_params(params)) == [f"f.yaml:7: tasks[0].payload.params: {problem}"]


def test_keys_that_are_strings_once_read_are_fine() -> None:
    loaded = parse_task_file(
        task_with_params(
            "{'1': a, \"true\": b, 2026-01-05: c, 2026-01-05T09:00:00: d, <<: {e: f}}"
        ),
        "f.yaml",
    )
    assert loaded.content.tasks[0].payload["params"] == {
        "1": "a",
        "true": "b",
        "2026-01-05": "c",
        "2026-01-05T09:00:00": "d",
        "e": "f",
    }


INFINITY = (
    "infinity is not a JSON number, nor is a number beyond 1.8e308 (the API refuses them too)"
)


def test_only_json_values_are_accepted() -> None:
    params = "\n".join(
        [
            "",
            "        a: [1, .nan, 2.5]",
            "        b: .inf",
            "        c: -.Inf",
            "        d: !!binary aGVsbG8=",
            "        e: !!set {x}",
            "        f: !!omap [{x: 1}]",
        ]
    )
    assert problems(task_with_params(params)) == [
        "f.yaml:8: tasks[0].payload.params.a[1]: NaN is not a JSON number (the API refuses it too)",
        f"f.yaml:9: tasks[0].payload.params.b: {INFINITY}",
        f"f.yaml:10: tasks[0].payload.params.c: -{INFINITY}",
        "f.yaml:11: tasks[0].payload.params.d: binary data (!!binary) is not a JSON value:"
        " write it as text",
        "f.yaml:12: tasks[0].payload.params.e: a set (!!set) is not a JSON value:"
        " write it as a list",
        "f.yaml:13: tasks[0].payload.params.f[0]: a pair (from !!omap or !!pairs) is not"
        " a JSON value: write a mapping",
    ]


def test_json_files_may_not_hold_nan_or_infinity_either() -> None:
    body = {
        "tasks": [
            {
                "key": "j",
                "title": "J",
                "schedule_kind": "event",
                "schedule_expr": "x",
                "payload": {"params": {"ok": 1e308, "nan": "NAN", "big": "BIG", "neg": "NEG"}},
            }
        ]
    }
    text = json.dumps(body, indent=1).replace('"NAN"', "NaN").replace('"BIG"', "1e999")
    with pytest.raises(FileInvalid) as caught:
        parse_task_file(text.replace('"NEG"', "-Infinity"), "f.json", as_json=True)
    assert caught.value.lines() == [
        "f.json:11: tasks[0].payload.params.nan: NaN is not a JSON number (the API refuses it too)",
        f"f.json:12: tasks[0].payload.params.big: {INFINITY}",
        f"f.json:13: tasks[0].payload.params.neg: -{INFINITY}",
    ]


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
