"""Reading a tasks file (YAML or JSON): every problem is reported with its line and field.

The document is read with each value's line (`documents`); the data then goes through the
file's JSON Schema and msgspec, and every error's path is mapped back to a line.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import msgspec
from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError, best_match

from services.declarative.documents import Lines, read_document
from services.declarative.file_format import TaskFile, tasks_file_schema
from services.declarative.file_problems import (
    FileInvalid,
    PathKey,
    Problem,
    format_path,
    parse_field,
)
from services.declarative.json_values import json_value_problems

MAX_BYTES = 10 * 1024 * 1024
_MSGSPEC_PATH = re.compile(r"^(.*) - at `\$(.*)`$")

__all__ = [
    "FileInvalid",
    "Lines",
    "LoadedFile",
    "Problem",
    "format_path",
    "load_task_file",
    "parse_field",
    "parse_task_file",
]


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
    data, lines = read_document(text, name, as_json=as_json)
    problems = json_value_problems(data, lines) or _schema_problems(data, lines)
    if problems:
        raise FileInvalid(name, problems)
    try:
        content = msgspec.convert(data, TaskFile)
    except msgspec.ValidationError as exc:
        raise FileInvalid(name, [_msgspec_problem(str(exc), lines)]) from None
    return LoadedFile(content, name, lines)


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
