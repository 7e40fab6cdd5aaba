"""Load, apply and report one tasks file: the step shared by `apply`, `--watch` and `up`."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import asyncpg

from projections.registry import inline_projections
from services.declarative.apply import ApplyOptions, apply_file
from services.declarative.loader import FileInvalid, LoadedFile, load_task_file
from services.declarative.report import describe
from services.store.errors import StoreError

Say = Callable[[str], None]


class FileApplier:
    """Applies files to the store behind ``pool``; ``out`` gets reports, ``err`` problems."""

    def __init__(self, pool: asyncpg.Pool, options: ApplyOptions, out: Say, err: Say) -> None:
        self.pool, self.options, self.out, self.err = pool, options, out, err
        self.projections = inline_projections()

    async def apply_path(self, path: Path) -> bool:
        """Apply ``path``; False (with every problem reported, nothing written) if it failed."""
        try:
            # in a thread: a large file takes seconds of pure-Python YAML, which must not stop
            # the event loop that `ordinaut up` runs the API, timer and workers on
            loaded = await asyncio.to_thread(load_task_file, path)
        except FileInvalid as exc:
            return self._invalid(exc)
        return await self.apply_loaded(loaded)

    async def apply_loaded(self, loaded: LoadedFile) -> bool:
        """Apply an already read file (or a file-shaped set of tools); False if it failed."""
        try:
            async with self.pool.acquire() as conn:
                report = await apply_file(conn, loaded, self.options, self.projections)
        except FileInvalid as exc:
            return self._invalid(exc)
        except (StoreError, asyncpg.PostgresError, asyncpg.InterfaceError, OSError) as exc:
            # A concurrent change to one of its tasks, or the database away: reported, and the
            # next save (or run) tries again; a watcher inside `up` must not take it down.
            self.err(f"{loaded.name}: nothing was applied: {exc}")
            return False
        for line in describe(report):
            self.out(line)
        return True

    def _invalid(self, exc: FileInvalid) -> bool:
        for line in exc.lines():
            self.err(line)
        self.err(f"{exc.name}: nothing was applied")
        return False
