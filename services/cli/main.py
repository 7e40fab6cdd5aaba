"""The `ordinaut` command: parse arguments, load settings, run one command, exit cleanly."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from importlib.metadata import version
from pathlib import Path

import uvloop

from services.cli import commands
from services.cli import preview as preview_command
from services.cli.bench import add_bench_parser
from services.runtime.embedded import ServersError
from services.runtime.logging import configure_logging
from services.runtime.settings import DEFAULTS, Settings, SettingsError
from services.runtime.supervisor import StartupError


def _positive(raw: str) -> int:
    """An argparse type: a whole number of at least 1 (benchmarks of nothing mean nothing)."""
    try:
        value = int(raw)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{raw!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{raw} must be at least 1")
    return value


def _storage_options() -> argparse.ArgumentParser:
    """Where a command finds its servers: a data dir (joining a running `ordinaut up` there, or
    starting its embedded servers) or explicit URLs."""
    options = argparse.ArgumentParser(add_help=False)
    group = options.add_argument_group("servers")
    group.add_argument(
        "--data-dir",
        type=Path,
        help=f"data directory (default ORDINAUT_DATA_DIR or {DEFAULTS.data_dir})",
    )
    group.add_argument("--database-url", help="PostgreSQL URL (default ORDINAUT_DATABASE_URL)")
    group.add_argument("--redis-url", help="Redis URL (default ORDINAUT_REDIS_URL)")
    return options


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ordinaut", description=__doc__)
    storage = [_storage_options()]
    parser.add_argument("--version", action="version", version=f"ordinaut {version('ordinaut')}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    up = sub.add_parser("up", help="migrate and run every service in one process")
    up.add_argument("--host", help=f"listen address (default ORDINAUT_HOST or {DEFAULTS.host})")
    up.add_argument("--port", type=int, help=f"API port (default ORDINAUT_PORT or {DEFAULTS.port})")
    up.add_argument(
        "--data-dir",
        type=Path,
        help=f"data directory (default ORDINAUT_DATA_DIR or {DEFAULTS.data_dir})",
    )
    up.add_argument(
        "--tasks-file",
        type=Path,
        action="append",
        dest="tasks_files",
        metavar="FILE",
        help="apply this tasks file at start and on every save",
    )

    apply = sub.add_parser(
        "apply", parents=storage, help="create, update (and prune) tasks from YAML/JSON files"
    )
    apply.add_argument(
        "-f",
        "--file",
        type=Path,
        action="append",
        dest="files",
        required=True,
        metavar="FILE",
        help="a tasks file (repeat for several)",
    )
    apply.add_argument(
        "--prune",
        action="store_true",
        help="cancel tasks from this file's source that it no longer lists",
    )
    apply.add_argument("--dry-run", action="store_true", help="print the changes, write nothing")
    apply.add_argument(
        "--watch",
        action="store_true",
        help="keep running; apply each saved version (invalid saves are ignored)",
    )

    tools = sub.add_parser("tools", help="the tool catalog").add_subparsers(
        dest="tools_command", required=True, metavar="SUBCOMMAND"
    )
    sync = tools.add_parser(
        "sync",
        parents=storage,
        help="register the tools installed packages declare (entry points ordinaut.tools)",
    )
    sync.add_argument("--dry-run", action="store_true", help="print the changes, write nothing")

    api = sub.add_parser(
        "api", parents=storage, help="run only the API (any number may run at once)"
    )
    api.add_argument("--host", help=f"listen address (default ORDINAUT_HOST or {DEFAULTS.host})")
    api.add_argument(
        "--port", type=int, help=f"API port (default ORDINAUT_PORT or {DEFAULTS.port})"
    )

    sub.add_parser("migrate", parents=storage, help="apply pending database migrations")
    mcp = sub.add_parser(
        "mcp", parents=storage, help="serve MCP over stdio as ORDINAUT_TOKEN's principal"
    )
    mcp.add_argument("--url", help="relay to the API at this URL (default: use the database)")
    sub.add_parser("timer", parents=storage, help="run only the timer (any number may run at once)")
    worker = sub.add_parser(
        "worker", parents=storage, help="run only a worker (any number may run at once)"
    )
    worker.add_argument(
        "--concurrency",
        type=_positive,
        help=f"runs at once (default ORDINAUT_WORKER_CONCURRENCY or {DEFAULTS.worker_concurrency})",
    )
    sub.add_parser(
        "ingest", parents=storage, help="run only the ingest consumer (any number may run at once)"
    )

    relay = sub.add_parser(
        "relay", parents=storage, help="run only the relay (events -> Redis stream)"
    )
    relay.add_argument("--stream", help="target stream (default ORDINAUT_EVENTS_STREAM)")

    notifier = sub.add_parser(
        "notifier", parents=storage, help="run only the notifier (events -> webhooks)"
    )
    notifier.add_argument("--stream", help="stream to read (default ORDINAUT_EVENTS_STREAM)")

    events = sub.add_parser("events", help="read the event log").add_subparsers(
        dest="events_command", required=True, metavar="SUBCOMMAND"
    )
    tail = events.add_parser(
        "tail", parents=storage, help="print events as JSON lines, then follow live"
    )
    tail.add_argument(
        "--after",
        default="0",
        help="start after this event: its cursor (<n>-<n>, as printed) or an old position",
    )
    tail.add_argument("--type", action="append", dest="types", help="only this event type")
    replay = events.add_parser(
        "replay", parents=storage, help="re-publish stored events to a stream or a file"
    )
    replay.add_argument("--from", dest="start", help="first position, or ISO time (inclusive)")
    replay.add_argument("--to", dest="end", help="last position, or ISO time (inclusive)")
    replay.add_argument("--type", action="append", dest="types", help="only this event type")
    replay.add_argument("--stream", help="only this event stream (e.g. run-<id>)")
    target = replay.add_mutually_exclusive_group(required=True)
    target.add_argument("--to-redis", metavar="STREAM", help="append to this Redis stream")
    target.add_argument("--jsonl", metavar="FILE", help="write JSON lines here (- = stdout)")

    projections = sub.add_parser("projections", help="manage read models").add_subparsers(
        dest="projections_command", required=True, metavar="SUBCOMMAND"
    )
    rebuild = projections.add_parser(
        "rebuild", parents=storage, help="truncate and replay read models"
    )
    rebuild.add_argument("names", nargs="*", metavar="NAME", help="projections (default: all)")

    schedule = sub.add_parser("schedule", help="schedule tools").add_subparsers(
        dest="schedule_command", required=True, metavar="SUBCOMMAND"
    )
    preview = schedule.add_parser("preview", help="print the next occurrences of a rule")
    # The API's names for a schedule (schedule_kind, schedule_expr, timezone), as flags.
    preview.add_argument("--schedule-kind", choices=["cron", "rrule", "once"])
    preview.add_argument("--schedule-expr")
    preview.add_argument("--timezone", default="UTC")
    for old in preview_command.RENAMED_FLAGS:  # earlier spellings: refused, naming the new flag
        preview.add_argument(old, dest=f"renamed_{old[2:]}", help=argparse.SUPPRESS)
    preview.add_argument("--after", help="ISO-8601 instant (default now)")
    preview.add_argument("--count", type=int, default=10)
    preview.add_argument(
        "--batch", metavar="FILE", help="preview each JSON-line request of FILE (- = piped stdin)"
    )
    preview.add_argument(
        "--jsonl", action="store_true", help="print the answer as one JSON line (batch: always)"
    )

    sub.add_parser(
        "env", parents=storage, help="print export lines with the URLs of the running service"
    )
    add_bench_parser(sub, _positive, storage)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script; returns the exit status."""
    args = _parser().parse_args(argv)
    try:
        settings = Settings.from_env(os.environ).with_overrides(
            data_dir=getattr(args, "data_dir", None),
            database_url=getattr(args, "database_url", None),
            redis_url=getattr(args, "redis_url", None),
        )
        if args.command in ("up", "api"):
            settings = settings.with_overrides(host=args.host, port=args.port)
        configure_logging(settings.log_format, settings.log_level)
        # uvloop: the same work at `bench api` 200/s took 73% of a core against 80% on asyncio's
        # own loop, which every request, lease and relayed event shares; the benchmarks drive
        # the store on the loop the service runs on.
        return uvloop.run(commands.dispatch(args, settings))
    except (SettingsError, StartupError, ServersError, commands.CommandError) as exc:
        print(f"ordinaut: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
