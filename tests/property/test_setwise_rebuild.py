"""The rebuild builds the same tables as appends when streams interleave.

The history of test_projection_rebuild is appended twice over disjoint tasks and runs, one
command of each copy in turn, so the rebuild's in-memory fold (projections/fold.py) meets two
streams' events of the same kind side by side, as it does in a busy log, and the appends'
batches change rows of several streams at once.
"""

from __future__ import annotations

import re
import uuid
from typing import TypeVar

import msgspec
from hypothesis import given, settings

from domain.events import EventReceived
from tests.property.test_projection_rebuild import (
    SETTINGS,
    Command,
    Model,
    append_all,
    assert_rebuild_reproduces,
    histories,
)
from tests.support import fresh_database

T = TypeVar("T")
# Task ids are "t-1" … "t-4" (runs "run-t-1-2", streams "task-t-1"); not a JSON escape.
_TASK_ID = re.compile(rb"(?<!\\\\)t-(\d)")


def _copy(value: T) -> T:
    """The same event or stream name about task "u-…" instead of "t-…" (and its runs)."""
    encoded = _TASK_ID.sub(rb"u-\1", msgspec.json.encode(value))
    copied = msgspec.json.decode(encoded, type=type(value))
    if isinstance(copied, EventReceived):
        copied = msgspec.structs.replace(copied, event_id=str(uuid.uuid4()))
    return copied


def _doubled(commands: list[Command]) -> list[Command]:
    copies = [
        Command(
            c.actor,
            tuple((_copy(stream), _copy(event)) for stream, event in c.events),
            c.idempotency_key and f"{c.idempotency_key}-copy",
        )
        for c in commands
    ]
    return [c for pair in zip(commands, copies, strict=True) for c in pair]


# Half test_projection_rebuild's examples: each appends twice the events.
@settings(SETTINGS, max_examples=15)
@given(history=histories())
async def test_rebuild_of_interleaved_streams_yields_the_inline_built_tables(
    postgres_url: str, template_database: str, history: tuple[list[Command], Model]
) -> None:
    commands, _ = history
    async with fresh_database(postgres_url, template_database) as conn:
        await append_all(conn, _doubled(commands))
        await assert_rebuild_reproduces(conn, batch=1000)
