"""The CLI's commands, each an async function of (arguments, settings) returning an exit code."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path

import asyncpg
import msgspec

from projections.rebuild import rebuild
from projections.registry import inline_projections
from services.cli.bench import dispatch_bench
from services.cli.env import cmd_env
from services.cli.errors import CommandError
from services.cli.preview import cmd_schedule_preview
from services.cli.progress import ProgressBar
from services.cli.storage import database, storage
from services.cli.up import (
    migrate_database,
    run_api_alone,
    run_ingest_alone,
    run_notifier_alone,
    run_relay_alone,
    run_timer_alone,
    run_up,
    run_worker_alone,
)
from services.declarative.apply import ApplyOptions
from services.declarative.entry_points import GROUP as ENTRY_POINTS
from services.declarative.entry_points import declared_tools
from services.declarative.file_format import TaskFile
from services.declarative.loader import Lines, LoadedFile
from services.declarative.runner import FileApplier
from services.declarative.watch import watch_files
from services.runtime.admin_token import load_admin_token
from services.runtime.settings import Settings
from services.store.errors import UnknownCursor
from services.store.pool import open_pool
from services.store.read import parse_cursor
from services.store.tail import follow_stored


async def cmd_up(args: argparse.Namespace, settings: Settings) -> int:
    await run_up(settings, tasks_files=args.tasks_files or [])
    return 0


async def cmd_api(args: argparse.Namespace, settings: Settings) -> int:
    await run_api_alone(settings)
    return 0


async def cmd_apply(args: argparse.Namespace, settings: Settings) -> int:
    """Apply tasks files once (exit 1 if any was invalid), or keep applying them (--watch)."""
    paths: list[Path] = args.files
    if not args.watch:
        missing = [str(p) for p in paths if not p.is_file()]
        if missing:
            raise CommandError(f"no such file: {', '.join(missing)}")
    options = ApplyOptions(
        prune=args.prune,
        dry_run=args.dry_run,
        shell_allow=settings.shell_allow,
        python_allow=settings.python_allow,
    )
    async with database(settings) as url, open_pool(url, size=2, warm=1) as pool:
        applier = FileApplier(pool, options, out=_say, err=_complain)
        if args.watch:
            await watch_until_signal(paths, applier.apply_path)
            return 0
        results = [await applier.apply_path(path) for path in paths]
    return 0 if all(results) else 1


async def cmd_tools_sync(args: argparse.Namespace, settings: Settings) -> int:
    """Register (or replace) every tool installed packages declare; all of them, or none."""
    declared = declared_tools()
    broken = [d for d in declared if d.error is not None]
    for entry in broken:
        _complain(f"entry point {entry.name} ({entry.value}): {entry.error}")
    if broken:
        raise CommandError("nothing was registered: fix or uninstall the packages above")
    listed = [tool for entry in declared for tool in entry.tools]
    if not listed:
        print(f"no installed package declares tools (entry point group {ENTRY_POINTS})")
        return 0
    loaded = LoadedFile(TaskFile(source="entry-points", tools=listed), "entry points", Lines())
    options = ApplyOptions(dry_run=args.dry_run, python_allow=settings.python_allow)
    async with database(settings) as url, open_pool(url, size=1) as pool:
        applied = await FileApplier(pool, options, _say, _complain).apply_loaded(loaded)
    return 0 if applied else 1


def _say(line: str) -> None:
    print(line, flush=True)


def _complain(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


async def watch_until_signal(
    paths: list[Path], apply_path: Callable[[Path], Awaitable[bool]]
) -> None:
    """Watch until SIGINT/SIGTERM."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await watch_files(paths, apply_path, stop)
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)


async def cmd_timer(args: argparse.Namespace, settings: Settings) -> int:
    await run_timer_alone(settings)
    return 0


async def cmd_worker(args: argparse.Namespace, settings: Settings) -> int:
    await run_worker_alone(settings, args.concurrency)
    return 0


async def cmd_relay(args: argparse.Namespace, settings: Settings) -> int:
    await run_relay_alone(settings, args.stream)
    return 0


async def cmd_notifier(args: argparse.Namespace, settings: Settings) -> int:
    await run_notifier_alone(settings, args.stream)
    return 0


async def cmd_ingest(args: argparse.Namespace, settings: Settings) -> int:
    await run_ingest_alone(settings)
    return 0


async def cmd_migrate(args: argparse.Namespace, settings: Settings) -> int:
    async with database(settings, create=True, current=False) as url:
        applied = await migrate_database(url)
    print(f"applied {len(applied)} migration(s)" + (f": {', '.join(applied)}" if applied else ""))
    return 0


async def cmd_events_tail(args: argparse.Namespace, settings: Settings) -> int:
    wanted = {t.strip() for value in args.types or () for t in value.split(",") if t.strip()}
    async with database(settings) as url:
        conn = await asyncpg.connect(url)
        try:
            try:
                after = await parse_cursor(conn, str(args.after))
            except UnknownCursor as exc:
                raise CommandError(f"--after: {exc}") from None
            async with contextlib.aclosing(follow_stored(conn, after=after)) as batches:
                async for batch in batches:
                    lines = [
                        msgspec.json.encode(stored).decode() + "\n"
                        for stored in batch
                        if not wanted or stored.type in wanted
                    ]
                    sys.stdout.write("".join(lines))
                    sys.stdout.flush()
        except (asyncpg.InterfaceError, asyncpg.PostgresConnectionError, OSError) as exc:
            raise CommandError(f"lost the database while following: {exc}") from None
        finally:
            await conn.close()
    return 0


async def cmd_events_replay(args: argparse.Namespace, settings: Settings) -> int:
    from services.cli.replay import BoundError, run_replay
    from services.relay.replay import ReplayError

    try:
        count = await run_replay(args, settings)
    except (BoundError, ReplayError) as exc:
        raise CommandError(str(exc)) from None
    where = f"to stream {args.to_redis}" if args.to_redis else f"to {args.jsonl}"
    print(f"replayed {count} events {where}", file=sys.stderr)
    return 0


async def cmd_projections_rebuild(args: argparse.Namespace, settings: Settings) -> int:
    projections = inline_projections()
    try:
        chosen = projections.named(args.names) if args.names else projections
    except KeyError as exc:
        known = ", ".join(p.name for p in projections.projections)
        raise CommandError(f"unknown projection {exc.args[0]!r} (known: {known})") from None
    async with database(settings) as url:
        conn = await asyncpg.connect(url)
        try:
            bar = ProgressBar("rebuilding " + ", ".join(p.name for p in chosen.projections))
            count = await rebuild(conn, chosen, progress=bar.update)
            bar.finish()
        finally:
            await conn.close()
    print(f"replayed {count} events")
    return 0


Command = Callable[[argparse.Namespace, Settings], Awaitable[int]]


async def cmd_mcp(args: argparse.Namespace, settings: Settings) -> int:
    """Serve MCP over stdio: against the store (settings' database) or the API at --url."""
    from services.mcp import proxy as mcp_proxy
    from services.mcp import stdio as mcp_stdio

    token = os.environ.get("ORDINAUT_TOKEN", "").strip()
    if not token:
        raise CommandError("ORDINAUT_TOKEN must hold an admin or agent token")
    try:
        if args.url:
            await mcp_proxy.serve_proxy(args.url, token)
            return 0
        admin_hash = load_admin_token(settings.admin_token, settings.data_dir).sha256
        async with storage(settings) as servers:
            await mcp_stdio.serve_direct(
                servers.database_url,
                servers.redis_url or None,
                token,
                admin_hash,
                settings.shell_allow,
            )
    except mcp_stdio.NotServed as exc:  # a bad token, an API that cannot be reached
        raise CommandError(str(exc)) from None
    return 0


__all__ = ["CommandError", "database", "dispatch", "storage"]

_COMMANDS: dict[tuple[str, str | None], Command] = {
    ("up", None): cmd_up,
    ("api", None): cmd_api,
    ("apply", None): cmd_apply,
    ("tools", "sync"): cmd_tools_sync,
    ("migrate", None): cmd_migrate,
    ("timer", None): cmd_timer,
    ("worker", None): cmd_worker,
    ("relay", None): cmd_relay,
    ("notifier", None): cmd_notifier,
    ("ingest", None): cmd_ingest,
    ("events", "tail"): cmd_events_tail,
    ("events", "replay"): cmd_events_replay,
    ("projections", "rebuild"): cmd_projections_rebuild,
    ("schedule", "preview"): cmd_schedule_preview,
    ("mcp", None): cmd_mcp,
    ("env", None): cmd_env,
}


async def dispatch(args: argparse.Namespace, settings: Settings) -> int:
    """Run the command the arguments name."""
    if args.command == "bench":
        return await dispatch_bench(args, settings)
    sub = getattr(args, f"{args.command}_command", None)
    return await _COMMANDS[(args.command, sub)](args, settings)
