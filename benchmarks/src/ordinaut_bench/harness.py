"""What every benchmark does around its measurement: name the machine, judge the goals, keep
the figures as JSON (see results.py) so that BENCHMARKS.md can be generated from them."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import math
import os
import sys
from collections.abc import AsyncIterator, Awaitable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from ordinaut_bench.results import describe_machine, write_result
from services.cli.progress import ProgressBar

Figures = dict[str, Any]


@dataclass(frozen=True)
class Goal:
    """A target one figure should reach: ``figure >= target`` (at_least) or ``<= target``."""

    figure: str
    target: float
    at_least: bool
    text: str  # as a reader should see it, e.g. "≥ 2,000 runs/s end-to-end"

    def met(self, figures: Figures) -> bool | None:
        """True or False; None when the figure was not measured (missing or NaN)."""
        value = figures.get(self.figure)
        if not isinstance(value, int | float) or math.isnan(value):
            return None
        return value >= self.target if self.at_least else value <= self.target


def judge(goals: Sequence[Goal], figures: Figures) -> dict[str, dict[str, Any]]:
    """Each goal with the measured value and whether it was met, keyed by figure."""
    return {
        goal.figure: {
            "goal": goal.text,
            "target": goal.target,
            "at_least": goal.at_least,
            "value": figures.get(goal.figure),
            "met": goal.met(figures),
        }
        for goal in goals
    }


def _verdict(met: bool | None) -> str:
    return {True: "met", False: "MISSED", None: "not measured"}[met]


async def run_bench(
    name: str,
    measure: Awaitable[Figures],
    *,
    goals: Sequence[Goal] = (),
    limits: str | None = None,
    out: TextIO = sys.stdout,
) -> Figures:
    """Print the machine, await the measurement (which prints its own table), print each
    goal's verdict and write ``<results>/bench/<name>.json``; returns what was written.

    ``limits`` says what holds a figure back where a goal is missed (kept beside the bench
    code and updated when measured); the report shows it only for missed goals."""
    print(f"machine: {describe_machine()}", file=out, flush=True)
    load_before = os.getloadavg()[0]
    figures = await measure
    load_after = os.getloadavg()[0]
    verdicts = judge(goals, figures)
    for verdict in verdicts.values():
        print(
            f"goal {verdict['goal']}: {_verdict(verdict['met'])} ({_show(verdict['value'])})",
            file=out,
        )
    # How busy the machine was: on 2 cores, a load above ~2 means the figures got a share.
    result: Figures = {
        **figures,
        "goals": verdicts,
        "load_average": [round(load_before, 2), round(load_after, 2)],
    }
    if limits:
        result["limits"] = limits
    path: Path = write_result("bench", name, result)
    print(f"results: {path}", file=out, flush=True)
    return result


def _show(value: object) -> str:
    if isinstance(value, float):
        return f"{value:,.2f}"
    return str(value)


@contextlib.asynccontextmanager
async def ticking(label: str, seconds: float) -> AsyncIterator[None]:
    """A progress bar that fills over ``seconds`` (for benchmarks that run for a set time)."""
    bar, total = ProgressBar(label + " (seconds)"), max(1, math.ceil(seconds))

    async def tick() -> None:
        for done in range(total + 1):
            bar.update(done, total)
            await asyncio.sleep(1)

    task = asyncio.create_task(tick())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        bar.finish()


@contextlib.contextmanager
def collector_paused() -> Iterator[None]:
    """The load generator's own garbage collector off while it measures.

    A full collection in the generator stops its loop for tens of ms; every request in flight
    then reads as that much slower although the server answered in time. What the generator
    allocates in a measured phase is small, so it is collected afterwards instead.
    """
    gc.collect()
    gc.freeze()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()
        gc.unfreeze()
