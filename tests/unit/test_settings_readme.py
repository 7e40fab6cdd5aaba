"""The README's settings table against the settings themselves: every variable the settings read
is in the table and nothing else is, and each default the table states is the one the settings
use (services/runtime/settings.py writes each default once; the process configs start from it)."""

from __future__ import annotations

import io
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from services.ingest.consumer import IngestConfig
from services.notify.config import NotifierConfig
from services.relay.service import RelayConfig
from services.runtime.settings import DEFAULTS, Settings
from services.worker.service import WorkerConfig

README = Path(__file__).resolve().parents[2] / "README.md"
# | `ORDINAUT_A`, `ORDINAUT_B` | meaning | default |
_ROW = re.compile(r"^\| (?P<names>`ORDINAUT_[^|]+) \| .* \| (?P<default>[^|]*) \|$")
_NAME = re.compile(r"`(ORDINAUT_[A-Z0-9_]+)`")
# The default cell starts with its values in backticks, comma-separated (`127.0.0.1`, `8080`),
# or with words for a default that is not a value (embedded PostgreSQL in the data dir).
_LEADING_VALUES = re.compile(r"^`[^`]*`(?:, `[^`]*`)*")


@dataclass(frozen=True)
class Row:
    names: tuple[str, ...]
    default: str

    def values(self) -> list[str] | None:
        """The default values the cell states, one per variable; None when it states words."""
        leading = _LEADING_VALUES.match(self.default)
        if leading is None:
            return None
        values = re.findall(r"`([^`]*)`", leading.group(0))
        return ["" if value == '""' else value for value in values]


def _table() -> list[Row]:
    text = README.read_text()
    section = text[text.index("## Configuration") :]
    section = section[: section.index("\n## ", 1)]
    rows = []
    for line in section.splitlines():
        match = _ROW.match(line)
        if match:
            names = tuple(_NAME.findall(match["names"]))
            rows.append(Row(names, match["default"].strip()))
    return rows


class _Recording(dict[str, str]):
    """An environment that notes every variable asked for."""

    def __init__(self) -> None:
        super().__init__()
        self.asked: set[str] = set()

    def get(self, key: str, default: Any = None) -> Any:
        self.asked.add(key)
        return super().get(key, default)

    def __getitem__(self, key: str) -> str:
        self.asked.add(key)
        return super().__getitem__(key)

    def __contains__(self, key: object) -> bool:
        self.asked.add(str(key))
        return super().__contains__(key)


@pytest.fixture(autouse=True)
def _not_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    # ORDINAUT_LOG_FORMAT's default depends on stderr being a terminal: make it not one.
    monkeypatch.setattr("sys.stderr", io.StringIO())


def test_the_table_lists_every_variable_the_settings_read_and_no_other() -> None:
    environment = _Recording()
    Settings.from_env(environment)
    listed = [name for row in _table() for name in row.names]
    assert len(listed) == len(set(listed)), "a variable listed twice"
    assert set(listed) == environment.asked


def test_unset_variables_give_the_declared_defaults() -> None:
    assert Settings.from_env({}) == Settings() == DEFAULTS


@pytest.mark.parametrize("row", _table(), ids=lambda row: row.names[0])
def test_the_table_states_each_default_the_settings_use(row: Row) -> None:
    unset = Settings.from_env({})
    values = row.values()
    if values is None:
        # A default described in words (embedded servers, a generated key): nothing set.
        for name in row.names:
            assert Settings.from_env({name: ""}) == unset, name
        return
    assert len(values) == len(row.names), row
    for name, value in zip(row.names, values, strict=True):
        assert Settings.from_env({name: value}) == unset, f"{name}: README says {value!r}"


def test_the_process_configs_start_from_the_settings_defaults() -> None:
    worker, notifier, relay, ingest = (
        WorkerConfig(),
        NotifierConfig(),
        RelayConfig(),
        IngestConfig(),
    )
    assert (
        worker.concurrency,
        worker.lease_seconds,
        worker.poll_seconds,
        worker.grace_seconds,
    ) == (
        DEFAULTS.worker_concurrency,
        DEFAULTS.worker_lease_seconds,
        DEFAULTS.worker_poll_seconds,
        DEFAULTS.worker_grace_seconds,
    )
    assert (
        notifier.stream,
        notifier.max_attempts,
        notifier.timeout_seconds,
        notifier.reclaim_idle_seconds,
        notifier.outbound_allow,
    ) == (
        DEFAULTS.events_stream,
        DEFAULTS.webhook_max_attempts,
        DEFAULTS.webhook_timeout_seconds,
        DEFAULTS.notifier_reclaim_seconds,
        DEFAULTS.outbound_allow,
    )
    assert (relay.stream, relay.maxlen) == (DEFAULTS.events_stream, DEFAULTS.relay_maxlen)
    assert (ingest.batch, ingest.max_payload_bytes, ingest.max_deliveries) == (
        DEFAULTS.ingest_batch,
        DEFAULTS.ingest_max_payload_bytes,
        DEFAULTS.ingest_max_deliveries,
    )
