"""PostgreSQL's own ceiling for the append benchmark: pgbench running one-row insert transactions
in a scratch database on the same server, measured right next to the store's appends so the
two figures share the machine's load."""

from __future__ import annotations

import asyncio
import json
import math
import re
import shutil
import tempfile
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import asyncpg

from services.runtime.embedded import with_database

# About the size of an appended event (ordinaut_bench.append._payload), so both write as much.
_ROW = json.dumps(
    {
        "id": "5f0c1d2e3b4a59687766554433221100",
        "amount_cents": 123456,
        "currency": "EUR",
        "customer": {"id": "cus_0123456789ab", "tier": "pro"},
        "tags": ["urgent", "eu"],
        "note": "benchmark event for the append path",
    }
)
# One autocommitted INSERT is one transaction: the cheapest durable write a client can make.
_INSERT = "INSERT INTO bench_rows (stream, data) VALUES ('bench-' || :n, '{row}');"
SCRIPT = "\\set n random(0, 99)\n" + _INSERT.format(row=_ROW) + "\n"
# The statements one single-event command of the store sends (services/store/events.py and
# the ownership projection), each a round trip, run by pgbench in the store's own database:
# what this transaction shape costs the server with a client that costs nothing, so the
# bench tells the shape's share of the gap to SCRIPT from the Python client's.
_STORE_INSERT = (
    "INSERT INTO events (stream, version, type, data, meta) VALUES ('bench-' || :n, :v + 1,"
    " 'pgbench.row', '{row}', '{{\"actor\": \"pgbench\"}}');"
)
STORE_SCRIPT = "\n".join(
    (
        "\\set n random(0, 99)",
        "BEGIN;",
        "SELECT version AS v FROM ordinaut_lock_streams(ARRAY['bench-' || :n]) \\gset",
        _STORE_INSERT.format(row=_ROW),
        "INSERT INTO event_owner (position, owner) VALUES"
        " (currval(pg_get_serial_sequence('events', 'position')), 'pgbench')"
        " ON CONFLICT DO NOTHING;",
        "COMMIT;",
        "",
    )
)
_TPS = re.compile(r"^tps = ([0-9.]+) \(without initial connection time\)", re.MULTILINE)


def pgbench_path() -> str | None:
    """The pgbench executable, or None when it is not installed."""
    return shutil.which("pgbench") or (
        "/usr/bin/pgbench" if Path("/usr/bin/pgbench").exists() else None
    )


@asynccontextmanager
async def pgbench_database(database_url: str) -> AsyncIterator[str]:
    """A scratch database beside ``database_url``'s (same server) with the table pgbench
    inserts into; dropped afterwards."""
    name = f"ordinaut_pgbench_{uuid.uuid4().hex[:10]}"
    admin = await asyncpg.connect(with_database(database_url, "postgres"))
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        url = with_database(database_url, name)
        conn = await asyncpg.connect(url)
        try:
            await conn.execute(
                "CREATE TABLE bench_rows (id bigserial PRIMARY KEY, stream text NOT NULL,"
                " data jsonb NOT NULL, recorded_at timestamptz NOT NULL DEFAULT now())"
            )
        finally:
            await conn.close()
        yield url
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


async def run_pgbench(url: str, clients: int, seconds: int, script: str = SCRIPT) -> float:
    """Transactions of ``script`` (default: one-row inserts) per second with ``clients``
    connections (``-j 2``); NaN when pgbench is missing. A failing pgbench raises
    RuntimeError with its output."""
    executable = pgbench_path()
    if executable is None:
        return math.nan
    with tempfile.NamedTemporaryFile("w", suffix=".sql") as file:
        file.write(script)
        file.flush()
        process = await asyncio.create_subprocess_exec(
            executable,
            "-n",
            "-f",
            file.name,
            "-c",
            str(clients),
            "-j",
            str(min(2, clients)),
            "-T",
            str(seconds),
            url,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        output, _ = await process.communicate()
    text = output.decode(errors="replace")
    match = _TPS.search(text)
    if process.returncode != 0 or match is None:
        raise RuntimeError(f"pgbench failed (exit {process.returncode}): {text[-500:]}")
    return float(match[1])
