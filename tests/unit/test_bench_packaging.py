"""The benchmarks are their own distribution (benchmarks/): the service's wheel holds none of
them, its `bench` extra brings them, and without them `ordinaut bench` says how to get them."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from email.parser import Parser
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_the_service_wheel_holds_no_benchmark_and_its_bench_extra_names_them(
    tmp_path: Path,
) -> None:
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", str(tmp_path), "."],
        cwd=ROOT,
        check=True,
        capture_output=True,
        timeout=110,
    )
    (wheel,) = tmp_path.glob("ordinaut-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        (metadata,) = [name for name in names if name.endswith(".dist-info/METADATA")]
        requires = Parser().parsestr(archive.read(metadata).decode()).get_all("Requires-Dist")
    assert any(name.startswith("services/cli/") for name in names)  # the wheel is the service
    assert not [name for name in names if name.startswith(("ordinaut_bench/", "services/bench/"))]
    bench_extra = [line for line in requires or [] if line.startswith("ordinaut-bench")]
    # The `bench` extra, and `test` (and `dev`, which includes it) so the benchmarks' tests run.
    assert {line.split("extra ==")[-1].strip(" \"'") for line in bench_extra} == {
        "bench",
        "test",
        "dev",
    }
    assert all(f"@ {(ROOT / 'benchmarks').as_uri()}" in line for line in bench_extra)


# Runs the CLI with the benchmarks' package made unimportable, as after `pip install ordinaut`.
_WITHOUT_BENCHMARKS = """
import sys
class Block:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] == "ordinaut_bench":
            raise ModuleNotFoundError(f"No module named {name!r}", name="ordinaut_bench")
sys.meta_path.insert(0, Block())
from services.cli.main import main
sys.exit(main(sys.argv[1:]))
"""


def _cli_without_benchmarks(*argv: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ORDINAUT_")}
    return subprocess.run(
        [sys.executable, "-c", _WITHOUT_BENCHMARKS, *argv],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize("argv", [("bench",), ("bench", "replay", "--events", "10")])
def test_without_the_benchmarks_bench_says_how_to_install_them(argv: tuple[str, ...]) -> None:
    result = _cli_without_benchmarks(*argv)
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    (line,) = result.stderr.strip().splitlines()
    assert "pip install 'ordinaut[bench]'" in line


def test_without_the_benchmarks_the_other_commands_are_unchanged() -> None:
    result = _cli_without_benchmarks("--help")
    assert result.returncode == 0, result.stderr
    assert "bench" in result.stdout
    assert "schedule" in result.stdout
