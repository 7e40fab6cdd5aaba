"""Reading a tasks file (YAML or JSON): every problem is reported with its line and field.

YAML is composed into nodes first, so each value's line is known; the data then goes through
the file's JSON Schema and msgspec, and every error's path is mapped back to a line.
Timestamps stay text (as in JSON), so `dtstart: 2026-01-05T09:00:00` means what it says.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import msgspec
import yaml
from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError, best_match

from services.declarative.file_format import TaskFile, tasks_file_schema

MAX_PROBLEMS = 20
MAX_BYTES = 10 * 1024 * 1024
MAX_NODES = 200_000
PathKey = tuple[str | int, ...]
_SEGMENT = re.compile(r"\[(\d+)\]|\.?([^.\[\]]+)")
_MSGSPEC_PATH = re.compile(r"^(.*) - at `\$(.*)`$")


@dataclass(frozen=True)
class Problem:
    """One thing wrong with the file: where (1-based line, dotted field) and why."""

    line: int | None
    field: str
    message: str

    def describe(self, name: str) -> str:
        where = f"{name}:{self.line}" if self.line is not None else name
        return (
            f"{where}: {self.field}: {self.message}" if self.field else f"{where}: {self.message}"
        )


class FileInvalid(Exception):
    """The file cannot be applied; ``problems`` says everything found wrong with it."""

    def __init__(self, name: str, problems: list[Problem]) -> None:
        super().__init__(f"{name} is invalid")
        self.name, self.problems = name, problems[:MAX_PROBLEMS]

    def lines(self) -> list[str]:
        return [problem.describe(self.name) for problem in self.problems]


class Lines:
    """Where each value of the document starts (by its path), for error messages."""

    def __init__(self, starts: dict[PathKey, int]) -> None:
        self.starts = starts

    def of(self, field: str | PathKey) -> int | None:
        """The line of ``field`` (e.g. ``tasks[1].payload``), or of its nearest parent."""
        path = parse_field(field) if isinstance(field, str) else field
        for end in range(len(path), -1, -1):
            if path[:end] in self.starts:
                return self.starts[path[:end]]
        return None


def parse_field(field: str) -> PathKey:
    """``tasks[1].payload.pipeline[0].uses`` -> ("tasks", 1, "payload", "pipeline", 0, "uses")."""
    return tuple(int(index) if index else name for index, name in _SEGMENT.findall(field))


def format_path(path: Iterator[str | int] | PathKey) -> str:
    """The inverse of `parse_field`."""
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


@dataclass(frozen=True)
class LoadedFile:
    """A valid file's content, its default source (the file name), and its lines."""

    content: TaskFile
    name: str
    lines: Lines

    @property
    def source(self) -> str:
        return self.content.source or self.name


def load_task_file(path: Path) -> LoadedFile:
    """Read and validate ``path``; FileInvalid with every problem found."""
    name = path.name
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise FileInvalid(name, [Problem(None, "", f"cannot read: {exc.strerror}")]) from None
    if len(raw) > MAX_BYTES:
        raise FileInvalid(name, [Problem(None, "", f"is over {MAX_BYTES} bytes")])
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise FileInvalid(name, [Problem(None, "", "is not UTF-8 text")]) from None
    return parse_task_file(text, name, as_json=path.suffix.lower() == ".json")


def parse_task_file(text: str, name: str, *, as_json: bool = False) -> LoadedFile:
    """Validate a file's text; FileInvalid with every problem found."""
    try:
        return _parse(text, name, as_json)
    except RecursionError:  # the parsers and validators recurse; a real file never gets here
        raise FileInvalid(name, [Problem(None, "", "nests too deeply")]) from None


def _parse(text: str, name: str, as_json: bool) -> LoadedFile:
    data, lines = _read(text, name, as_json)
    problems = _schema_problems(data, lines)
    if problems:
        raise FileInvalid(name, problems)
    try:
        content = msgspec.convert(data, TaskFile)
    except msgspec.ValidationError as exc:
        raise FileInvalid(name, [_msgspec_problem(str(exc), lines)]) from None
    return LoadedFile(content, name, lines)


# --- YAML with lines -----------------------------------------------------------------------


class _Loader(yaml.SafeLoader):
    """Safe YAML whose timestamps stay strings, as they would be in JSON."""


def _timestamp_as_text(loader: yaml.SafeLoader, node: yaml.Node) -> str:
    return str(loader.construct_scalar(node))  # type: ignore[arg-type]


_Loader.add_constructor("tag:yaml.org,2002:timestamp", _timestamp_as_text)


def _read(text: str, name: str, as_json: bool) -> tuple[Any, Lines]:
    """The document's data and lines. JSON data comes from the json module (YAML 1.1 reads
    some JSON numbers, like 1e5, as text); its lines from YAML, with tabs as spaces (in valid
    JSON a raw tab can only be whitespace)."""
    if as_json:
        data = _read_json(text, name)
        try:
            node = _compose(text.replace("\t", " "))
        except yaml.YAMLError:
            return data, Lines({})
        return data, _lines(node, name)
    try:
        node = _compose(text)
        data = _construct(node)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        reason = getattr(exc, "problem", None) or str(exc)
        raise FileInvalid(name, [Problem(line, "", f"not valid YAML: {reason}")]) from None
    return data, _lines(node, name)


def _compose(text: str) -> yaml.Node | None:
    loader = _Loader(text)
    try:
        return loader.get_single_node()
    finally:
        loader.dispose()


def _construct(node: yaml.Node | None) -> Any:
    if node is None:
        return None
    loader = _Loader("")
    try:
        return loader.construct_document(node)
    finally:
        loader.dispose()


def _lines(node: yaml.Node | None, name: str) -> Lines:
    starts: dict[PathKey, int] = {}
    problems: list[Problem] = []
    if node is not None:
        _walk(node, starts, problems, name)
    if problems:
        raise FileInvalid(name, problems)
    return Lines(starts)


def _read_json(text: str, name: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise FileInvalid(name, [Problem(exc.lineno, "", f"not valid JSON: {exc.msg}")]) from None


def _walk(root: yaml.Node, starts: dict[PathKey, int], problems: list[Problem], name: str) -> None:
    """Record where each value starts; iterative, and bounded: YAML aliases can make a short
    file expand into an enormous document (the "billion laughs"), which is refused."""
    pending: list[tuple[yaml.Node, PathKey]] = [(root, ())]
    visited = 0
    while pending:
        node, path = pending.pop()
        visited += 1
        if visited > MAX_NODES:
            reason = f"expands to more than {MAX_NODES} values (check its YAML aliases)"
            raise FileInvalid(name, [Problem(None, "", reason)])
        starts.setdefault(path, node.start_mark.line + 1)
        if isinstance(node, yaml.MappingNode):
            seen: set[str] = set()
            for key_node, value_node in node.value:
                key = str(key_node.value)
                if key in seen:  # YAML would silently keep the last one
                    line = key_node.start_mark.line + 1
                    problems.append(Problem(line, format_path((*path, key)), "duplicate key"))
                seen.add(key)
                starts.setdefault((*path, key), key_node.start_mark.line + 1)
                pending.append((value_node, (*path, key)))
        elif isinstance(node, yaml.SequenceNode):
            pending.extend((item, (*path, index)) for index, item in enumerate(node.value))


# --- schema errors with lines --------------------------------------------------------------


@cache
def _validator() -> Draft202012Validator:
    return Draft202012Validator(tasks_file_schema())


def _schema_problems(data: Any, lines: Lines) -> list[Problem]:
    if not isinstance(data, dict):
        return [
            Problem(1, "", "must be a mapping with a tasks list (and optionally tools, source)")
        ]
    problems = []
    for error in sorted(
        _validator().iter_errors(data), key=lambda e: list(map(str, e.absolute_path))
    ):
        if error.context:
            error = best_match(error.context) or error
        problems.append(_problem(error, lines))
    return problems


def _problem(error: ValidationError, lines: Lines) -> Problem:
    path: PathKey = tuple(error.absolute_path)
    message = error.message
    if error.validator == "additionalProperties" and isinstance(error.instance, dict):
        known = error.schema.get("properties", {}) if isinstance(error.schema, dict) else {}
        extra = sorted(k for k in error.instance if k not in known)
        if extra:
            path = (*path, extra[0])
            message = "unknown field"
    if len(message) > 300:
        message = f"{message[:297]}..."
    return Problem(lines.of(path), format_path(path), message)


def _msgspec_problem(message: str, lines: Lines) -> Problem:
    match = _MSGSPEC_PATH.match(message)
    if match is None:
        return Problem(None, "", message)
    field = match.group(2).lstrip(".")
    return Problem(lines.of(field), field, match.group(1))
