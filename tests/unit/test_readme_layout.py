"""The README's "Layout" section stays true to the tree: every folder it names exists, and it
names every package under services/ (the layers contract in pyproject.toml places each one)."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _layout() -> str:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("\n## Layout\n", 1)[1]
    return section.split("\n## ", 1)[0]


def _named_folders() -> list[str]:
    return re.findall(r"`([\w./-]+/)`", _layout())


def _service_packages() -> list[str]:
    return sorted(
        p.parent.name for p in (ROOT / "services").glob("*/__init__.py") if p.parent.is_dir()
    )


def test_every_folder_the_layout_names_exists() -> None:
    named = _named_folders()
    assert len(named) > 10
    missing = [folder for folder in named if not (ROOT / folder).is_dir()]
    assert missing == []


def test_the_layout_names_every_top_level_package_and_every_service_package() -> None:
    named = set(_named_folders())
    top_level = sorted(p.parent.name for p in ROOT.glob("*/__init__.py"))
    assert {"domain", "projections", "services"} <= set(top_level)
    unnamed = [f"{name}/" for name in top_level if name != "services" and f"{name}/" not in named]
    unnamed += [f"services/{name}/" for name in _service_packages()]
    assert [folder for folder in unnamed if folder not in named] == []


def test_every_service_package_is_in_a_layer_of_the_contract() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    (inside,) = [c for c in config["contracts"] if c.get("containers") == ["services"]]
    names = (name.strip() for layer in inside["layers"] for name in re.split(r"[:|]", layer))
    placed = {name.strip("()") for name in names}  # "(x)": an optional layer
    assert [name for name in _service_packages() if name not in placed] == []
