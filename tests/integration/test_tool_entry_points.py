"""`ordinaut tools sync`: tools that installed packages declare (entry points ordinaut.tools)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import asyncpg
import pytest

TOOLS = """
TOOLS = [{"address": "fake.hello", "transport": "python",
          "callable": "fakepkg_tools.impl:hello", "output_schema": {"type": "object"}}]

def hello(name: str) -> dict:
    return {"hello": name}
"""


def install(site: Path, name: str, value: str, module: str | None = TOOLS) -> None:
    """A package on ``site`` with a dist-info declaring one entry point, as pip would leave."""
    if module is not None:
        (site / "fakepkg_tools").mkdir()
        (site / "fakepkg_tools" / "__init__.py").write_text("")
        (site / "fakepkg_tools" / "impl.py").write_text(module)
    info = site / f"{name}-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(f"[ordinaut.tools]\n{name} = {value}\n")


def sync(
    site: Path, database_url: str, *args: str, allow: str = "fakepkg_tools"
) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("ORDINAUT_")}
    environment.update(
        {
            "ORDINAUT_DATABASE_URL": database_url,
            "ORDINAUT_PYTHON_TOOLS_ALLOW": allow,
            "PYTHONPATH": os.pathsep.join([str(site), os.getcwd()]),
        }
    )
    return subprocess.run(
        [sys.executable, "-m", "services.cli.main", "tools", "sync", *args],
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.fixture
def site(tmp_path: Path) -> Path:
    return tmp_path


async def test_declared_tools_are_registered_once(
    site: Path, database_url: str, pool: asyncpg.Pool
) -> None:
    install(site, "fakepkg", "fakepkg_tools.impl:TOOLS")
    dry = sync(site, database_url, "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert "+ tool fake.hello: register" in dry.stdout
    assert await pool.fetchval("SELECT count(*) FROM events") == 0
    first = sync(site, database_url)
    assert first.returncode == 0, first.stderr
    definition = json.loads(await pool.fetchval("SELECT definition::text FROM tool"))
    assert definition["callable"] == "fakepkg_tools.impl:hello"
    again = sync(site, database_url)
    assert "= tool fake.hello: unchanged" in again.stdout
    assert await pool.fetchval("SELECT count(*) FROM events") == 1


async def test_the_allow_list_and_broken_packages_refuse_everything(
    site: Path, database_url: str, pool: asyncpg.Pool
) -> None:
    install(site, "fakepkg", "fakepkg_tools.impl:TOOLS")
    refused = sync(site, database_url, allow="")
    assert refused.returncode == 1
    assert "tools[0].callable: module 'fakepkg_tools.impl' is not allowed" in refused.stderr
    install(site, "brokenpkg", "no_such_module:TOOLS", module=None)
    broken = sync(site, database_url)
    assert broken.returncode == 2
    assert "entry point brokenpkg (no_such_module:TOOLS): ModuleNotFoundError" in broken.stderr
    assert "Traceback" not in broken.stderr
    assert await pool.fetchval("SELECT count(*) FROM events") == 0
