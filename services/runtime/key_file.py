"""Key files in the data dir (admin token, webhook key, secret key): created once, shared."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable
from pathlib import Path


def read_or_create(path: Path, new_text: Callable[[], str]) -> str:
    """The text of ``path`` (stripped), writing ``new_text()`` there (mode 0600) if absent.

    Processes sharing a data dir start at once and must all end up with the same key. The
    file is written whole under a temporary name and then linked into place: a link never
    replaces an existing file, so the first process to link wins and the others read its key,
    and no process can read a created-but-not-yet-written (empty) key file.
    """
    with contextlib.suppress(FileNotFoundError):
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")  # mode 0600
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(new_text() + "\n")
        with contextlib.suppress(FileExistsError):
            os.link(temporary, path)
    finally:
        os.unlink(temporary)
    return path.read_text().strip()
