"""Write src/ordinaut_client/_sync.py from _async.py (as httpcore does): one source of truth.

Run from anywhere: python clients/python/scripts/unasync.py [--check]
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "ordinaut_client"
_REPLACEMENTS = [
    (r"The async client: one method", "The sync client: one method"),
    (
        r"The sync client \(_sync\.py\) is generated from this file by scripts/unasync\.py: "
        r"edit this one\.",
        "Generated from _async.py by scripts/unasync.py: edit that one.",
    ),
    (r"\bAsyncOrdinaut\b", "Ordinaut"),
    (r"\bhttpx\.AsyncClient\b", "httpx.Client"),
    (r"\bAsyncIterator\b", "Iterator"),
    (r"\basync def\b", "def"),
    (r"\basync (for|with)\b", r"\1"),
    (r"\bawait ", ""),
    (r"\b__aenter__\b", "__enter__"),
    (r"\b__aexit__\b", "__exit__"),
    (r"\baclose\b", "close"),
    (r"\basyncio\.sleep\b", "time.sleep"),
    (r"^import asyncio$", "import time"),
    (r"with AsyncOrdinaut\(url, token\) as api: await ", "with Ordinaut(url, token) as api: "),
]


def unasync(source: str) -> str:
    for pattern, replacement in _REPLACEMENTS:
        source = re.sub(pattern, replacement, source, flags=re.MULTILINE)
    return source


def main() -> int:
    wanted = unasync((PACKAGE / "_async.py").read_text())
    target = PACKAGE / "_sync.py"
    if "--check" in sys.argv:
        return 0 if target.read_text() == wanted else 1
    target.write_text(wanted)
    return 0


if __name__ == "__main__":
    sys.exit(main())
