"""Where benchmark and fault-suite results are kept, and which machine produced them.

Every benchmark and every fault test writes one JSON file here; `BENCHMARKS.md` is generated from
them, so each figure carries the command and the machine that produced it.
"""

from __future__ import annotations

import json
import os
import platform
import shlex
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil

RESULTS_DIR_ENV = "ORDINAUT_BENCH_RESULTS"
DEFAULT_RESULTS_DIR = ".bench"


def results_dir() -> Path:
    """``$ORDINAUT_BENCH_RESULTS`` or ``./.bench`` (ignored by git: results are regenerated)."""
    return Path(os.environ.get(RESULTS_DIR_ENV) or DEFAULT_RESULTS_DIR)


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine() -> dict[str, Any]:
    """A short description of this machine, printed by benchmarks and stored with each result."""
    return {
        "cpu": _cpu_model(),
        "cores": os.cpu_count() or 0,
        "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
    }


def describe_machine() -> str:
    """One line, e.g. ``2 cores (AMD EPYC …), 24.0 GiB, Linux 6.1, Python 3.11.7``."""
    m = machine()
    return (
        f"{m['cores']} cores ({m['cpu']}), {m['memory_gib']} GiB, {m['os']}, Python {m['python']}"
    )


def write_result(kind: str, name: str, result: dict[str, Any], command: str | None = None) -> Path:
    """Store ``result`` as ``<results dir>/<kind>/<name>.json`` with command, machine and time."""
    folder = results_dir() / kind
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.json"
    record = {
        "name": name,
        "command": command or shlex.join(["ordinaut", *sys.argv[1:]]),
        "machine": machine(),
        "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
        **result,
    }
    path.write_text(json.dumps(record, indent=2, default=str) + "\n")
    return path
