"""Headless Chromium for the dashboard's browser tests, driven by Playwright.

The browser is the system's Chromium (Debian's ``chromium``; ``.ci/run`` installs it), never one
that Playwright downloads. Without Playwright or a Chromium the tests are skipped, saying which
is missing.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

CHROMIUM_ENV = "ORDINAUT_CHROMIUM"
SCREENSHOTS_ENV = "ORDINAUT_SCREENSHOTS_DIR"
CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
LAUNCH_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
REPO_ROOT = Path(__file__).resolve().parents[2]


def find_chromium() -> str | None:
    """``$ORDINAUT_CHROMIUM``, else the first Chromium or Chrome on ``PATH``."""
    configured = os.environ.get(CHROMIUM_ENV)
    if configured:
        return configured if Path(configured).exists() else None
    for name in CANDIDATES:
        found = shutil.which(name)
        if found:
            return found
    return None


def screenshots_dir() -> Path:
    """``$ORDINAUT_SCREENSHOTS_DIR``, else ``screenshots/`` at the repository root."""
    folder = Path(os.environ.get(SCREENSHOTS_ENV) or REPO_ROOT / "screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture(scope="session")
async def browser() -> AsyncIterator[Any]:
    """One headless Chromium for the session (each test opens its own context)."""
    try:
        from playwright.async_api import async_playwright
    except ImportError:
        pytest.skip("browser tests need the playwright package: pip install -e '.[test]'")
    executable = find_chromium()
    if executable is None:
        configured = os.environ.get(CHROMIUM_ENV)
        pytest.skip(
            f"browser tests need Chromium: {CHROMIUM_ENV}={configured} does not exist"
            if configured
            else "browser tests need Chromium: apt-get install chromium (or set "
            f"{CHROMIUM_ENV} to a Chromium or Chrome executable)"
        )
    from playwright.async_api import expect

    expect.set_options(timeout=15_000)  # states the workers reach; a met condition returns at once
    # Playwright gives every launch a fresh temporary profile (user-data-dir).
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(
            executable_path=executable, headless=True, args=LAUNCH_ARGS
        )
        try:
            yield launched
        finally:
            await launched.close()
