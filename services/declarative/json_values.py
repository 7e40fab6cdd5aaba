"""Whether a file's data is JSON as the API takes it, which YAML (and Python's json) allow more
than: NaN and infinities, keys that are not strings, binary data, sets and ordered pairs.

msgspec would store NaN as null and a number key as text, and cannot store a boolean key at
all, so such a file would be stored as something else than it says (and "updated" on every
apply) or fail halfway; the API refuses the same values in a request body.
"""

from __future__ import annotations

import math
from typing import Any

from services.declarative.documents import Lines
from services.declarative.file_problems import MAX_PROBLEMS, PathKey, Problem, format_path

# A path as a chain of (parent, part) links: pending values share their parents' links.
_Link = tuple["_Link", str | int] | None


def json_value_problems(data: Any, lines: Lines) -> list[Problem]:
    """Each value in ``data`` (in document order) that is not JSON, with its line and path.

    Iterative, and visits each value once: the document is acyclic and bounded by then.
    """
    problems: list[Problem] = []
    pending: list[tuple[Any, _Link]] = [(data, None)]
    while pending and len(problems) < MAX_PROBLEMS:
        value, link = pending.pop()
        if isinstance(value, dict):
            pending += [(item, (link, key)) for key, item in reversed(value.items())]
            reason = next((_key_reason(key) for key in value if not isinstance(key, str)), None)
        elif isinstance(value, list):
            pending += [(item, (link, index)) for index, item in reversed(list(enumerate(value)))]
            reason = None
        else:
            reason = _reason(value)
        if reason is not None:
            path = _path(link)
            problems.append(Problem(lines.of(path), format_path(path), reason))
    return problems


def _reason(value: Any) -> str | None:
    if value is None or isinstance(value, str | bool | int):
        return None
    if isinstance(value, float):
        if math.isnan(value):
            return "NaN is not a JSON number (the API refuses it too)"
        if math.isinf(value):
            sign = "-" if value < 0 else ""
            return (
                f"{sign}infinity is not a JSON number, nor is a number beyond 1.8e308"
                " (the API refuses them too)"
            )
        return None
    if isinstance(value, bytes):
        return "binary data (!!binary) is not a JSON value: write it as text"
    if isinstance(value, set):
        return "a set (!!set) is not a JSON value: write it as a list"
    if isinstance(value, tuple):
        return "a pair (from !!omap or !!pairs) is not a JSON value: write a mapping"
    return f"a {type(value).__name__} is not a JSON value"


def _key_reason(key: object) -> str:
    return f"key {key!r} is not a string (JSON object keys are strings)"


def _path(link: _Link) -> PathKey:
    parts: list[str | int] = []
    while link is not None:
        link, part = link
        parts.append(part)
    return tuple(reversed(parts))
