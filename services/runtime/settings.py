"""Every setting Ordinaut reads from the environment, validated in one place."""

from __future__ import annotations

import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from domain.errors import RuleViolation
from domain.limits import SETTINGS as WORK_LIMIT_SETTINGS
from domain.limits import WorkLimits
from domain.outbound import DEFAULT_ALLOW, Network, OutboundRuleError, parse_allow_list
from domain.rate_limits import (
    AUTH_FAILURES,
    ROUTE_GROUPS,
    RateLimit,
    RateLimits,
    parse_rate_limit,
)
from domain.shell import parse_allow
from services.secrets.box import SecretKeyError, parse_key

_MODULE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")


class SettingsError(ValueError):
    """A setting is invalid; the message is one line naming the variable."""


@dataclass(frozen=True)
class Settings:
    """Process settings: each field's default is the one below, written nowhere else (the process
    configs start from DEFAULTS; the README's table is checked against it by a test).

    database_url: ORDINAUT_DATABASE_URL, a postgresql:// URL; unset = embedded PostgreSQL.
    redis_url: ORDINAUT_REDIS_URL, a redis:// URL; unset = embedded Valkey.
    data_dir: ORDINAUT_DATA_DIR, where embedded servers (and their passwords), the admin token
        and a running service's runtime.json live.
    admin_token: ORDINAUT_ADMIN_TOKEN; unset = a random one kept in <data_dir>/admin-token.
    log_format: ORDINAUT_LOG_FORMAT, json | console (console when stderr is a terminal).
    log_level: ORDINAUT_LOG_LEVEL, debug | info | warning | error.
    host, port: ORDINAUT_HOST / ORDINAUT_PORT, where the API listens.
    metrics_host, metrics_port: ORDINAUT_METRICS_HOST / ORDINAUT_METRICS_PORT, where this
        process serves /metrics and /health (port 0 = not served).
    worker_concurrency: ORDINAUT_WORKER_CONCURRENCY, runs one worker executes at once.
    worker_lease_seconds: ORDINAUT_WORKER_LEASE_SECONDS, how long a lease lasts between
        heartbeats; a crashed worker's runs restart after at most this long.
    worker_poll_seconds: ORDINAUT_WORKER_POLL_SECONDS, the longest ready work waits when no
        wake-up arrives through Redis.
    timer_lead_seconds: ORDINAUT_TIMER_LEAD_SECONDS, how far ahead of an occurrence the timer
        fires it at most (at least half as far); its run still waits for the due instant, so a
        worker starts it then instead of after the firing (0 = fire at the due instant).
    events_stream: ORDINAUT_EVENTS_STREAM, the Redis stream the relay fills and the notifier
        reads.
    relay_maxlen: ORDINAUT_RELAY_MAXLEN, about how many entries the events stream keeps
        (approximate trimming, MAXLEN ~); 0 = no length limit.
    relay_max_age_seconds: ORDINAUT_RELAY_MAX_AGE_SECONDS, drop stream entries of events
        older than this (approximate, MINID ~); 0 = no age limit.
    webhook_key: ORDINAUT_WEBHOOK_KEY, what agents' webhook secrets derive from (>= 16
        characters); unset = a random one kept in <data_dir>/webhook-key.
    webhook_max_attempts: ORDINAUT_WEBHOOK_MAX_ATTEMPTS, tries per notification before it
        is recorded as failed.
    webhook_timeout_seconds: ORDINAUT_WEBHOOK_TIMEOUT_SECONDS, how long one try may take.
    notifier_reclaim_seconds: ORDINAUT_NOTIFIER_RECLAIM_SECONDS, how long an entry a notifier
        read stays unacknowledged before another notifier takes it over.
    worker_grace_seconds: ORDINAUT_WORKER_GRACE_SECONDS, how long a stopping worker lets its
        runs go on before releasing them to other workers.
    rate_limits: ORDINAUT_RATE_LIMIT_COMMANDS / _READS / _EVENTS, each agent's API limit per
        route group as "N/s burst B" (or /min, /hour), or "off" (defaults in
        domain/rate_limits.py).
    auth_failure_limit: ORDINAUT_AUTH_FAILURE_LIMIT, failed authentications (invalid bearer
        tokens, failed /ui/login) each client address may make, per API process, as
        "N/min burst B" or "off"; over it they get 429.
    secret_key: ORDINAUT_SECRET_KEY, 32 bytes in base64url that encrypt stored secrets; unset =
        one generated once into <data_dir>/secret-key (every process must use the same key).
    outbound_allow: ORDINAUT_OUTBOUND_ALLOW, comma-separated networks that http tools may
        reach although they are not public (default loopback only, domain/outbound.py; ""
        refuses loopback too).
    shell_allow: ORDINAUT_SHELL_ALLOW, comma-separated programs `shell.exec` may run: absolute
        paths or path globs (`/opt/jobs/*.sh`), or program names looked up on PATH; empty
        (the default) refuses every program. Read by the API (at task creation) and workers.
    python_allow: ORDINAUT_PYTHON_TOOLS_ALLOW, comma-separated module prefixes python tools
        may be registered from and run (`mycompany.tools` allows `mycompany.tools.reports`);
        empty (the default) refuses every python tool.
    ingest_batch: ORDINAUT_INGEST_BATCH, entries of `ordinaut:ingest` read and recorded in one
        transaction.
    ingest_max_payload_bytes: ORDINAUT_INGEST_MAX_PAYLOAD_BYTES, larger payloads are
        dead-lettered.
    ingest_max_deliveries: ORDINAUT_INGEST_MAX_DELIVERIES, an entry delivered more often than
        this without being acknowledged is dead-lettered.
    mcp_allowed_hosts: ORDINAUT_MCP_ALLOWED_HOSTS, comma-separated Host headers /mcp accepts
        besides loopback ones and ORDINAUT_HOST (e.g. "ordinaut.internal:*"); DNS-rebinding
        protection refuses the others with 421.
    work_limits: what one run or dry run may do (defaults in domain/limits.py), read by the
        API (task creation, dry runs) and workers: ORDINAUT_FOREACH_MAX_ITEMS,
        ORDINAUT_RUN_MAX_ITERATIONS, ORDINAUT_FOREACH_MAX_DEPTH, ORDINAUT_STEP_INPUT_MAX_BYTES,
        ORDINAUT_RUN_MAX_RENDERED_BYTES.
    """

    database_url: str | None = None
    redis_url: str | None = None
    data_dir: Path = Path(".ordinaut")
    admin_token: str | None = None
    log_format: str = "json"
    log_level: str = "info"
    host: str = "127.0.0.1"
    port: int = 8080
    metrics_host: str = "127.0.0.1"
    metrics_port: int = 0
    worker_concurrency: int = 16
    worker_lease_seconds: float = 30.0
    worker_poll_seconds: float = 1.0
    timer_lead_seconds: float = 0.25
    events_stream: str = "ordinaut:events"
    relay_maxlen: int = 1_000_000
    relay_max_age_seconds: float = 0.0
    webhook_key: str | None = None
    webhook_max_attempts: int = 8
    webhook_timeout_seconds: float = 10.0
    notifier_reclaim_seconds: float = 60.0
    worker_grace_seconds: float = 20.0
    rate_limits: RateLimits = field(default_factory=RateLimits)
    auth_failure_limit: RateLimit | None = AUTH_FAILURES
    outbound_allow: tuple[Network, ...] = parse_allow_list(DEFAULT_ALLOW)
    secret_key: str | None = None
    shell_allow: tuple[str, ...] = ()
    python_allow: tuple[str, ...] = ()
    ingest_batch: int = 1000
    ingest_max_payload_bytes: int = 256 * 1024
    ingest_max_deliveries: int = 5
    mcp_allowed_hosts: tuple[str, ...] = ()
    work_limits: WorkLimits = field(default_factory=WorkLimits)

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Settings:
        """Read and validate ORDINAUT_* variables; raises SettingsError on the first bad one.
        An unset variable keeps the field's default above, the only place it is written (the
        README's table is checked against it by a test)."""
        d = cls()
        default_format = "console" if sys.stderr.isatty() else d.log_format
        settings = cls(
            database_url=env.get("ORDINAUT_DATABASE_URL") or d.database_url,
            redis_url=env.get("ORDINAUT_REDIS_URL") or d.redis_url,
            data_dir=Path(env.get("ORDINAUT_DATA_DIR") or d.data_dir),
            admin_token=env.get("ORDINAUT_ADMIN_TOKEN") or d.admin_token,
            log_format=env.get("ORDINAUT_LOG_FORMAT", default_format).lower(),
            log_level=env.get("ORDINAUT_LOG_LEVEL", d.log_level).lower(),
            host=env.get("ORDINAUT_HOST", d.host),
            port=_port(env.get("ORDINAUT_PORT", str(d.port)), "ORDINAUT_PORT"),
            metrics_host=env.get("ORDINAUT_METRICS_HOST", d.metrics_host),
            metrics_port=_port(
                env.get("ORDINAUT_METRICS_PORT", str(d.metrics_port)), "ORDINAUT_METRICS_PORT"
            ),
            worker_concurrency=int(
                _number(env, "ORDINAUT_WORKER_CONCURRENCY", d.worker_concurrency, 1, 10_000)
            ),
            worker_lease_seconds=_number(
                env, "ORDINAUT_WORKER_LEASE_SECONDS", d.worker_lease_seconds, 1, 3600
            ),
            worker_poll_seconds=_number(
                env, "ORDINAUT_WORKER_POLL_SECONDS", d.worker_poll_seconds, 0.05, 60
            ),
            timer_lead_seconds=_number(
                env, "ORDINAUT_TIMER_LEAD_SECONDS", d.timer_lead_seconds, 0, 10
            ),
            events_stream=env.get("ORDINAUT_EVENTS_STREAM") or d.events_stream,
            relay_maxlen=int(_number(env, "ORDINAUT_RELAY_MAXLEN", d.relay_maxlen, 0, 10**10)),
            relay_max_age_seconds=_number(
                env, "ORDINAUT_RELAY_MAX_AGE_SECONDS", d.relay_max_age_seconds, 0, 10**9
            ),
            webhook_key=env.get("ORDINAUT_WEBHOOK_KEY") or d.webhook_key,
            webhook_max_attempts=int(
                _number(env, "ORDINAUT_WEBHOOK_MAX_ATTEMPTS", d.webhook_max_attempts, 1, 100)
            ),
            webhook_timeout_seconds=_number(
                env, "ORDINAUT_WEBHOOK_TIMEOUT_SECONDS", d.webhook_timeout_seconds, 0.1, 300
            ),
            notifier_reclaim_seconds=_number(
                env, "ORDINAUT_NOTIFIER_RECLAIM_SECONDS", d.notifier_reclaim_seconds, 1, 86400
            ),
            worker_grace_seconds=_number(
                env, "ORDINAUT_WORKER_GRACE_SECONDS", d.worker_grace_seconds, 0, 3600
            ),
            rate_limits=_rate_limits(env, d.rate_limits),
            auth_failure_limit=_limit(env, "ORDINAUT_AUTH_FAILURE_LIMIT", d.auth_failure_limit),
            outbound_allow=_networks(env, "ORDINAUT_OUTBOUND_ALLOW", d.outbound_allow),
            secret_key=env.get("ORDINAUT_SECRET_KEY") or d.secret_key,
            shell_allow=_programs(env, "ORDINAUT_SHELL_ALLOW", d.shell_allow),
            python_allow=_modules(env, "ORDINAUT_PYTHON_TOOLS_ALLOW", d.python_allow),
            ingest_batch=int(_number(env, "ORDINAUT_INGEST_BATCH", d.ingest_batch, 1, 10_000)),
            ingest_max_payload_bytes=int(
                _number(
                    env,
                    "ORDINAUT_INGEST_MAX_PAYLOAD_BYTES",
                    d.ingest_max_payload_bytes,
                    1,
                    16 * 1024 * 1024,
                )
            ),
            ingest_max_deliveries=int(
                _number(env, "ORDINAUT_INGEST_MAX_DELIVERIES", d.ingest_max_deliveries, 1, 1000)
            ),
            mcp_allowed_hosts=_hosts(env, "ORDINAUT_MCP_ALLOWED_HOSTS", d.mcp_allowed_hosts),
            work_limits=_work_limits(env, d.work_limits),
        )
        settings.validate()
        return settings

    def with_overrides(self, **changes: Any) -> Settings:
        """A copy with command-line overrides applied (None means keep), validated."""
        updated = replace(self, **{k: v for k, v in changes.items() if v is not None})
        updated.validate()
        return updated

    def validate(self) -> None:
        """Raise SettingsError naming the first invalid setting."""
        _check_url(self.database_url, ("postgres", "postgresql"), "ORDINAUT_DATABASE_URL")
        _check_url(self.redis_url, ("redis", "rediss", "unix", "valkey"), "ORDINAUT_REDIS_URL")
        if self.log_format not in ("json", "console"):
            raise SettingsError(
                f"ORDINAUT_LOG_FORMAT must be json or console, not {self.log_format!r}"
            )
        if self.log_level not in ("debug", "info", "warning", "error"):
            raise SettingsError(
                f"ORDINAUT_LOG_LEVEL must be debug, info, warning or error, not {self.log_level!r}"
            )
        if self.secret_key is not None:
            try:
                parse_key(self.secret_key)
            except SecretKeyError as exc:
                raise SettingsError(f"ORDINAUT_SECRET_KEY {exc}") from None
        if self.admin_token is not None and len(self.admin_token) < 16:
            raise SettingsError("ORDINAUT_ADMIN_TOKEN must be at least 16 characters long")
        if self.webhook_key is not None and len(self.webhook_key) < 16:
            raise SettingsError("ORDINAUT_WEBHOOK_KEY must be at least 16 characters long")
        if not 1 <= self.port <= 65535:
            raise SettingsError(f"ORDINAUT_PORT must be between 1 and 65535, not {self.port}")
        if not 0 <= self.metrics_port <= 65535:
            raise SettingsError(
                f"ORDINAUT_METRICS_PORT must be between 0 and 65535, not {self.metrics_port}"
            )
        if self.data_dir.exists() and not self.data_dir.is_dir():
            raise SettingsError(f"ORDINAUT_DATA_DIR {str(self.data_dir)!r} is not a directory")


# The defaults, for the process configs (WorkerConfig, NotifierConfig, ...) to start from, so each
# default is written once, in Settings.
DEFAULTS = Settings()


def _number(env: Mapping[str, str], name: str, default: float, low: float, high: float) -> float:
    raw = env.get(name)
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise SettingsError(f"{name} must be a number, not {raw!r}") from None
    if not low <= value <= high:
        raise SettingsError(f"{name} must be between {low:g} and {high:g}, not {raw}")
    return value


def _work_limits(env: Mapping[str, str], defaults: WorkLimits) -> WorkLimits:
    values = {
        name: int(_number(env, variable, getattr(defaults, name), low, high))
        for name, (variable, low, high) in WORK_LIMIT_SETTINGS.items()
    }
    return WorkLimits(**values)


def _rate_limits(env: Mapping[str, str], defaults: RateLimits) -> RateLimits:
    limits = {
        group: _limit(env, f"ORDINAUT_RATE_LIMIT_{group.upper()}", defaults.for_group(group))
        for group in ROUTE_GROUPS
    }
    return RateLimits(**limits)


def _limit(env: Mapping[str, str], name: str, default: RateLimit | None) -> RateLimit | None:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    if raw.lower() == "off":
        return None
    try:
        return parse_rate_limit(raw, name)
    except RuleViolation as exc:
        raise SettingsError(f"{name} {exc.reason} or be off, not {raw!r}") from None


def _networks(
    env: Mapping[str, str], name: str, default: tuple[Network, ...]
) -> tuple[Network, ...]:
    # Set but empty means something here: refuse loopback too.
    if name not in env:
        return default
    try:
        return parse_allow_list(env[name])
    except OutboundRuleError as exc:
        raise SettingsError(f"{name}: {exc.reason}") from None


def _programs(env: Mapping[str, str], name: str, default: tuple[str, ...]) -> tuple[str, ...]:
    return parse_allow(env[name]) if env.get(name) else default


def _hosts(env: Mapping[str, str], name: str, default: tuple[str, ...]) -> tuple[str, ...]:
    hosts = tuple(h.strip() for h in env.get(name, "").split(",") if h.strip())
    return hosts or default


def _modules(env: Mapping[str, str], name: str, default: tuple[str, ...]) -> tuple[str, ...]:
    if not env.get(name):
        return default
    prefixes = parse_allow(env[name])
    for prefix in prefixes:
        if not _MODULE.match(prefix):
            raise SettingsError(
                f"{name} must list module names such as mycompany.tools, not {prefix!r}"
            )
    return prefixes


def _port(raw: str, name: str) -> int:
    try:
        return int(raw)
    except ValueError:
        raise SettingsError(f"{name} must be a port number, not {raw!r}") from None


def _check_url(url: str | None, schemes: tuple[str, ...], name: str) -> None:
    if url is None:
        return
    scheme = urlsplit(url).scheme
    if scheme not in schemes:
        allowed = ", ".join(f"{s}://" for s in schemes)
        raise SettingsError(f"{name} must start with one of {allowed} (got {url.split(':')[0]!r})")
