"""`ordinaut bench all`: every benchmark in turn at sizes that still mean something, in about
ten minutes on a 2-core machine; each runs as its own `ordinaut bench ...` process, so each
result records exactly the command that produced it."""

from __future__ import annotations

import asyncio
import sys
import time
from typing import TextIO

# Name and arguments, in the order they run.
PLAN: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("append", ("--events", "20000", "--concurrency", "1", "4", "16")),
    ("runs", ("--count", "20000")),
    ("compare", ("--jobs", "5000", "--rounds", "3", "--rate", "100", "--seconds", "10")),
    ("timer", ("--schedules", "10000", "--seconds", "70")),
    ("ingest", ("--events", "50000", "--rate", "1000", "--seconds", "10")),
    ("replay", ("--events", "1000000")),
    ("up", ("--rounds", "3")),
    ("api", ("--rate", "50", "200", "--seconds", "20")),
    ("ui", ()),
)


async def run_all(skip: list[str], out: TextIO = sys.stdout) -> list[str]:
    """Run every planned benchmark not in ``skip``; returns the names of those that failed."""
    unknown = set(skip) - {name for name, _ in PLAN}
    if unknown:
        raise ValueError(f"unknown benchmark(s) to skip: {', '.join(sorted(unknown))}")
    failed: list[str] = []
    for name, args in PLAN:
        if name in skip:
            continue
        print(f"\n=== ordinaut bench {name} {' '.join(args)}", file=out, flush=True)
        started = time.monotonic()
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "services.cli.main", "bench", name, *args
        )
        if await process.wait() != 0:
            failed.append(name)
        print(f"=== {name}: {time.monotonic() - started:.0f} s", file=out, flush=True)
    if failed:
        print(f"failed: {', '.join(failed)}", file=out)
    return failed
