"""`ordinaut env`: the running service's server URLs as shell `export` lines."""

from __future__ import annotations

import argparse
import shlex

from services.cli.errors import CommandError
from services.runtime.runtime_file import read_runtime
from services.runtime.settings import Settings


async def cmd_env(args: argparse.Namespace, settings: Settings) -> int:
    """Print `export` lines naming the servers of the running service (for scripts: they
    carry the passwords), so `eval "$(ordinaut env)"` points redis-cli, psql and other
    commands at them."""
    running = read_runtime(settings.data_dir)
    database_url = settings.database_url or (running.database_url if running else None)
    redis_url = settings.redis_url or (running.redis_url if running else None)
    if not database_url or not redis_url:
        raise CommandError(
            f"no running service on {settings.data_dir.resolve()}: start `ordinaut up` there"
            " first (or set ORDINAUT_DATABASE_URL and ORDINAUT_REDIS_URL)"
        )
    print(f"export ORDINAUT_DATABASE_URL={shlex.quote(database_url)}")
    print(f"export ORDINAUT_REDIS_URL={shlex.quote(redis_url)}")
    print(f"export ORDINAUT_DATA_DIR={shlex.quote(str(settings.data_dir.resolve()))}")
    return 0
