"""Values a dry run cannot know: the parts of a tool's output its schema leaves open.

A dry run calls no tool: each step "returns" an example of the tool's output schema
(``domain.tool_schemas.dry_run_output``). Where the schema does not say what a value holds
(``{}``, ``true``, an untyped JSON body) the example holds an ``Unknown``; an object that may
have fields the example does not show (``additionalProperties`` not false) is an
``OpenObject``, an array that may be longer an ``OpenList``. A template reading into them gets an
``Unknown`` (or, where the schema types the value, an example of that type) instead of an
error, since the run may well find something there; what the schema rules out still fails.

An expression that reads an ``Unknown`` is unknown as a whole (``Reader``), a condition that is
unknown holds (so the step it guards is dry-run too), and a foreach over an unknown list runs
its body once, for one unknown item. As JSON an ``Unknown`` is ``{"$unknown": "<where from>"}``
(``steps.b.json.n``); in text it is ``<unknown steps.b.json.n>``.

These are Python types that no JSON decoder makes, so only dry runs ever hold them: a tool's
real output that happens to look like ``{"$unknown": ...}`` is data like any other. The
functions on JSON shapes (``shows_unknown``, ``revived``, ``unknowns_in``) are for a dry run's
own fakes, which see the rendered inputs after the runner's JSON round trip.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, TypeVar

from jmespath.visitor import Options, TreeInterpreter

if TYPE_CHECKING:
    from jmespath.visitor import _TreeNode  # the stubs' name for a parsed node

KEY = "$unknown"
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_IN_TEXT = re.compile(r"<unknown ([^<>]*)>")

Step = str | int
_T = TypeVar("_T")


class Unknown(dict[str, str]):
    """A value a dry run cannot know; ``where`` says where it comes from (``steps.b.json``).

    It has no known fields: reading any field or index of it gives another Unknown.
    """

    __slots__ = ()

    def __init__(self, where: str) -> None:
        super().__init__({KEY: where})

    @property
    def where(self) -> str:
        """Where the value comes from, e.g. ``steps.b.json.n``."""
        return dict.__getitem__(self, KEY)

    def __contains__(self, key: object) -> bool:
        return False

    def text(self) -> str:
        """How it reads inside a longer string."""
        return f"<unknown {self.where}>"


class OpenObject(dict[str, Any]):
    """An example object whose schema allows fields the example does not show.

    ``other(name)`` is what the schema allows in a field the example lacks (an Unknown, or an
    example of the field's type); it raises LookupError where the schema rules the field out.
    """

    __slots__ = ("other",)

    def __init__(self, fields: dict[str, Any], other: Callable[[str], Any]) -> None:
        super().__init__(fields)
        self.other = other


class OpenList(list[Any]):
    """An example array that may be longer; ``other(index)`` as for OpenObject."""

    __slots__ = ("other",)

    def __init__(self, items: list[Any], other: Callable[[int], Any]) -> None:
        super().__init__(items)
        self.other = other


def beyond(node: Any, step: Step) -> Any:
    """What reading ``step`` of ``node`` may find where the example does not show it.

    LookupError unless ``node`` is an Unknown (anything may be in it) or an open example
    whose schema allows ``step``.
    """
    if type(node) is Unknown:
        return node
    if isinstance(step, str) and isinstance(node, OpenObject):
        return node.other(step)
    if isinstance(step, int) and isinstance(node, OpenList):
        return node.other(step)
    raise LookupError(step)


def below(where: str, step: Step) -> str:
    """The place ``step`` below ``where``, as a template would write it (``a.b[0]["odd key"]``)."""
    if isinstance(step, int):
        return f"{where}[{step}]"
    if _IDENTIFIER.fullmatch(step):
        return f"{where}.{step}" if where else step
    return f"{where}[{json.dumps(step)}]"


class Reader(TreeInterpreter):
    """JMESPath's interpreter, which also reads open examples as templates' paths do and
    notes (``read_unknown``) whether the expression read an Unknown: its result is then
    unknown too, whatever JMESPath made of the stand-in."""

    def __init__(self, options: Options | None = None) -> None:
        super().__init__(options)
        self.read_unknown = False

    def visit_field(self, node: _TreeNode, value: Any) -> Any:
        name = node["value"]
        # Real data is plain dicts: one type check, then JMESPath's own lookup.
        if type(value) is dict or (isinstance(value, dict) and name in value):
            found = value.get(name)
        else:
            try:
                found = beyond(value, name)
            except LookupError:
                found = super().visit_field(node, value)
        return self._noted(found)

    def visit_index(self, node: _TreeNode, value: Any) -> Any:
        index = node["value"]
        if type(value) is list or (isinstance(value, list) and -len(value) <= index < len(value)):
            found = super().visit_index(node, value)
        else:
            try:
                found = beyond(value, index)
            except LookupError:
                found = super().visit_index(node, value)
        return self._noted(found)

    def visit_current(self, node: _TreeNode, value: _T) -> _T:
        return self._noted(value)

    def visit_identity(self, node: _TreeNode, value: _T) -> _T:
        return self._noted(value)

    def _noted(self, value: _T) -> _T:
        if type(value) is Unknown:
            self.read_unknown = True
        return value


def shows_unknown(value: Any) -> bool:
    """Whether ``value`` is an Unknown, or one as JSON (``{"$unknown": "..."}``)."""
    return isinstance(value, dict) and len(value) == 1 and isinstance(value.get(KEY), str)


def revived(value: Any) -> Any:
    """``value`` (decoded JSON) with each ``{"$unknown": ...}`` in it an Unknown again."""
    if shows_unknown(value):
        return Unknown(value[KEY])
    if isinstance(value, dict):
        return {key: revived(item) for key, item in value.items()}
    if isinstance(value, list):
        return [revived(item) for item in value]
    return value


def unknowns_in(value: Any) -> list[str]:
    """Where each unknown value in ``value`` comes from (as JSON or in text), once each."""
    return list(dict.fromkeys(_places(value)))


def _places(value: Any) -> Iterator[str]:
    if shows_unknown(value):
        yield value[KEY]
    elif isinstance(value, str):
        yield from _IN_TEXT.findall(value)
    elif isinstance(value, dict):
        for item in value.values():
            yield from _places(item)
    elif isinstance(value, list):
        for item in value:
            yield from _places(item)


def mentions_unknown(value: Any) -> bool:
    """Whether an unknown value is in ``value``, as JSON or in text."""
    return next(_places(value), None) is not None
