"""Checks on input that every adapter can make before a use case runs, naming the field: text
PostgreSQL cannot store (NUL), instants no date-time can hold, and what a body's type holds
at a field path.

Refused here, each names its field (``payload.pipeline[0].with.text``, a query parameter);
refused by the database instead, the client would learn only that "a value" is not valid.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import msgspec

from domain.schedules.zones import MAX_INSTANT, MIN_INSTANT, SUPPORTED_RANGE
from services.application.errors import FieldError, Invalid

NUL = "\x00"
NUL_REASON = "may not contain the NUL character (\\u0000)"
# In a field's ``msgspec.Meta(extra=...)``: text that is never stored as text (a secret's
# value is sealed first), so it may hold NUL like any other character.
NUL_ALLOWED = {"nul_allowed": True}


def refusal(errors: list[FieldError]) -> Invalid:
    """One refusal naming every field in ``errors``."""
    return Invalid("; ".join(f"{e.field}: {e.reason}" for e in errors), errors)


def nul_errors(value: Any, annotation: Any = Any) -> list[FieldError]:
    """Every string (or object key) in decoded JSON ``value`` that holds NUL, by path, unless
    the body's type (``annotation``) lets that field hold it."""
    found: list[FieldError] = []
    for path, is_key in _nul_paths(value, []):
        if not is_key and _allows_nul(types_at(annotation, path)):
            continue
        reason = f"keys {NUL_REASON}" if is_key else NUL_REASON
        found.append(FieldError(format_path(path), reason))
    return found


def _nul_paths(value: Any, path: list[str | int]) -> Iterator[tuple[list[str | int], bool]]:
    if isinstance(value, str):
        if NUL in value:
            yield path, False
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _nul_paths(item, [*path, index])
    elif isinstance(value, dict):
        for key, item in value.items():
            if NUL in key:
                yield path, True
            else:
                yield from _nul_paths(item, [*path, key])


def _allows_nul(types: list[msgspec.inspect.Type]) -> bool:
    return bool(types) and all(
        isinstance(info, msgspec.inspect.Metadata)
        and (info.extra or {}).items() >= NUL_ALLOWED.items()
        for info in types
    )


def representable(instant: datetime) -> bool:
    """Whether ``instant`` lies in the range every date-time Ordinaut takes must lie in (that of
    domain.schedules.zones: a day short of each end of the calendar, so that every zone can
    show it). One without an offset is checked where its zone is known (domain.schedules)."""
    return instant.utcoffset() is None or MIN_INSTANT <= instant < MAX_INSTANT


def instant_reason(instant: datetime) -> str:
    """Why ``instant`` is refused: the words the schedules use for the same range."""
    return f"{instant.isoformat()} is outside the supported range ({SUPPORTED_RANGE})"


def instant_errors(value: Any, path: str = "") -> list[FieldError]:
    """Every date-time in a decoded body (a Struct) that is not ``representable``, by path."""
    if isinstance(value, datetime):
        return [] if representable(value) else [FieldError(path or "body", instant_reason(value))]
    if isinstance(value, msgspec.Struct):
        return [
            error
            for attr, name in _instant_fields(type(value))
            for error in instant_errors(getattr(value, attr), f"{path}.{name}" if path else name)
        ]
    if isinstance(value, list | tuple):
        return [e for i, item in enumerate(value) for e in instant_errors(item, f"{path}[{i}]")]
    if isinstance(value, dict):
        return [e for k, item in value.items() for e in instant_errors(item, f"{path}.{k}")]
    return []


@functools.cache
def _instant_fields(cls: type[msgspec.Struct]) -> tuple[tuple[str, str], ...]:
    """The fields of ``cls`` whose type may hold a date-time (the others are never walked)."""
    info = msgspec.inspect.type_info(cls)
    fields = info.fields if isinstance(info, msgspec.inspect.StructType) else ()
    return tuple((f.name, f.encode_name) for f in fields if _holds_instant(f.type, set()))


def _holds_instant(info: msgspec.inspect.Type, seen: set[type]) -> bool:
    for member in _members(info):
        if isinstance(member, msgspec.inspect.DateTimeType):
            return True
        if isinstance(member, msgspec.inspect.StructType) and member.cls not in seen:
            seen.add(member.cls)
            if any(_holds_instant(f.type, seen) for f in member.fields):
                return True
        for attr in ("item_type", "value_type"):
            inner = getattr(member, attr, None)
            if isinstance(inner, msgspec.inspect.Type) and _holds_instant(inner, seen):
                return True
    return False


_SEGMENT = re.compile(r"\[(\d+)\]|([^.\[\]]+)")


def path_segments(path: str) -> list[str | int]:
    """``"a.b[0].c"`` as ``["a", "b", 0, "c"]``."""
    return [int(index) if index else name for index, name in _SEGMENT.findall(path)]


def format_path(path: list[str | int]) -> str:
    """``["a", "b", 0, "c"]`` as ``"a.b[0].c"`` (``"body"`` for the body itself)."""
    text = "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in path)
    return text.lstrip(".") or "body"


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
