"""`ordinaut bench ...`: the benchmarks' arguments and commands, which the service's CLI
(services/cli/bench.py) adds when this package is installed. Each benchmark prints the machine,
a progress bar and its table, and writes its figures and goals as JSON (harness.py)."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

from ordinaut_bench.harness import run_bench
from ordinaut_bench.scratch import scratch_database
from services.cli.errors import CommandError
from services.cli.storage import database
from services.runtime.logging import configure_logging
from services.runtime.servers import start_servers
from services.runtime.settings import Settings

Positive = Callable[[str], int]


def add_benchmarks(bench: Any, positive: Positive) -> None:
    """Each benchmark and its arguments, under the `bench` command's subparsers."""
    append = bench.add_parser("append", help="event store append throughput")
    append.add_argument("--events", type=positive, default=20000, help="events, batched part")
    append.add_argument("--batch", type=positive, default=500)
    append.add_argument(
        "--concurrency",
        type=positive,
        nargs="+",
        default=[1, 4, 16],
        help="appenders (and pgbench clients) at each measurement (default: 1 4 16)",
    )
    append.add_argument(
        "--seconds", type=positive, default=5, help="length of each pgbench and store measurement"
    )
    timer = bench.add_parser("timer", help="timer fire lag and memory")
    timer.add_argument(
        "--schedules", type=positive, default=10000, help="schedules firing each minute"
    )
    timer.add_argument("--registered", type=int, default=0, help="total registered (default: same)")
    timer.add_argument("--seconds", type=positive, default=70, help="how long the timer runs")
    api = bench.add_parser("api", help="API latency at a fixed request rate")
    api.add_argument(
        "--rate",
        type=positive,
        nargs="+",
        default=[50, 200],
        help="requests per second, per route, one load after the other (default: 50 200)",
    )
    api.add_argument("--seconds", type=positive, default=20, help="how long the load runs")
    runs = bench.add_parser("runs", help="end-to-end run throughput (due -> succeeded)")
    runs.add_argument("--count", type=positive, default=20000, help="runs to execute")
    runs.add_argument("--workers", type=positive, default=2, help="worker processes")
    runs.add_argument("--concurrency", type=positive, default=64, help="runs per worker")
    ingest = bench.add_parser("ingest", help="ingest throughput (stream entry -> stored event)")
    ingest.add_argument("--events", type=positive, default=50000, help="entries to ingest")
    ingest.add_argument("--consumers", type=positive, default=1, help="ingest consumers")
    ingest.add_argument("--batch", type=positive, default=1000, help="entries per transaction")
    ingest.add_argument("--rate", type=positive, default=1000, help="entries/s for the lag part")
    ingest.add_argument("--seconds", type=positive, default=10, help="how long the lag part runs")
    ingest.add_argument("--no-relay", action="store_true", help="store only: no relay, no lag part")
    replay = bench.add_parser("replay", help="projection rebuild speed (events/s)")
    replay.add_argument("--events", type=positive, default=1_000_000, help="events to replay")
    up = bench.add_parser("up", help="time from starting `ordinaut up` to ready")
    up.add_argument("--rounds", type=positive, default=3, help="fresh and warm starts each")
    compare = bench.add_parser("compare", help="Ordinaut against Procrastinate and Celery")
    compare.add_argument("--jobs", type=positive, default=5000, help="no-op jobs per round")
    compare.add_argument("--rounds", type=positive, default=3, help="rounds per system")
    compare.add_argument("--rate", type=positive, default=100, help="jobs/s for the delay part")
    compare.add_argument("--seconds", type=positive, default=10, help="length of the delay part")
    compare.add_argument(
        "--only",
        action="append",
        choices=["ordinaut", "procrastinate", "celery"],
        help="run only this system (repeatable; default: all three)",
    )
    ui = bench.add_parser("ui", help="dashboard page times with 10,000 tasks and 100,000 runs")
    ui.add_argument("--tasks", type=positive, default=10000, help="tasks to seed")
    ui.add_argument("--runs", type=positive, default=100000, help="runs to seed")
    ui.add_argument("--repeat", type=positive, default=20, help="loads of each page")
    ui.add_argument("--deep", type=positive, default=50, help="next-page links to the deep page")
    bench.add_parser("report", help="regenerate BENCHMARKS.md from the stored results")
    every = bench.add_parser("all", help="every benchmark at quick sizes, then the report")
    every.add_argument(
        "--skip",
        action="append",
        default=[],
        metavar="BENCHMARK",
        help="leave this benchmark out (repeatable)",
    )


@asynccontextmanager
async def _scratch(settings: Settings, *, redis: bool) -> AsyncIterator[tuple[str, str]]:
    """A scratch database on the configured (or embedded) server, and the Redis URL."""
    if not redis:
        async with (
            database(settings, create=True, current=False) as server,
            scratch_database(server) as url,
        ):
            yield url, ""
        return
    servers = await start_servers(
        settings.database_url, settings.redis_url, settings.data_dir, create=True
    )
    try:
        async with scratch_database(servers.database_url) as url:
            yield url, servers.redis_url
    finally:
        await servers.stop()


async def cmd_append(args: argparse.Namespace, settings: Settings) -> int:
    from ordinaut_bench.append import LIMITS, bench_append, goals

    async with _scratch(settings, redis=False) as (url, _):
        await run_bench(
            "append",
            bench_append(
                url,
                events=args.events,
                batch_size=args.batch,
                concurrency=args.concurrency,
                seconds=args.seconds,
            ),
            goals=goals(max(args.concurrency)),
            limits=LIMITS,
        )
    return 0


async def cmd_timer(args: argparse.Namespace, settings: Settings) -> int:
    from ordinaut_bench.timer import GOALS, LIMITS, bench_timer

    async with _scratch(settings, redis=False) as (url, _):
        await run_bench(
            "timer",
            bench_timer(
                url, schedules=args.schedules, registered=args.registered, seconds=args.seconds
            ),
            goals=GOALS,
            limits=LIMITS,
        )
    return 0


async def cmd_api(args: argparse.Namespace, settings: Settings) -> int:
    from ordinaut_bench.api import LIMITS, bench_api, goals

    async with _scratch(settings, redis=True) as (url, redis_url):
        await run_bench(
            "api",
            bench_api(url, redis_url, rates=args.rate, seconds=args.seconds),
            goals=goals(args.rate),
            limits=LIMITS,
        )
    return 0


async def cmd_runs(args: argparse.Namespace, settings: Settings) -> int:
    from ordinaut_bench.runs import GOALS, LIMITS, bench_runs

    # The default (2 workers) is "runs"; other counts keep their own result beside it, so
    # BENCHMARKS.md shows where adding workers stops helping.
    name = "runs" if args.workers == 2 else f"runs-workers-{args.workers}"
    async with _scratch(settings, redis=True) as (url, redis_url):
        await run_bench(
            name,
            bench_runs(
                url,
                redis_url,
                count=args.count,
                processes=args.workers,
                concurrency=args.concurrency,
            ),
            goals=GOALS,
            limits=LIMITS,
        )
    return 0


async def cmd_ingest(args: argparse.Namespace, settings: Settings) -> int:
    from ordinaut_bench.ingest import GOALS, IngestBenchError, bench_ingest
    from ordinaut_bench.relay_lag import WatchError

    try:
        async with _scratch(settings, redis=True) as (url, redis_url):
            measure = bench_ingest(
                url,
                redis_url,
                events=args.events,
                consumers=args.consumers,
                batch=args.batch,
                rate=args.rate,
                seconds=args.seconds,
                relay=not args.no_relay,
            )
            await run_bench("ingest", measure, goals=GOALS)
    except (IngestBenchError, WatchError) as exc:
        # Something the bench waited for did not arrive: say what, never wait on.
        raise CommandError(f"bench ingest: {exc}") from None
    return 0


async def cmd_replay(args: argparse.Namespace, settings: Settings) -> int:
    from ordinaut_bench.replay import GOALS, LIMITS, bench_replay

    async with _scratch(settings, redis=False) as (url, _):
        await run_bench("replay", bench_replay(url, events=args.events), goals=GOALS, limits=LIMITS)
    return 0


async def cmd_up(args: argparse.Namespace, settings: Settings) -> int:
    from ordinaut_bench.up import GOALS, LIMITS, bench_up

    await run_bench("up", bench_up(rounds=args.rounds), goals=GOALS, limits=LIMITS)
    return 0


async def cmd_compare(args: argparse.Namespace, settings: Settings) -> int:
    from ordinaut_bench.compare import driver

    try:
        driver.check_installed(driver.wanted_systems(args.only))
    except driver.CompareError as exc:
        raise CommandError(str(exc)) from None
    servers = await start_servers(
        settings.database_url, settings.redis_url, settings.data_dir, create=True
    )
    try:
        measure = driver.bench_compare(
            servers.database_url,
            servers.redis_url,
            jobs=args.jobs,
            rounds=args.rounds,
            rate=args.rate,
            seconds=args.seconds,
            only=args.only,
        )
        await run_bench("compare", measure, goals=driver.GOALS, limits=driver.LIMITS)
    except (driver.CompareError, RuntimeError) as exc:
        # A peer that cannot start, a worker that died, a round that never finished.
        raise CommandError(f"bench compare: {exc}") from None
    finally:
        await servers.stop()
    return 0


async def cmd_ui(args: argparse.Namespace, settings: Settings) -> int:
    from ordinaut_bench.ui import GOALS, BenchError, bench_ui

    if settings.log_level == "info":  # the API runs in this process: keep its request lines out
        configure_logging(settings.log_format, "warning")
        for name in ("uvicorn.error", "mcp"):
            logging.getLogger(name).setLevel(logging.WARNING)
    try:
        async with _scratch(settings, redis=True) as (url, redis_url):
            measure = bench_ui(
                url, redis_url, tasks=args.tasks, runs=args.runs, repeat=args.repeat, deep=args.deep
            )
            await run_bench("ui", measure, goals=GOALS)
    except BenchError as exc:
        raise CommandError(str(exc)) from None
    return 0


async def cmd_report(args: argparse.Namespace, settings: Settings) -> int:
    from ordinaut_bench.markdown import write_report

    path = write_report()
    print(f"wrote {path}")
    return 0


async def cmd_all(args: argparse.Namespace, settings: Settings) -> int:
    from ordinaut_bench.suite import run_all

    try:
        failed = await run_all(args.skip, out=sys.stdout)
    except ValueError as exc:
        raise CommandError(str(exc)) from None
    await cmd_report(args, settings)
    return 1 if failed else 0


_COMMANDS: dict[str, Callable[[argparse.Namespace, Settings], Awaitable[int]]] = {
    "append": cmd_append,
    "timer": cmd_timer,
    "api": cmd_api,
    "runs": cmd_runs,
    "ingest": cmd_ingest,
    "replay": cmd_replay,
    "up": cmd_up,
    "compare": cmd_compare,
    "ui": cmd_ui,
    "report": cmd_report,
    "all": cmd_all,
}


async def dispatch(args: argparse.Namespace, settings: Settings) -> int:
    """Run the benchmark the arguments name."""
    return await _COMMANDS[args.bench_command](args, settings)
