"""The shell allow-list bounds what an allowed program is started with (issue 18, finding 4):
no variable that changes how programs start (refused at creation, dropped at run time), and
the real path, symlinks followed, is what must be allowed."""

from __future__ import annotations

import dataclasses
import stat
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.workers import AUTH, FAST, api_client, create_task, run_now, run_to_end, running_workers

README = Path(__file__).resolve().parents[2] / "README.md"


def script(path: Path, body: str, shell: str = "/bin/sh") -> str:
    path.write_text(f"#!{shell}\n{body}\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return str(path)


@pytest.fixture
def jobs(tmp_path: Path) -> Path:
    directory = tmp_path / "jobs"
    directory.mkdir()
    return directory


@pytest.fixture
def allow(jobs: Path) -> tuple[str, ...]:
    return (f"{jobs}/*.sh", "env", "find")


@pytest.fixture
async def client(
    database_url: str, redis_url: str, allow: tuple[str, ...]
) -> AsyncIterator[httpx.AsyncClient]:
    async with api_client(database_url, redis_url, shell_allow=allow) as test_client:
        yield test_client


async def run_once(
    client: httpx.AsyncClient,
    database_url: str,
    redis_url: str,
    allow: tuple[str, ...],
    options: dict[str, Any],
    **params: Any,
) -> dict[str, Any]:
    step = {"id": "job", "uses": "shell.exec", "with": options}
    task = await create_task(client, [step], max_retries=0)
    if params:
        patched = await client.patch(
            f"/tasks/{task['id']}",
            json={"payload": {"pipeline": [step], "params": params}},
            headers=AUTH,
        )
        assert patched.status_code == 200, patched.text
    config = dataclasses.replace(FAST, shell_allow=allow)
    async with running_workers(database_url, redis_url, config=config):
        return await run_to_end(client, await run_now(client, task["id"]))


@pytest.mark.parametrize(
    "name", ["BASH_ENV", "LD_PRELOAD", "ENV", "PYTHONSTARTUP", "BASH_FUNC_echo%%", "IFS", "PATH"]
)
async def test_a_task_setting_a_variable_that_changes_how_programs_start_is_refused(
    client: httpx.AsyncClient, jobs: Path, name: str
) -> None:
    path = script(jobs / "job.sh", "echo hi", shell="/bin/bash")
    step = {
        "id": "job",
        "uses": "shell.exec",
        "with": {"argv": [path], "env": {"GREETING": "hi", name: "$(id >&2)"}},
    }
    body = {
        "title": "t",
        "schedule_kind": "cron",
        "schedule_expr": "0 0 1 1 *",
        "payload": {"pipeline": [step]},
    }
    for route in ("/tasks", "/tasks/dry_run"):
        response = await client.post(
            route, json=body if route == "/tasks" else {"task": body}, headers=AUTH
        )
        assert response.status_code == 422, response.text
        assert response.headers["content-type"].startswith("application/problem+json")
        assert f"payload.pipeline[0].with.env.{name}" in response.text


async def test_bash_env_from_a_template_is_dropped_so_it_runs_nothing(
    client: httpx.AsyncClient,
    database_url: str,
    redis_url: str,
    jobs: Path,
    allow: tuple[str, ...],
    tmp_path: Path,
) -> None:
    marker = tmp_path / "ran"
    path = script(jobs / "job.sh", "echo done", shell="/bin/bash")
    env = {"BASH_ENV": f"$(touch {marker})", "GREETING": "hi"}
    run = await run_once(
        client, database_url, redis_url, allow, {"argv": [path], "env": "${params.env}"}, env=env
    )
    assert run["status"] == "succeeded", run
    assert run["steps"][0]["output"]["stdout"] == "done\n"
    assert not marker.exists()


async def test_ld_preload_from_a_template_never_reaches_the_program_or_its_children(
    client: httpx.AsyncClient,
    database_url: str,
    redis_url: str,
    allow: tuple[str, ...],
    jobs: Path,
) -> None:
    env = {"LD_PRELOAD": "/nonexistent/evil.so", "GREETING": "hi"}
    # find -exec starts env as a child: an allowed program is trusted with its arguments,
    # but what it starts inherits the same clean environment.
    options = {
        "argv": ["find", str(jobs), "-maxdepth", "0", "-exec", "env", ";"],
        "env": "${params.env}",
    }
    run = await run_once(client, database_url, redis_url, allow, options, env=env)
    assert run["status"] == "succeeded", run
    output = run["steps"][0]["output"]
    assert output["stdout"] == "GREETING=hi\n"
    assert "evil.so" not in output["stderr"]


async def test_a_path_through_a_symlink_out_of_the_allowed_directory_is_refused(
    client: httpx.AsyncClient,
    database_url: str,
    redis_url: str,
    allow: tuple[str, ...],
    jobs: Path,
    tmp_path: Path,
) -> None:
    elsewhere = tmp_path / "elsewhere"
    (elsewhere / "inner").mkdir(parents=True)
    marker = tmp_path / "payload-ran"
    script(elsewhere / "payload.sh", f"touch {marker}")
    (jobs / "sub").symlink_to(elsewhere / "inner", target_is_directory=True)
    sneaky = f"{jobs}/sub/../payload.sh"  # the kernel reads sub/.. as elsewhere/

    run = await run_once(client, database_url, redis_url, allow, {"argv": [sneaky]})

    assert run["status"] == "dead", run
    error = run["steps"][0]["error"]
    assert f"resolves to '{elsewhere / 'payload.sh'}'" in error
    assert "not allowed" in error
    assert not marker.exists()


async def test_an_allowed_symlink_to_an_allowed_program_still_runs(
    client: httpx.AsyncClient,
    database_url: str,
    redis_url: str,
    allow: tuple[str, ...],
    jobs: Path,
) -> None:
    real = script(jobs / "real.sh", 'echo "as $0"')
    (jobs / "alias.sh").symlink_to(real)
    run = await run_once(client, database_url, redis_url, allow, {"argv": [f"{jobs}/alias.sh"]})
    assert run["status"] == "succeeded", run
    assert run["steps"][0]["output"]["stdout"] == f"as {real}\n"  # the real path ran


def test_the_readme_says_an_allowed_program_is_trusted_with_its_arguments() -> None:
    text = " ".join(README.read_text().split())
    assert "trusted with its arguments" in text
    assert "find -exec" in text
