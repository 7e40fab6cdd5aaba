"""Reading a tasks file's document (YAML or JSON) into data, in bounded time and memory.

YAML is composed into nodes first, so each value's line is known. Aliases make those nodes a
graph: an alias inside the value its own anchor names is refused while composing (PyYAML
would build a recursive object from it), and the walk that checks the document expands
aliases but stops at MAX_NODES values and MAX_DEPTH levels, keeping only the path it is on,
so a short file can neither loop nor grow into an enormous document ("billion laughs").
Timestamps stay text (as in JSON), so `dtstart: 2026-01-05T09:00:00` means what it says.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import yaml

from services.declarative.file_problems import (
    FileInvalid,
    PathKey,
    Problem,
    format_path,
    parse_field,
)

MAX_NODES = 200_000
# Brackets or indentation nest at most about 490 levels before PyYAML's composer (which
# recurses) gives up, so only aliases can reach this; it keeps the walk's path short.
MAX_DEPTH = 500
_Children = Iterator[tuple[str | int, yaml.Node]]


class Lines:
    """Where each value of the document starts, for error messages, found in its nodes."""

    def __init__(self, root: yaml.Node | None = None) -> None:
        self.root = root

    def of(self, field: str | PathKey) -> int | None:
        """The line of ``field`` (e.g. ``tasks[1].payload``), or of its nearest parent: a
        mapping's entry starts at its key, a list's item at the item."""
        if self.root is None:
            return None
        node, line = self.root, self.root.start_mark.line + 1
        for part in parse_field(field) if isinstance(field, str) else field:
            step = _child(node, part)
            if step is None:
                break
            start, node = step
            line = start.start_mark.line + 1
        return line


def _child(node: yaml.Node, part: str | int) -> tuple[yaml.Node, yaml.Node] | None:
    """The node where entry ``part`` of ``node`` starts, and its value."""
    if isinstance(node, yaml.SequenceNode) and isinstance(part, int):
        return (node.value[part], node.value[part]) if 0 <= part < len(node.value) else None
    if isinstance(node, yaml.MappingNode) and isinstance(part, str):
        # the last entry wins, as when the mapping is built (merged keys come first)
        for key, value in reversed(node.value):
            if isinstance(key, yaml.ScalarNode) and key.value == part:
                return key, value
    return None


def read_document(text: str, name: str, *, as_json: bool) -> tuple[Any, Lines]:
    """The document's data and lines. JSON data comes from the json module (YAML 1.1 reads
    some JSON numbers, like 1e5, as text); its lines from YAML, with tabs as spaces (in valid
    JSON a raw tab can only be whitespace)."""
    if as_json:
        data = _read_json(text, name)
        try:
            node = _compose(text.replace("\t", " "))
        except yaml.YAMLError:
            return data, Lines()
        _check(node, name)
        return data, Lines(node)
    try:
        node = _compose(text)
        _check(node, name)  # before anything is built from the nodes
        data = _construct(node)
    except _SelfReference as exc:
        line = exc.mark.line + 1 if exc.mark is not None else None
        reason = f"alias *{exc.anchor} refers to itself: it is inside the value &{exc.anchor} names"
        raise FileInvalid(name, [Problem(line, "", reason)]) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        reason = getattr(exc, "problem", None) or str(exc)
        raise FileInvalid(name, [Problem(line, "", f"not valid YAML: {reason}")]) from None
    return data, Lines(node)


def _read_json(text: str, name: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise FileInvalid(name, [Problem(exc.lineno, "", f"not valid JSON: {exc.msg}")]) from None


# --- YAML nodes ----------------------------------------------------------------------------


class _SelfReference(yaml.YAMLError):
    """An alias inside the value its anchor names: the document would never end."""

    def __init__(self, anchor: str, mark: yaml.Mark | None) -> None:
        super().__init__(f"alias *{anchor} refers to itself")
        self.anchor, self.mark = anchor, mark


class _Loader(yaml.SafeLoader):
    """Safe YAML whose timestamps stay strings, as they would be in JSON, and whose aliases
    never point into a value still being composed."""

    def compose_node(self, parent: yaml.Node | None, index: int) -> yaml.Node | None:
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()  # type: ignore[no-untyped-call]  # untyped in the stubs
            target = self.anchors.get(event.anchor)
            # PyYAML gives a list or mapping its end mark once all of it is composed
            if target is not None and target.end_mark is None:
                raise _SelfReference(event.anchor, event.start_mark)
        return super().compose_node(parent, index)


def _timestamp_as_text(loader: yaml.SafeLoader, node: yaml.Node) -> str:
    return str(loader.construct_scalar(node))  # type: ignore[arg-type]


_Loader.add_constructor("tag:yaml.org,2002:timestamp", _timestamp_as_text)


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


def _check(root: yaml.Node | None, name: str) -> None:
    """Refuse a document that expands (through aliases) to more than MAX_NODES values or
    MAX_DEPTH levels, or repeats a key. Depth-first with a stack of iterators: memory grows
    with the depth only, and time with the values visited, never past the bounds."""
    if root is None:
        return
    problems: list[Problem] = []
    checked: set[int] = set()  # mappings whose keys were checked (an alias repeats them)
    path: list[str | int] = []  # of the node whose children stack[-1] yields
    stack = [_children(root, path, checked, problems)]
    values = 1
    while stack:
        step = next(stack[-1], None)
        if step is None:
            stack.pop()
            if stack:
                path.pop()
            continue
        part, node = step
        values += 1
        if values > MAX_NODES:
            reason = f"expands to more than {MAX_NODES} values (check its YAML aliases)"
            raise FileInvalid(name, [Problem(None, "", reason)])
        if isinstance(node, yaml.CollectionNode):
            if len(stack) >= MAX_DEPTH:
                reason = f"nests more than {MAX_DEPTH} levels deep (check its YAML aliases)"
                raise FileInvalid(name, [Problem(node.start_mark.line + 1, "", reason)])
            path.append(part)
            stack.append(_children(node, path, checked, problems))
    if problems:
        raise FileInvalid(name, problems)


def _children(
    node: yaml.Node, path: list[str | int], checked: set[int], problems: list[Problem]
) -> _Children:
    """The entries of a list or mapping, by index or key; a mapping's keys are checked once."""
    if isinstance(node, yaml.SequenceNode):
        return enumerate(node.value)
    if not isinstance(node, yaml.MappingNode):
        return iter(())
    if id(node) not in checked:
        checked.add(id(node))
        problems += _key_problems(node, path)
    return ((str(key.value), value) for key, value in node.value)


_TAG = "tag:yaml.org,2002:"
# Keys that are strings once built: text, timestamps (kept as text), and `<<` (merge) keys.
_STRING_KEYS = {f"{_TAG}str", f"{_TAG}timestamp", f"{_TAG}merge"}
_KINDS = {"bool": "a boolean", "null": "null", "int": "a number", "float": "a number"}


def _key_problems(node: yaml.MappingNode, path: list[str | int]) -> list[Problem]:
    """Keys that are not strings (JSON object keys are; msgspec cannot even store some), and
    keys given twice (YAML would silently keep the last one)."""
    problems, seen = [], set()
    for key_node, _ in node.value:
        line = key_node.start_mark.line + 1
        if key_node.tag not in _STRING_KEYS:
            problems.append(Problem(line, format_path(path), _not_a_string(key_node)))
            continue
        key = str(key_node.value)
        if key in seen:
            problems.append(Problem(line, format_path((*path, key)), "duplicate key"))
        seen.add(key)
    return problems


def _not_a_string(key: yaml.Node) -> str:
    if not isinstance(key, yaml.ScalarNode):
        kind = "a list" if isinstance(key, yaml.SequenceNode) else "a mapping"
        return f"a key cannot be {kind} (JSON object keys are strings)"
    tag = key.tag.removeprefix(_TAG)
    kind = _KINDS.get(tag, f"a !!{tag} value" if key.tag.startswith(_TAG) else f"a {tag} value")
    return (
        f"key {key.value!r} is {kind} in YAML, not a string: quote it"
        " (JSON object keys are strings)"
    )
