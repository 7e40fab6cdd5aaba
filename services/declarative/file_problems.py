"""What is wrong with a tasks file, and where: each problem with its line and dotted field."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

MAX_PROBLEMS = 20
PathKey = tuple[str | int, ...]
_SEGMENT = re.compile(r"\[(\d+)\]|\.?([^.\[\]]+)")


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


def parse_field(field: str) -> PathKey:
    """``tasks[1].payload.pipeline[0].uses`` -> ("tasks", 1, "payload", "pipeline", 0, "uses")."""
    return tuple(int(index) if index else name for index, name in _SEGMENT.findall(field))


def format_path(path: Iterable[str | int]) -> str:
    """The inverse of `parse_field`."""
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text
