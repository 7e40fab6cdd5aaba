"""The admin token: generated once, owner-only, reused; or taken from the environment."""

from __future__ import annotations

import stat
from pathlib import Path

from services.runtime.admin_token import load_admin_token, token_hash


def test_a_generated_token_is_kept_owner_only_and_reused(tmp_path: Path) -> None:
    first = load_admin_token(None, tmp_path / "data")
    assert first.path == tmp_path / "data" / "admin-token"
    assert stat.S_IMODE(first.path.stat().st_mode) == 0o600
    token = first.path.read_text().strip()
    assert len(token) >= 32
    assert first.sha256 == token_hash(token)
    assert load_admin_token(None, tmp_path / "data") == first


def test_a_configured_token_wins_and_writes_nothing(tmp_path: Path) -> None:
    loaded = load_admin_token("a-configured-admin-token", tmp_path)
    assert loaded.sha256 == token_hash("a-configured-admin-token")
    assert loaded.path is None
    assert list(tmp_path.iterdir()) == []
