"""Dashboard page times with a realistic amount of data (`ordinaut bench ui`).

A scratch database gets an agent with ``tasks`` tasks and ``runs`` runs (through the event log,
see ui_seed), then a VACUUM ANALYZE, as autovacuum would soon do. The API, dashboard included,
then runs in this process (uvicorn in a thread), the benchmark signs in as the agent like a
browser would, and every page is loaded ``repeat`` times one after another; each time runs from
sending the request to the last byte of the page. The goal is every page under 200 ms: lists
are paginated and their queries indexed, so the figures should not grow with the data.
"""

from __future__ import annotations

import contextlib
import secrets
import socket
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any, TextIO
from urllib.parse import urljoin

import asyncpg
import httpx
import uvicorn

from ordinaut_bench.harness import Goal
from ordinaut_bench.report import percentile, print_table
from ordinaut_bench.ui_pages import count_rows, form_with, next_page
from ordinaut_bench.ui_seed import RARE_WORD, Seeded, seed
from services.api.app import ApiConfig, create_app
from services.runtime.admin_token import token_hash

GOAL_MS = 200.0
GOALS = (
    Goal(
        "slowest_p95_ms",
        GOAL_MS,
        at_least=False,
        text="every dashboard page p95 < 200 ms with 10,000 tasks and 100,000 runs",
    ),
)
AGENT_SCOPES = ["tasks:read", "tasks:write", "runs:read", "runs:approve", "events:read"]


class BenchError(Exception):
    """The dashboard did not answer as a signed-in browser expects."""


@contextlib.contextmanager
def serve_api(database_url: str, redis_url: str, admin_token: str) -> Iterator[str]:
    """The API under uvicorn on a free 127.0.0.1 port, in a thread; yields its base URL."""
    app = create_app(ApiConfig(database_url, redis_url, token_hash(admin_token)))
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    server = uvicorn.Server(uvicorn.Config(app, log_config=None, access_log=False, lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 60
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise BenchError("the API did not start")
            time.sleep(0.02)
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(30)
        sock.close()


async def create_agent(base_url: str, admin_token: str) -> tuple[str, str]:
    """A new agent and one of its tokens, through the API: (agent id, token)."""
    auth = {"Authorization": f"Bearer {admin_token}"}
    async with httpx.AsyncClient(base_url=base_url, headers=auth, timeout=30) as client:
        body = {"name": f"bench-{secrets.token_hex(4)}", "scopes": AGENT_SCOPES}
        agent = await client.post("/agents", json=body)
        if agent.status_code != 201:
            raise BenchError(f"creating the agent: {agent.status_code} {agent.text}")
        agent_id = str(agent.json()["id"])
        issued = await client.post(f"/agents/{agent_id}/tokens", json={"label": "bench"})
        if issued.status_code != 201:
            raise BenchError(f"issuing its token: {issued.status_code} {issued.text}")
        return agent_id, str(issued.json()["token"])


async def sign_in(client: httpx.AsyncClient, token: str) -> None:
    """Fill in and send the sign-in form (with its hidden fields); the session cookie stays."""
    page = await client.get("/ui/login")
    form = form_with(page.text, "token") if page.status_code == 200 else None
    if form is None:
        raise BenchError(f"GET /ui/login: {page.status_code}, no form with a token field")
    action = urljoin(str(page.url), form.action or str(page.url))
    answer = await client.post(action, data={**form.fields, "token": token})
    if answer.status_code != 200 or form_with(answer.text, "token") is not None:
        raise BenchError(f"signing in: {answer.status_code} at {answer.url}")


async def _deep_page(client: httpx.AsyncClient, start: str, pages: int) -> tuple[str, int]:
    """The URL ``pages`` next-page links after ``start`` (or as far as they go), and how far."""
    url, depth = start, 0
    while depth < pages:
        response = await client.get(url)
        link = next_page(response.text)
        if link is None:
            break
        url, depth = urljoin(str(response.url), link), depth + 1
    return url, depth


async def page_list(client: httpx.AsyncClient, seeded: Seeded, deep: int) -> list[tuple[str, str]]:
    """The pages to time: (name, URL path) for each."""
    deep_url, depth = await _deep_page(client, "/ui/tasks", deep)
    pages = [
        ("overview", "/ui"),
        ("tasks", "/ui/tasks"),
        ("tasks ?status=paused", "/ui/tasks?status=paused"),
        (f"tasks ?q={RARE_WORD}", f"/ui/tasks?q={RARE_WORD}"),
        (f"tasks, page {depth + 1}", deep_url),
        ("task", f"/ui/tasks/{seeded.task_id}"),
        ("runs", "/ui/runs"),
        ("runs ?status=dead", "/ui/runs?status=dead"),
        ("runs ?status=awaiting_approval", "/ui/runs?status=awaiting_approval"),
        ("runs ?task_id=", f"/ui/runs?task_id={seeded.task_id}"),
    ]
    pages += [
        (f"run ({status})", f"/ui/runs/{run_id}")
        for status, run_id in sorted(seeded.run_ids.items())
    ]
    pages.append(("events", "/ui/events"))
    return pages


async def time_pages(
    client: httpx.AsyncClient, pages: list[tuple[str, str]], repeat: int
) -> list[dict[str, object]]:
    """Load each page once to warm up, then ``repeat`` times; a row of figures per page."""
    rows: list[dict[str, object]] = []
    for name, path in pages:
        first = await client.get(path)
        if first.status_code != 200:
            raise BenchError(f"GET {path}: {first.status_code} {first.text[:200]}")
        times, errors = [], 0
        for _ in range(repeat):
            started = time.perf_counter()
            response = await client.get(path)
            await response.aread()
            times.append((time.perf_counter() - started) * 1000)
            errors += response.status_code != 200
        rows.append(
            {
                "page": name,
                "rows": count_rows(first.text),
                "kib": round(len(first.content) / 1024, 1),
                "errors": errors,
                "p50_ms": percentile(times, 50),
                "p95_ms": percentile(times, 95),
                "max_ms": max(times),
                "goal_ms": GOAL_MS,
                "ok": "yes" if max(times) < GOAL_MS and not errors else "NO",
            }
        )
    return rows


async def bench_ui(
    database_url: str,
    redis_url: str,
    *,
    tasks: int = 10_000,
    runs: int = 100_000,
    repeat: int = 20,
    deep: int = 50,
    out: TextIO = sys.stdout,
) -> dict[str, Any]:
    """Seed, sign in, time every page; print the table and return the figures."""
    admin_token = secrets.token_urlsafe(24)
    started = time.perf_counter()

    def progress(what: str, done: int, total: int) -> None:
        if done == total or done % 10_000 == 0:
            elapsed = time.perf_counter() - started
            print(f"  seeded {done:,}/{total:,} {what} ({elapsed:.0f} s)", file=out, flush=True)

    with serve_api(database_url, redis_url, admin_token) as base_url:
        agent_id, token = await create_agent(base_url, admin_token)
        print(f"seeding {tasks:,} tasks and {runs:,} runs ...", file=out, flush=True)
        async with asyncpg.create_pool(database_url, min_size=1, max_size=2) as pool:
            seeded = await seed(pool, agent_id, tasks=tasks, runs=runs, progress=progress)
            seconds = time.perf_counter() - started
            print(f"seeded in {seconds:.0f} s: runs {seeded.by_status}", file=out, flush=True)
            # The steady state autovacuum keeps: dead rows of finished runs' due work cleared,
            # visibility maps set (index-only scans), statistics current.
            print("VACUUM ANALYZE ...", file=out, flush=True)
            await pool.execute("VACUUM ANALYZE")
        async with httpx.AsyncClient(base_url=base_url, timeout=30, follow_redirects=True) as c:
            await sign_in(c, token)
            pages = await page_list(c, seeded, deep)
            rows = await time_pages(c, pages, repeat)
    print(
        f"\npage times over {repeat} loads each, one at a time (goal: every page under "
        f"{GOAL_MS:.0f} ms)",
        file=out,
    )
    print_table(rows, out)
    return {
        "tasks": tasks,
        "runs": runs,
        "repeat": repeat,
        "seed_seconds": round(seconds, 1),
        "runs_by_status": seeded.by_status,
        "slowest_p95_ms": max(row["p95_ms"] for row in rows if isinstance(row["p95_ms"], float)),
        "table": rows,
    }
