"""`ordinaut up` on embedded servers: stop, start again, nothing lost and nothing left running."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import processes_using


@pytest.mark.timeout(240)
async def test_restart_keeps_every_event_and_leaves_no_server_behind(
    tmp_path: Path, start_service: Any
) -> None:
    data_dir = tmp_path / "data"
    first = start_service(data_dir)
    await first.wait_ready()
    published = []
    async with first.client() as client:
        for n in range(5):
            response = await client.post("/events", json={"topic": "durable", "payload": {"n": n}})
            assert response.status_code == 202, response.text
            published.append(response.json()["id"])
    assert first.stop() == 0
    assert "Ordinaut is up." in first.output
    assert processes_using(data_dir) == []

    second = start_service(data_dir)
    await second.wait_ready()
    async with second.client() as client:
        page = (await client.get("/events")).json()
    assert [item["data"]["event_id"] for item in page["items"]] == published
    assert second.stop() == 0
    assert processes_using(data_dir) == []
