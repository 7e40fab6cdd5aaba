"""`ordinaut bench ui`'s machinery at a tiny size: it seeds, signs in and loads every page."""

from __future__ import annotations

import io

import asyncpg

from ordinaut_bench.ui import bench_ui
from ordinaut_bench.ui_pages import count_rows, form_with, next_page


async def test_the_dashboard_benchmark_seeds_signs_in_and_times_every_page(
    database_url: str, redis_url: str
) -> None:
    out = io.StringIO()
    result = await bench_ui(database_url, redis_url, tasks=20, runs=100, repeat=2, deep=2, out=out)

    async with asyncpg.create_pool(database_url, min_size=1, max_size=1) as pool:
        assert await pool.fetchval("SELECT count(*) FROM task") == 20
        assert await pool.fetchval("SELECT count(*) FROM runs") == 100
        owners = await pool.fetch("SELECT DISTINCT owner FROM runs")
        assert len(owners) == 1
    assert sum(result["runs_by_status"].values()) == 100
    pages = {row["page"]: row for row in result["table"]}
    assert {"overview", "tasks", "task", "runs", "events"} <= set(pages)
    assert all(row["errors"] == 0 for row in result["table"]), result["table"]
    assert pages["tasks"]["rows"] > 0
    assert pages["runs"]["rows"] > 0
    assert pages["events"]["rows"] > 0
    assert pages["runs ?status=dead"]["rows"] == result["runs_by_status"].get("dead", 0)
    text = out.getvalue()
    assert "p95_ms" in text
    assert result["slowest_p95_ms"] == max(row["p95_ms"] for row in result["table"])


def test_the_page_reader_finds_the_sign_in_form_and_next_links() -> None:
    page = """
      <form method="post" action="/ui/login"><input type="hidden" name="csrf" value="abc">
        <input name="token" type="password"><button type="submit">Sign in</button></form>
      <table><tr data-testid="task-row"></tr><tr data-testid="task-row"></tr></table>
      <a href="/ui/tasks?status=paused">Paused</a> <a href="/ui/tasks?after=x2">Next &rarr;</a>
    """
    form = form_with(page, "token")
    assert form is not None
    assert (form.action, form.method, form.fields) == (
        "/ui/login",
        "post",
        {"csrf": "abc", "token": ""},
    )
    assert next_page(page) == "/ui/tasks?after=x2"
    assert next_page('<a rel="next" href="?page=3">3</a>') == "?page=3"
    assert next_page("<a href='/ui/tasks'>Tasks</a>") is None
    assert count_rows(page) == 2
