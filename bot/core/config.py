"""The bot's settings: read once from the environment into one typed, validated object."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from dotenv import load_dotenv

from .model_lists import V2_DEFAULT_MODELS, V2_MODEL_NAMES

DEFAULT_BASE_URLS = {
    "v1": "https://api.prodia.com/v1",
    "v2": "https://inference.prodia.com/v2",
}
PRODIA_IMAGE_HOST = "images.prodia.xyz"


class ConfigError(Exception):
    """Settings are missing or invalid: the message names every variable at fault and what to do, at once."""

    def __init__(self, variable: str, problem: str, *more: tuple[str, str]) -> None:
        self.problems = ((variable, problem), *more)  # (variable, what is wrong), in the order found
        self.variable = variable  # the first one
        listed = "; ".join(f"{name} {text}" for name, text in self.problems)
        them = "it" if len(self.problems) == 1 else "them"
        super().__init__(f"{listed} (set {them} in the environment or in .env; see .env.example)")

    @classmethod
    def listing(cls, problems: Sequence[tuple[str, str]]) -> ConfigError:
        (variable, problem), *more = problems
        return cls(variable, problem, *more)

    @property
    def variables(self) -> tuple[str, ...]:
        return tuple(name for name, _ in self.problems)


class _Environment(dict[str, str]):
    """The variables being read, and every problem found in them, so that all are reported together."""

    def __init__(self, values: Mapping[str, str]) -> None:
        super().__init__(values)
        self.problems: list[tuple[str, str]] = []

    def problem(self, variable: str, text: str) -> None:
        self.problems.append((variable, text))

    def has_problem(self, variable: str) -> bool:
        return any(name == variable for name, _ in self.problems)

    def check(self) -> None:
        if self.problems:
            raise ConfigError.listing(self.problems)


def _missing_secrets(token: object, key: object) -> list[tuple[str, str]]:
    """What the bot lacks to connect to Discord and Prodia."""
    missing = []
    if token is None:
        missing.append(("DISCORD_TOKEN", "is not set: copy your bot's token from the Discord developer portal"))
    if key is None:
        missing.append(
            (
                "PRODIA_API_KEY",
                "is not set: use your Prodia key, or any value with the local server (python -m devtools.local_prodia)",
            )
        )
    return missing


class Secret:
    """A string that never shows itself in repr(), str() or a log line."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('********')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


def _text(env: Mapping[str, str], name: str) -> str | None:
    value = env.get(name, "").strip()
    return value or None


def _number(env: _Environment, name: str, default: float, *, low: float, high: float, integer: bool) -> float:
    """The number `name` holds; `default` when it is unset, or when it is wrong (noted in `env`)."""
    raw = _text(env, name)
    if raw is None:
        return default
    try:
        value = int(raw) if integer else float(raw)
    except ValueError:
        kind = "a whole number" if integer else "a number"
        env.problem(name, f"must be {kind}, got {raw!r}")
        return default
    if not low <= value <= high:
        env.problem(name, f"must be between {low:g} and {high:g}, got {raw}")
        return default
    return value


def _choice(env: _Environment, name: str, default: str, allowed: tuple[str, ...]) -> str:
    """One of `allowed` as `name` holds it (any case); `default` when unset or wrong (noted in `env`)."""
    raw = (_text(env, name) or default).lower()
    if raw not in allowed:
        env.problem(name, f"must be {', '.join(allowed[:-1])} or {allowed[-1]}, got {raw!r}")
        return default
    return raw


def _flag(env: _Environment, name: str, default: bool) -> bool:
    raw = (_text(env, name) or str(default)).lower()
    if raw not in {"true", "false", "1", "0", "yes", "no"}:
        env.problem(name, f"must be true or false, got {raw!r}")
        return default
    return raw in {"true", "1", "yes"}


def _hide_password(value: object) -> object:
    """A URL with its password replaced, for repr; anything else unchanged."""
    if isinstance(value, str) and "@" in value and "://" in value:
        parts = urlsplit(value)
        if parts.password:
            return value.replace(f":{parts.password}@", ":***@", 1)
    return value


def _url(env: _Environment, name: str, value: str, schemes: tuple[str, ...]) -> str | None:
    """`value` without its trailing slash, or None if it is no URL of `schemes` (noted in `env`)."""
    parts = urlsplit(value)
    if parts.scheme not in schemes or not parts.hostname:
        env.problem(name, f"must be a URL starting with {' or '.join(s + '://' for s in schemes)}")
        return None
    return value.rstrip("/")


def _shard_ids(env: _Environment, raw_ids: str, count: int | None) -> tuple[int, ...]:
    if count is None:
        env.problem("SHARD_IDS", "needs SHARD_COUNT to be set too")
        return ()
    try:
        shard_ids = tuple(sorted({int(part) for part in raw_ids.split(",") if part.strip()}))
    except ValueError:
        env.problem("SHARD_IDS", f"must be comma-separated shard numbers, got {raw_ids!r}")
        return ()
    if not shard_ids or not all(0 <= shard < count for shard in shard_ids):
        env.problem("SHARD_IDS", f"must be numbers from 0 to {count - 1}, got {raw_ids!r}")
        return ()
    return shard_ids


@dataclass(frozen=True)
class Settings:
    """Everything the bot reads from its environment. Build it with `Settings.from_env()`."""

    discord_token: Secret | None = None
    prodia_api_key: Secret | None = None
    prodia_api: Literal["v1", "v2"] = "v2"
    prodia_base_url: str = DEFAULT_BASE_URLS["v2"]
    prodia_proxy: str | None = None
    prodia_image_hosts: tuple[str, ...] = ()
    database_url: str = "sqlite:///data/imagine.sqlite3"
    # Tuning knobs.
    prodia_timeout: float = 300.0  # seconds one generation may take, submit to image bytes
    prodia_max_retries: int = 5  # retries of 429 / 5xx / connection errors per request
    prodia_retry_delay: float = 1.0  # first back-off step in seconds (doubled each retry, with jitter)
    prodia_poll_interval: float = 0.25  # seconds between two polls of a v1 job
    prodia_max_polls_per_second: float = 100.0  # over all polled jobs of the process
    prodia_v2_mode: Literal["sync", "async", "auto"] = "auto"  # how v2 jobs run; see bot.core.prodia.v2
    prodia_v2_models: tuple[str, ...] = V2_DEFAULT_MODELS  # the v2 models offered, the default first
    max_image_bytes: int = 20 * 1024 * 1024
    max_concurrent_jobs: int = 4  # jobs running at Prodia at once
    queue_size: int = 50  # jobs allowed to wait behind them
    user_max_jobs: int = 2  # jobs one user may have in flight (a `count:4` request is one)
    user_cooldown: float = 5.0  # seconds between two jobs of one user
    dm_daily_cap: int = 20  # images one user may make in DMs per UTC day (no server limits them there); 0: no cap
    user_daily_cap: int = 0  # images one user may make per UTC day, servers and DMs together; 0: no cap
    nsfw_threshold: str = "medium"  # the classifier label (neutral|low|medium|high) from which a result is flagged
    progress_interval: float = 2.0  # least seconds between two edits of one progress message
    # Seconds a job is leased to the process running it (renewed every third of it); a process that dies leaves
    # its jobs to the others once its leases lapse.
    job_lease_seconds: float = 120.0
    model_refresh_interval: float = 3600.0  # seconds between two refreshes of v1's model list; 0: never
    retention_days: int = 30  # finished jobs and results older than this are deleted; 0: kept forever
    log_level: str = "INFO"
    log_json: bool = False  # one JSON object per log line, for log collectors
    log_prompts: bool = True  # include prompt text in INFO job lines
    shard_count: int | None = None  # None: one unsharded process
    shard_ids: tuple[int, ...] = ()  # the shards this process runs; empty: all of them
    sync_commands: bool = True
    metrics_port: int | None = None  # /healthz and /metrics on this port; None: no server
    metrics_host: str = "127.0.0.1"  # the address that server listens on

    @property
    def allowed_image_hosts(self) -> frozenset[str]:
        """Hosts result images may come from: the API's own, Prodia's image host and the configured extras."""
        api_host = urlsplit(self.prodia_base_url).hostname or ""
        return frozenset({api_host.lower(), PRODIA_IMAGE_HOST, *self.prodia_image_hosts})

    def require_runnable(self) -> None:
        """Raise ConfigError unless the bot has what it needs to connect to Discord and Prodia."""
        if missing := _missing_secrets(self.discord_token, self.prodia_api_key):
            raise ConfigError.listing(missing)

    def __repr__(self) -> str:
        shown = ", ".join(f"{f.name}={_hide_password(getattr(self, f.name))!r}" for f in fields(self))
        return f"Settings({shown})"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, *, runnable: bool = False) -> Settings:
        """Read settings from `environ`, or from os.environ after loading `.env` when it is None.

        Raises one ConfigError naming every missing or invalid setting; with `runnable`, a missing
        DISCORD_TOKEN or PRODIA_API_KEY counts too (what `python -m bot` needs to run)."""
        if environ is None:
            load_dotenv(Path.cwd() / ".env")
            environ = os.environ
        env = _Environment(environ)

        token = _text(env, "DISCORD_TOKEN")
        key = _text(env, "PRODIA_API_KEY")
        if runnable:
            env.problems += _missing_secrets(token, key)
        api = (_text(env, "PRODIA_API") or "v2").lower()
        if api not in DEFAULT_BASE_URLS:
            env.problem("PRODIA_API", f"must be v1 or v2, got {api!r}")
            api = cls.prodia_api
        base_url = _text(env, "PRODIA_BASE_URL") or DEFAULT_BASE_URLS[api]
        base_url = _url(env, "PRODIA_BASE_URL", base_url, ("http", "https")) or DEFAULT_BASE_URLS[api]
        proxy = _text(env, "PRODIA_PROXY")
        if proxy is not None:
            proxy = _url(env, "PRODIA_PROXY", proxy, ("http", "https"))
        hosts = tuple(h.strip().lower() for h in (_text(env, "PRODIA_IMAGE_HOSTS") or "").split(",") if h.strip())
        if bad_hosts := [host for host in hosts if "/" in host or " " in host]:
            env.problem("PRODIA_IMAGE_HOSTS", f"must list host names only, got {', '.join(map(repr, bad_hosts))}")

        v2_mode = (_text(env, "PRODIA_V2_MODE") or cls.prodia_v2_mode).lower()
        if v2_mode not in ("sync", "async", "auto"):
            env.problem("PRODIA_V2_MODE", f"must be sync, async or auto, got {v2_mode!r}")
        named = (_text(env, "PRODIA_V2_MODELS") or "").split(",")
        v2_models = tuple(dict.fromkeys(m.strip().lower() for m in named if m.strip()))
        unknown = [m for m in v2_models if m not in V2_MODEL_NAMES]
        if unknown:
            env.problem("PRODIA_V2_MODELS", f"knows {', '.join(V2_MODEL_NAMES)}; got {', '.join(unknown)}")

        database_url = _text(env, "DATABASE_URL") or cls.database_url
        if not database_url.startswith(("sqlite://", "postgresql://", "postgres://")):
            env.problem("DATABASE_URL", "must start with sqlite:/// or postgresql://")

        log_level = (_text(env, "LOG_LEVEL") or "INFO").upper()
        if log_level not in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}:
            env.problem("LOG_LEVEL", f"must be DEBUG, INFO, WARNING, ERROR or CRITICAL, got {log_level!r}")

        shard_count = _text(env, "SHARD_COUNT")
        count = int(_number(env, "SHARD_COUNT", 1, low=1, high=100_000, integer=True)) if shard_count else None
        shard_ids: tuple[int, ...] = ()
        if (raw_ids := _text(env, "SHARD_IDS")) and not env.has_problem("SHARD_COUNT"):
            shard_ids = _shard_ids(env, raw_ids, count)
        metrics_port = _text(env, "METRICS_PORT")
        port = int(_number(env, "METRICS_PORT", 0, low=1, high=65535, integer=True)) if metrics_port else None

        settings = cls(
            discord_token=Secret(token) if token else None,
            prodia_api_key=Secret(key) if key else None,
            prodia_api=api,  # type: ignore[arg-type]
            prodia_base_url=base_url,
            prodia_proxy=proxy,
            prodia_image_hosts=hosts,
            database_url=database_url,
            prodia_timeout=_number(env, "PRODIA_TIMEOUT", cls.prodia_timeout, low=1, high=3600, integer=False),
            prodia_max_retries=int(
                _number(env, "PRODIA_MAX_RETRIES", cls.prodia_max_retries, low=0, high=20, integer=True)
            ),
            prodia_retry_delay=_number(
                env, "PRODIA_RETRY_DELAY", cls.prodia_retry_delay, low=0, high=60, integer=False
            ),
            prodia_poll_interval=_number(
                env, "PRODIA_POLL_INTERVAL", cls.prodia_poll_interval, low=0.01, high=30, integer=False
            ),
            prodia_max_polls_per_second=_number(
                env, "PRODIA_MAX_POLLS_PER_SECOND", cls.prodia_max_polls_per_second, low=1, high=10_000, integer=False
            ),
            prodia_v2_mode=v2_mode,  # type: ignore[arg-type]
            prodia_v2_models=v2_models or cls.prodia_v2_models,
            max_image_bytes=int(
                _number(env, "MAX_IMAGE_BYTES", cls.max_image_bytes, low=1024, high=100 * 1024 * 1024, integer=True)
            ),
            max_concurrent_jobs=int(
                _number(env, "MAX_CONCURRENT_JOBS", cls.max_concurrent_jobs, low=1, high=1000, integer=True)
            ),
            queue_size=int(_number(env, "QUEUE_SIZE", cls.queue_size, low=0, high=100_000, integer=True)),
            user_max_jobs=int(_number(env, "USER_MAX_JOBS", cls.user_max_jobs, low=1, high=100, integer=True)),
            user_cooldown=_number(env, "USER_COOLDOWN", cls.user_cooldown, low=0, high=3600, integer=False),
            dm_daily_cap=int(_number(env, "DM_DAILY_CAP", cls.dm_daily_cap, low=0, high=1_000_000, integer=True)),
            user_daily_cap=int(_number(env, "USER_DAILY_CAP", cls.user_daily_cap, low=0, high=1_000_000, integer=True)),
            nsfw_threshold=_choice(env, "NSFW_THRESHOLD", cls.nsfw_threshold, ("low", "medium", "high")),
            progress_interval=_number(env, "PROGRESS_INTERVAL", cls.progress_interval, low=0, high=60, integer=False),
            job_lease_seconds=_number(
                env, "JOB_LEASE_SECONDS", cls.job_lease_seconds, low=1, high=86400, integer=False
            ),
            model_refresh_interval=_number(
                env, "MODEL_REFRESH_INTERVAL", cls.model_refresh_interval, low=0, high=7 * 86400, integer=False
            ),
            retention_days=int(_number(env, "RETENTION_DAYS", cls.retention_days, low=0, high=36500, integer=True)),
            log_level=log_level,
            sync_commands=_flag(env, "SYNC_COMMANDS", True),
            log_json=_flag(env, "LOG_JSON", False),
            log_prompts=_flag(env, "LOG_PROMPTS", True),
            shard_count=count,
            shard_ids=shard_ids,
            metrics_port=port,
            metrics_host=_text(env, "METRICS_HOST") or cls.metrics_host,
        )
        env.check()  # every problem at once; the values built above with defaults in their place are dropped
        return settings
