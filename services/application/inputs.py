"""Checks on input that every adapter can make before a use case runs, naming the field: what
a body's type holds at a field path."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import msgspec

_SEGMENT = re.compile(r"\[(\d+)\]|([^.\[\]]+)")


def path_segments(path: str) -> list[str | int]:
    """``"a.b[0].c"`` as ``["a", "b", 0, "c"]``."""
    return [int(index) if index else name for index, name in _SEGMENT.findall(path)]


def types_at(annotation: Any, path: list[str | int]) -> list[msgspec.inspect.Type]:
    """What a body of type ``annotation`` may hold at ``path``: each type it may be (a union's
    members apart), with ``Meta`` annotations kept; empty if the body has nothing there."""
    found = [msgspec.inspect.type_info(annotation)]
    for segment in path:
        found = [child for info in found for child in _children(info, segment)]
    return found


def fields_at(annotation: Any, path: list[str | int]) -> set[str]:
    """The field names of the object a body of type ``annotation`` has at ``path``."""
    return {
        field.encode_name
        for info in types_at(annotation, path)
        for member in _members(info)
        if isinstance(member, msgspec.inspect.StructType)
        for field in member.fields
    }


def _members(info: msgspec.inspect.Type) -> Iterator[msgspec.inspect.Type]:
    if isinstance(info, msgspec.inspect.Metadata):
        yield from _members(info.type)
    elif isinstance(info, msgspec.inspect.UnionType):
        for member in info.types:
            yield from _members(member)
    else:
        yield info


def _children(info: msgspec.inspect.Type, segment: str | int) -> Iterator[msgspec.inspect.Type]:
    for member in _members(info):
        if isinstance(segment, int) and isinstance(
            member, msgspec.inspect.ListType | msgspec.inspect.VarTupleType
        ):
            yield member.item_type
        elif isinstance(segment, str) and isinstance(member, msgspec.inspect.StructType):
            yield from (f.type for f in member.fields if f.encode_name == segment)
        elif isinstance(segment, str) and isinstance(member, msgspec.inspect.DictType):
            yield member.value_type
        elif isinstance(member, msgspec.inspect.AnyType):
            yield member
