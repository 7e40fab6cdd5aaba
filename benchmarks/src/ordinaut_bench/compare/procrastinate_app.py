"""The Procrastinate app `bench compare` runs: one no-op task, the database from the
environment (``ORDINAUT_BENCH_PROCRASTINATE_DSN``), Procrastinate's own psycopg pool."""

from __future__ import annotations

import os

import procrastinate

DSN_ENV = "ORDINAUT_BENCH_PROCRASTINATE_DSN"


def make_app(dsn: str) -> procrastinate.App:
    """An app on ``dsn`` (nothing connects until it is opened) with the ``noop`` task."""
    app = procrastinate.App(connector=procrastinate.PsycopgConnector(conninfo=dsn))

    @app.task(name="noop")  # type: ignore[untyped-decorator,unused-ignore]
    async def noop() -> None:
        return None

    return app


# What `procrastinate --app ordinaut_bench.compare.procrastinate_app.app worker` loads.
app = make_app(os.environ.get(DSN_ENV, ""))
