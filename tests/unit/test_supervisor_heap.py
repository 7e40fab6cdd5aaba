"""The supervised process keeps its start-up objects out of the garbage collector's walks."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from services.runtime.supervisor import settle_heap


@pytest.fixture
def restored_gc() -> Iterator[None]:
    yield
    gc.unfreeze()


@pytest.mark.usefixtures("restored_gc")
def test_settling_the_heap_freezes_what_exists() -> None:
    long_lived = [object() for _ in range(10)]
    settle_heap()
    assert gc.get_freeze_count() >= len(long_lived)
    # Garbage made afterwards is still collected.
    cycle: list[object] = []
    cycle.append(cycle)
    del cycle
    assert gc.collect() >= 1
