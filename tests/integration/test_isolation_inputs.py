"""Issue 18, finding 10: a title search takes % and _ literally; Idempotency-Key is bounded."""

from __future__ import annotations

import httpx

from tests.workers import AUTH

TASK = {"title": "report", "schedule_kind": "cron", "schedule_expr": "0 0 1 1 *"}


async def test_a_search_for_wildcards_matches_only_titles_containing_them(
    client: httpx.AsyncClient,
) -> None:
    for title in ("report", "100% done", "snake_case"):
        created = await client.post("/tasks", json={**TASK, "title": title}, headers=AUTH)
        assert created.status_code == 201, created.text
    for query, titles in (("%", ["100% done"]), ("_", ["snake_case"]), ("or", ["report"])):
        found = await client.get("/tasks", params={"q": query}, headers=AUTH)
        assert found.status_code == 200, found.text
        assert [t["definition"]["title"] for t in found.json()["items"]] == titles


async def test_an_overlong_idempotency_key_is_refused_naming_the_header(
    client: httpx.AsyncClient,
) -> None:
    # The limit is 200 characters, as for the body's idempotency_key on POST /events.
    headers = {**AUTH, "Idempotency-Key": "k" * 201}
    refused = await client.post("/tasks", json=TASK, headers=headers)
    assert refused.status_code == 422, refused.text
    assert refused.json()["errors"][0]["field"] == "Idempotency-Key"
    accepted = await client.post(
        "/tasks", json=TASK, headers={**AUTH, "Idempotency-Key": "k" * 200}
    )
    assert accepted.status_code == 201, accepted.text
