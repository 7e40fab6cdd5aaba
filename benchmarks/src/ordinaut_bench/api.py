"""API latency at a fixed request rate: `ordinaut up` in its own process, driven open-loop.

Requests go out on a schedule (request n of a route at start + n / rate) whether or not
earlier ones have been answered, and each latency runs from the request's scheduled instant.
A server that stalls therefore shows every request it kept waiting, instead of slowing the
load down and hiding them (coordinated omission). A rate the server cannot sustain shows as
latencies that grow for the whole run and an achieved rate below the one asked for.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import msgspec
import psutil
import redis.asyncio as redis

from ordinaut_bench.harness import Goal, collector_paused, ticking
from ordinaut_bench.http_client import ConnectionPool, HttpError, RequestBytes, Response
from ordinaut_bench.report import percentile, print_table

# Due once a year, so no task falls due while the timer runs beside the API.
TASK_BODY = {
    "title": "Bench standup",
    "schedule_kind": "cron",
    "schedule_expr": "30 8 1 1 *",
    "timezone": "Europe/Chisinau",
    "payload": {"params": {"team": "platform", "channel": "#standup"}},
}
WARMUP_TASKS = 256
READY_WITHIN_SECONDS = 60.0
REQUEST_TIMEOUT_SECONDS = 10.0
# Keep-alive connections per route; a request that finds them all busy waits for one.
CONNECTIONS = 32


@dataclass
class RouteResults:
    """What one route's requests came to."""

    name: str
    latencies_ms: list[float] = field(default_factory=list)
    # How late the load generator itself started each request: when this is high, the
    # generator (not the API) was short of CPU, and latencies overstate the API's.
    send_lags_ms: list[float] = field(default_factory=list)
    errors: int = 0
    sent: int = 0
    last_done: float = 0.0

    def row(self, started: float) -> dict[str, object]:
        done = len(self.latencies_ms)
        elapsed = self.last_done - started
        return {
            "route": self.name,
            "requests": self.sent,
            "errors": self.errors,
            "achieved_rps": done / elapsed if done and elapsed > 0 else 0.0,
            "p50_ms": percentile(self.latencies_ms, 50),
            "p99_ms": percentile(self.latencies_ms, 99),
            "max_ms": max(self.latencies_ms, default=float("nan")),
            "send_lag_p99_ms": percentile(self.send_lags_ms, 99),
        }


class _Created(msgspec.Struct):
    id: str


class _Api:
    """The two routes' connection pools and their requests, encoded once (see http_client)."""

    def __init__(self, port: int, token: str) -> None:
        host, auth = f"127.0.0.1:{port}", {"Authorization": f"Bearer {token}"}
        body = json.dumps(TASK_BODY, separators=(",", ":")).encode()
        self.creators = ConnectionPool("127.0.0.1", port, CONNECTIONS, REQUEST_TIMEOUT_SECONDS)
        self.readers = ConnectionPool("127.0.0.1", port, CONNECTIONS, REQUEST_TIMEOUT_SECONDS)
        self._create = RequestBytes(
            "POST", "/tasks", host, {**auth, "Content-Type": "application/json"}, body
        ).encode()
        self._read = RequestBytes("GET", "/tasks/", host, auth)

    def create(self) -> Awaitable[Response]:
        return self.creators.request(self._create)

    def read(self, task_id: str) -> Awaitable[Response]:
        return self.readers.request(self._read.encode(task_id))

    async def aclose(self) -> None:
        await asyncio.gather(self.creators.close(), self.readers.close())


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _start_api(
    database_url: str, redis_url: str, token: str, port: int, data_dir: Path, stream: str
) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ORDINAUT_")}
    env.update(
        ORDINAUT_DATABASE_URL=database_url,
        ORDINAUT_REDIS_URL=redis_url,
        ORDINAUT_ADMIN_TOKEN=token,
        ORDINAUT_LOG_FORMAT="json",
        # The scratch database's log must not reach the real events stream.
        ORDINAUT_EVENTS_STREAM=stream,
    )
    with (data_dir / "ordinaut-up.log").open("wb") as log:
        return subprocess.Popen(  # noqa: S603 - our own argv; only the port and temp dir vary
            [
                sys.executable,
                "-m",
                "services.cli.main",
                "up",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--data-dir",
                str(data_dir),
            ],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )


async def _wait_ready(process: subprocess.Popen[bytes], port: int, log: Path) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + READY_WITHIN_SECONDS
    probe = ConnectionPool("127.0.0.1", port, 1, timeout=2)
    request = RequestBytes("GET", "/health/ready", f"127.0.0.1:{port}").encode()
    try:
        while loop.time() < deadline:
            if process.poll() is not None:
                output = await asyncio.to_thread(log.read_text, errors="replace")
                raise RuntimeError(f"ordinaut up exited:\n{output}")
            try:
                if (await probe.request(request)).status == 200:
                    return
            except HttpError:
                pass
            await asyncio.sleep(0.1)
    finally:
        await probe.close()
    raise RuntimeError(f"ordinaut up was not ready within {READY_WITHIN_SECONDS:.0f} s")


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


async def _timed(
    results: RouteResults, request: Awaitable[Response], scheduled: float, expected: int
) -> Response | None:
    """Send, and record the latency from ``scheduled``; a wrong status or no answer is an error."""
    results.sent += 1
    results.send_lags_ms.append((time.perf_counter() - scheduled) * 1000)
    try:
        response: Response | None = await request
    except HttpError:
        response = None
    done = time.perf_counter()
    results.last_done = max(results.last_done, done)
    if response is None or response.status != expected:
        results.errors += 1
        return None
    results.latencies_ms.append((done - scheduled) * 1000)
    return response


async def _drive(
    start: float, rate: int, count: int, fire: Callable[[float], Coroutine[Any, Any, None]]
) -> list[asyncio.Task[None]]:
    """Start ``fire(scheduled)`` at start + n / rate for n < count, never waiting for answers."""
    tasks: list[asyncio.Task[None]] = []
    for n in range(count):
        scheduled = start + n / rate
        delay = scheduled - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(fire(scheduled)))
    return tasks


async def _warm_up(api: _Api, task_ids: list[str]) -> None:
    """Before measuring: open every connection, with enough requests at once that the API's
    database pool grows to its full size too (it starts with one connection), and take
    every first-use path."""

    async def create_and_read() -> None:
        created = await api.create()
        if created.status != 201:
            raise RuntimeError(f"POST /tasks answered {created.status}: {created.body!r}")
        task_ids.append(msgspec.json.decode(created.body, type=_Created).id)
        if (read := await api.read(task_ids[-1])).status != 200:
            raise RuntimeError(f"GET /tasks/{{id}} answered {read.status}: {read.body!r}")

    at_once = CONNECTIONS
    for _ in range(WARMUP_TASKS // at_once):
        await asyncio.gather(*(create_and_read() for _ in range(at_once)))


async def _load(
    api: _Api, task_ids: list[str], rate: int, seconds: int
) -> tuple[RouteResults, RouteResults, float]:
    create, read = RouteResults("POST /tasks"), RouteResults("GET /tasks/{id}")
    rng = random.Random(7)
    count = rate * seconds

    async def fire_create(scheduled: float) -> None:
        if (response := await _timed(create, api.create(), scheduled, 201)) is not None:
            task_ids.append(msgspec.json.decode(response.body, type=_Created).id)

    async def fire_read(scheduled: float) -> None:
        await _timed(read, api.read(rng.choice(task_ids)), scheduled, 200)

    # perf_counter, not the loop's clock: uvloop's counts whole milliseconds.
    start = time.perf_counter() + 0.05
    # The reads are offset by half an interval, so the two routes' requests interleave.
    drivers = await asyncio.gather(
        _drive(start, rate, count, fire_create),
        _drive(start + 0.5 / rate, rate, count, fire_read),
    )
    await asyncio.gather(*(task for tasks in drivers for task in tasks))
    return create, read, start


async def bench_api(
    database_url: str,
    redis_url: str,
    *,
    rates: Sequence[int] = (50, 200),
    seconds: int = 20,
    out: TextIO = sys.stdout,
) -> dict[str, Any]:
    """Run `ordinaut up` on ``database_url`` (a scratch database); at each rate in turn, send
    ``rate`` creates and ``rate`` reads a second for ``seconds``, and report latency per route
    and rate (the same server throughout, so the rates compare within one run)."""
    if not rates or min(rates) < 1 or seconds < 1:
        raise ValueError("rates and seconds must be positive")
    token, port = secrets.token_urlsafe(24), _free_port()
    base_url = f"http://127.0.0.1:{port}"
    figures: dict[str, Any] = {"seconds": float(seconds)}
    rows: list[dict[str, object]] = []
    with tempfile.TemporaryDirectory(prefix="ordinaut-bench-api-") as tmp:
        data_dir = Path(tmp)
        print(f"starting ordinaut up on {base_url} ...", file=out, flush=True)
        stream = f"ordinaut-bench-{secrets.token_hex(6)}:events"
        process = _start_api(database_url, redis_url, token, port, data_dir, stream)
        try:
            await _wait_ready(process, port, data_dir / "ordinaut-up.log")
            server = psutil.Process(process.pid)
            api = _Api(port, token)
            try:
                task_ids: list[str] = []
                await _warm_up(api, task_ids)
                for rate in rates:
                    at_rate = await _at_rate(api, server, task_ids, rate, seconds, out)
                    rows += at_rate.pop("rows")
                    figures |= at_rate
            finally:
                await api.aclose()
        finally:
            _stop(process)
            async with redis.Redis.from_url(redis_url) as client:
                await client.delete(stream)
    print_table(rows, out)
    low, high = min(rates), max(rates)
    figures["create_p99_ratio"] = (
        figures[f"create_p99_ms_at_{high}"] / figures[f"create_p99_ms_at_{low}"]
    )
    print(
        f"POST /tasks p99 at {high}/s is {figures['create_p99_ratio']:.2f}x its p99 at {low}/s",
        file=out,
    )
    return figures | {"table": rows}


async def _at_rate(
    api: _Api, server: psutil.Process, task_ids: list[str], rate: int, seconds: int, out: TextIO
) -> dict[str, Any]:
    """One rate's load: its rows (one per route) and figures suffixed ``_at_<rate>``."""
    print(f"sending {rate} creates/s and {rate} reads/s for {seconds} s ...", file=out, flush=True)
    server_before, own_before = server.cpu_times(), time.process_time()
    with collector_paused():
        async with ticking(f"api load at {rate}/s", seconds):
            create, read, started = await _load(api, task_ids, rate, seconds)
    server_after, own_after = server.cpu_times(), time.process_time()
    elapsed = max(create.last_done, read.last_done) - started
    server_cpu = sum(server_after[:2]) - sum(server_before[:2])
    figures: dict[str, Any] = {
        f"api_cpu_percent_at_{rate}": 100 * server_cpu / elapsed,
        f"load_generator_cpu_percent_at_{rate}": 100 * (own_after - own_before) / elapsed,
    }
    rows = [{"rate": rate, **create.row(started)}, {"rate": rate, **read.row(started)}]
    for prefix, row in (("create", rows[0]), ("read", rows[1])):
        for key in (
            "requests",
            "errors",
            "achieved_rps",
            "p50_ms",
            "p99_ms",
            "max_ms",
            "send_lag_p99_ms",
        ):
            value = row[key]
            assert isinstance(value, int | float)
            figures[f"{prefix}_{key}_at_{rate}"] = float(value)
    return figures | {"rows": rows}


def goals(rates: Sequence[int]) -> tuple[Goal, ...]:
    """Done-when 3 of issue 20: POST /tasks p99 at the highest rate, absolute and against
    the lowest rate's in the same run."""
    low, high = min(rates), max(rates)
    return (
        Goal(f"create_p99_ms_at_{high}", 20.0, False, f"POST /tasks p99 at {high}/s ≤ 20 ms"),
        Goal(
            "create_p99_ratio",
            2.0,
            False,
            f"POST /tasks p99 at {high}/s ≤ 2 times its p99 at {low}/s",
        ),
    )


# What holds POST /tasks p99 back where a goal is missed (updated when measured).
LIMITS = (
    "CPU for the one `ordinaut up` process, not a lock. This session took the process from 80%"
    " to ~70% of a core at 200 creates/s + 200 reads/s (quiet machine): uvloop and httptools"
    " (the loop and HTTP parser of uvicorn's standard set), a route's caller and backend"
    " resolved without an anyio task group per request (6-8% of py-spy's samples), and a create"
    " for a task due tomorrow costs six PostgreSQL round trips (BEGIN, lock-check-and-insert,"
    " task row, ownership row, the answer's read, COMMIT) instead of eight: the stream lock"
    " rides on the insert, and the timer's NOTIFY, which also held PostgreSQL's notify-queue"
    " lock through every create's commit, goes only with a run due within a minute. The load"
    " generator's own full collections had read as server latency (45 ms on every request in"
    " flight): it now pauses its collector while it measures, and times requests with"
    " perf_counter (uvloop's clock counts whole milliseconds). The server keeps CPython's"
    " collector thresholds (a young generation of 50,000 made each collection 15-21 ms). What is"
    " left of the tail is requests queueing behind a loop ~70% busy on 2 cores shared with"
    " PostgreSQL and the load generator. What would move it further: the answer built from what"
    " was written (one round trip less), the rate limiter's Redis script (9% of the samples),"
    " auth in one middleware."
)
