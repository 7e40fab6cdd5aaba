"""Commands beside a running `ordinaut up`: they join its servers from any directory, touch none
of its files, and Ctrl-C of the service leaves no process; the embedded servers need passwords."""

from __future__ import annotations

import asyncio
import contextlib
import os
import pwd
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import asyncpg
import psutil
import pytest
import redis.asyncio as redis
from redis.exceptions import AuthenticationError, ResponseError

from services.runtime.embedded import without_password
from services.runtime.runtime_file import read_runtime
from tests.e2e.conftest import free_port


def ordinaut(*args: str, cwd: Path, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    """The CLI as a user runs it elsewhere: no ORDINAUT_* variable, another directory."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith("ORDINAUT_")}
    return subprocess.run(
        [sys.executable, "-m", "services.cli.main", *args],
        cwd=cwd,
        env=environment,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def server_pids(data_dir: Path) -> list[int]:
    """The embedded Valkey's and PostgreSQL's pids, from their own pid files."""
    valkey = int((data_dir / "valkey" / "valkey.pid").read_text())
    postgres = int((data_dir / "postgres" / "postmaster.pid").read_text().splitlines()[0])
    return [valkey, postgres]


def working_in(data_dir: Path) -> list[psutil.Process]:
    """Processes whose working directory is inside ``data_dir`` (the embedded servers chdir
    there; their command lines need not name it)."""
    found = []
    for proc in psutil.process_iter():
        with contextlib.suppress(psutil.Error):
            if proc.cwd().startswith(str(data_dir.resolve())):
                found.append(proc)
    return found


def alive(pids: list[int]) -> list[int]:
    return [
        pid
        for pid in pids
        if psutil.pid_exists(pid) and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    ]


def wait_gone(pids: list[int], within: float = 30) -> list[int]:
    """The pids still alive after waiting up to ``within`` seconds for them to end."""
    procs = []
    for pid in alive(pids):
        with contextlib.suppress(psutil.NoSuchProcess):
            procs.append(psutil.Process(pid))
    psutil.wait_procs(procs, timeout=within)
    return alive(pids)


@pytest.mark.timeout(240)
async def test_replay_and_rebuild_from_elsewhere_join_the_live_servers(
    tmp_path: Path, start_service: Any
) -> None:
    data_dir = tmp_path / "data"
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    service = start_service(data_dir)
    await service.wait_ready()
    async with service.client() as client:
        for n in range(5):
            response = await client.post("/events", json={"topic": "joined", "payload": {"n": n}})
            assert response.status_code == 202, response.text
    runtime = read_runtime(data_dir)
    assert runtime is not None
    assert runtime.pid == service.process.pid
    owner_files = [
        data_dir / "valkey" / name for name in ("valkey.pid", "valkey.sock", "valkey.conf")
    ]
    before = {path: path.stat().st_mtime_ns for path in owner_files}
    pids = server_pids(data_dir)

    replay = await asyncio.to_thread(
        ordinaut,
        "events",
        "replay",
        "--data-dir",
        str(data_dir),
        "--to-redis",
        "copy",
        cwd=elsewhere,
    )
    assert replay.returncode == 0, replay.stderr
    rebuild = await asyncio.to_thread(
        ordinaut, "projections", "rebuild", "--data-dir", str(data_dir), cwd=elsewhere
    )
    assert rebuild.returncode == 0, rebuild.stderr

    # Every event is on the live Valkey, whose files and processes are as they were.
    conn = await asyncpg.connect(runtime.database_url)
    try:
        positions = [r["position"] for r in await conn.fetch("SELECT position FROM events")]
    finally:
        await conn.close()
    assert len(positions) >= 5
    async with redis.Redis.from_url(runtime.redis_url) as live:
        copied = [int(fields[b"position"]) for _, fields in await live.xrange("copy")]
    assert sorted(copied) == sorted(positions)
    assert {path: path.stat().st_mtime_ns for path in owner_files} == before
    assert alive(pids) == pids
    assert list(elsewhere.iterdir()) == []  # no ./.ordinaut started beside the service
    second = await asyncio.to_thread(
        ordinaut, "up", "--data-dir", str(data_dir), "--port", str(free_port()), cwd=elsewhere
    )
    assert second.returncode == 2
    assert "already runs" in second.stderr

    service.process.send_signal(signal.SIGINT)  # Ctrl-C
    assert service.process.wait(60) == 0
    assert await asyncio.to_thread(wait_gone, pids) == []
    assert read_runtime(data_dir) is None
    assert not (data_dir / "runtime.json").exists()
    assert working_in(data_dir) == []

    # With no service running, a reading command starts the servers itself and stops them.
    alone = await asyncio.to_thread(
        ordinaut, "events", "replay", "--data-dir", str(data_dir), "--jsonl", "-", cwd=elsewhere
    )
    assert alone.returncode == 0, alone.stderr
    assert len(alone.stdout.splitlines()) == len(positions)
    assert await asyncio.to_thread(wait_gone, [p.pid for p in working_in(data_dir)]) == []


def test_a_command_on_an_empty_data_dir_is_one_line_and_creates_nothing(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    for args in (
        ("events", "tail"),
        ("events", "replay", "--jsonl", "-"),
        ("projections", "rebuild"),
        ("worker",),
    ):
        result = ordinaut(*args, "--data-dir", str(empty), cwd=tmp_path)
        assert result.returncode != 0
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr
        assert "no Ordinaut data" in result.stderr
        assert "Traceback" not in result.stderr
    result = ordinaut("env", "--data-dir", str(empty), cwd=tmp_path)  # nothing to point at
    assert result.returncode == 2
    assert "no running service" in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # neither empty/ nor ./.ordinaut


@pytest.mark.timeout(240)
async def test_the_embedded_servers_refuse_a_client_without_the_password(
    tmp_path: Path, start_service: Any
) -> None:
    data_dir = tmp_path / "data"
    service = start_service(data_dir)
    await service.wait_ready()
    runtime = read_runtime(data_dir)
    assert runtime is not None
    assert urlsplit(runtime.redis_url).password
    assert urlsplit(runtime.database_url).password
    # The banner shows where the servers are, never their passwords. It is printed just after
    # the API starts answering, so it may trail the first ready answer a little.
    for _ in range(100):
        if without_password(runtime.redis_url) in service.output:
            break
        await asyncio.sleep(0.1)
    assert without_password(runtime.redis_url) in service.output
    assert urlsplit(runtime.redis_url).password not in service.output

    async with redis.Redis.from_url(without_password(runtime.redis_url)) as stranger:
        with pytest.raises((AuthenticationError, ResponseError)):
            await stranger.xadd(
                "ordinaut:ingest", {"topic": "t", "payload": "{}", "source": "admin"}
            )
        with pytest.raises((AuthenticationError, ResponseError)):
            await stranger.xrange("ordinaut:events")
    with pytest.raises(
        (asyncpg.InvalidPasswordError, asyncpg.InvalidAuthorizationSpecificationError)
    ):
        await asyncpg.connect(without_password(runtime.database_url))

    private = [
        data_dir / n
        for n in ("valkey-password", "postgres-password", "runtime.json", "admin-token")
    ]
    valkey_files = [p for p in (data_dir / "valkey").rglob("*") if p.is_file()]
    assert valkey_files
    for path in [*private, *valkey_files]:
        assert path.stat().st_mode & 0o777 == 0o600, path
    for directory in (
        data_dir / "valkey",
        data_dir / "valkey" / "appendonlydir",
        data_dir / "postgres",
    ):
        assert directory.stat().st_mode & 0o777 == 0o700, directory
    if os.geteuid() == 0:  # another local user cannot read the password either
        nobody = pwd.getpwnam("nobody")
        peek = await asyncio.to_thread(
            subprocess.run,
            ["cat", str(data_dir / "valkey-password")],
            user=nobody.pw_uid,
            capture_output=True,
            check=False,
        )
        assert peek.returncode != 0
        assert peek.stdout == b""
    assert service.stop() == 0
