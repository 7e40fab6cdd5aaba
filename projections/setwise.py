"""Run one planned statement for many events as a single set-based statement.

A rebuild applies thousands of events of the same kind per wave; sending them with
``executemany`` makes PostgreSQL execute the statement once per row, which is most of a
rebuild's time. The same statement text, rewritten mechanically to read its parameters from
``unnest`` of one array per parameter, does the same work in one execution. The rewrite
derives from the projection's own SQL, so the rules stay in one place.

Only valid when every row touches a different target row (a wave holds one event per stream
and a keyed projection's ``$1`` is the row's key; the caller checks those are distinct) and
when the statement is one of the shapes below; anything else returns ``None`` and the caller
falls back to ``executemany``.
"""

from __future__ import annotations

import re
from typing import Any

from projections.base import Connection

_PARAM = re.compile(r"\$(\d+)\b")
_WHERE = re.compile(r"\bWHERE\b", re.IGNORECASE)
_VALUES = re.compile(r"\bVALUES\s*\(", re.IGNORECASE)
_FROM = re.compile(r"\bFROM\b", re.IGNORECASE)


class Setwise:
    """Rewrites statements (once each) and runs them for many argument rows."""

    def __init__(self) -> None:
        # sql -> the set-based text, or None when it cannot be rewritten.
        self._rewritten: dict[str, str | None] = {}

    async def execute(self, conn: Connection, sql: str, rows: list[tuple[Any, ...]]) -> bool:
        """Run ``sql`` once for every row, set-based; False (nothing done) if it can't be."""
        rewritten = await self.rewrite(conn, sql)
        if rewritten is None:
            return False
        columns = [list(column) for column in zip(*rows, strict=True)]
        await conn.execute(rewritten, *columns)
        return True

    async def rewrite(self, conn: Connection, sql: str) -> str | None:
        """The set-based text of ``sql`` (its parameters become arrays), or None."""
        if sql not in self._rewritten:
            self._rewritten[sql] = await _rewrite(conn, sql)
        return self._rewritten[sql]


async def _rewrite(conn: Connection, sql: str) -> str | None:
    statement = await conn.prepare(sql)
    types = statement.get_parameters()
    if not types or any(t.kind != "scalar" for t in types):
        return None
    arrays = ", ".join(
        f"${n}::{_quote(t.schema)}.{_quote(t.name)}[]" for n, t in enumerate(types, start=1)
    )
    names = ", ".join(f"p{n}" for n in range(1, len(types) + 1))
    source = f"unnest({arrays}) AS _a({names})"
    body = _PARAM.sub(lambda m: f"_a.p{m.group(1)}", sql.strip())
    head = body.split(None, 1)[0].upper()
    if head == "UPDATE":
        return _before_last_where(body, f"FROM {source}")
    if head == "DELETE":
        return _before_last_where(body, f"USING {source}")
    if head == "INSERT":
        return _insert(body, source)
    return None


def _before_last_where(body: str, clause: str) -> str | None:
    wheres = list(_WHERE.finditer(body))
    if len(wheres) != 1 or _FROM.search(body[wheres[0].start() :]):
        return None
    at = wheres[0].start()
    if body.upper().startswith("UPDATE") and _FROM.search(body[:at]):
        return None
    return f"{body[:at]}{clause}\n{body[at:]}"


def _insert(body: str, source: str) -> str | None:
    values = _VALUES.search(body)
    if values is not None:
        close = _closing(body, values.end() - 1)
        if close is None:
            return None
        exprs = body[values.end() : close]
        # The projection's own statement, re-shaped; no input reaches the text.
        return f"{body[: values.start()]}SELECT {exprs} FROM {source}{body[close + 1 :]}"  # noqa: S608
    # INSERT ... SELECT ... FROM <one table> WHERE ...: put the arguments first in FROM.
    froms = list(_FROM.finditer(body))
    if len(froms) != 1:
        return None
    at = froms[0].end()
    return f"{body[:at]} {source},{body[at:]}"


def _closing(text: str, opening: int) -> int | None:
    depth = 0
    for index in range(opening, len(text)):
        if text[index] == "(":
            depth += 1
        elif text[index] == ")":
            depth -= 1
            if depth == 0:
                return index
    return None


def _quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'
