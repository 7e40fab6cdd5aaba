"""Key files in the data dir: written whole, once, owner-only; every process reads the same key."""

from __future__ import annotations

import stat
from pathlib import Path

from services.runtime.key_file import read_or_create


def test_a_key_is_created_owner_only_and_then_reused(tmp_path: Path) -> None:
    path = tmp_path / "data" / "webhook-key"
    assert read_or_create(path, lambda: "first-key") == "first-key"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert read_or_create(path, lambda: "second-key") == "first-key"
    assert [p.name for p in path.parent.iterdir()] == ["webhook-key"], "a temporary file is left"


def test_a_process_starting_while_another_writes_the_key_gets_the_same_whole_key(
    tmp_path: Path,
) -> None:
    path = tmp_path / "secret-key"
    seen: list[str] = []

    def slow_writer() -> str:
        # Another process starts while this one is still writing: it must not read an empty
        # or partial file, and whichever key lands first must be the one both use.
        seen.append(read_or_create(path, lambda: "key-of-the-other-process"))
        return "key-of-this-process"

    assert read_or_create(path, slow_writer) == seen[0] == "key-of-the-other-process"
    assert path.read_text() == "key-of-the-other-process\n"
