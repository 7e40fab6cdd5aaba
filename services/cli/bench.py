"""`ordinaut bench ...`: the benchmarks live in their own distribution (benchmarks/, package
ordinaut_bench), outside the service's wheel. Installed (the `bench` extra), they add their
commands here; otherwise `ordinaut bench` says, on one line, how to install them."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

from services.cli.errors import CommandError
from services.runtime.settings import Settings

INSTALL_HINT = "the benchmarks are not installed: pip install 'ordinaut[bench]'"


def _not_installed(exc: ModuleNotFoundError) -> bool:
    """Whether the benchmarks are missing (an import error from inside them is a bug to show)."""
    return exc.name == "ordinaut_bench"


def add_bench_parser(sub: Any, positive: Callable[[str], int], parents: list[Any]) -> None:
    """The `bench` command and its benchmarks (``parents``: where the servers are)."""
    try:
        from ordinaut_bench.cli import add_benchmarks
    except ModuleNotFoundError as exc:
        if not _not_installed(exc):
            raise
        bench = sub.add_parser(
            "bench", help="benchmarks (not installed)", description=INSTALL_HINT, parents=parents
        )
        bench.add_argument("arguments", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
        return
    commands = sub.add_parser("bench", help="benchmarks", parents=parents).add_subparsers(
        dest="bench_command", required=True, metavar="BENCHMARK"
    )
    add_benchmarks(commands, positive)


async def dispatch_bench(args: argparse.Namespace, settings: Settings) -> int:
    """Run the benchmark the arguments name."""
    try:
        from ordinaut_bench.cli import dispatch
    except ModuleNotFoundError as exc:
        if not _not_installed(exc):
            raise
        raise CommandError(INSTALL_HINT) from None
    return await dispatch(args, settings)
