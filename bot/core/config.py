"""The bot's settings: read once from the environment into one typed, validated object."""

from __future__ import annotations

import os
from collections.abc import Mapping
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
    """A setting is missing or invalid; the message names the variable and what to do."""

    def __init__(self, variable: str, problem: str) -> None:
        self.variable = variable
        super().__init__(f"{variable} {problem} (set it in the environment or in .env; see .env.example)")


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


def _number(env: Mapping[str, str], name: str, default: float, *, low: float, high: float, integer: bool) -> float:
    raw = _text(env, name)
    if raw is None:
        return default
    try:
        value = int(raw) if integer else float(raw)
    except ValueError:
        kind = "a whole number" if integer else "a number"
        raise ConfigError(name, f"must be {kind}, got {raw!r}") from None
    if not low <= value <= high:
        raise ConfigError(name, f"must be between {low:g} and {high:g}, got {raw}")
    return value


def _flag(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = (_text(env, name) or str(default)).lower()
    if raw not in {"true", "false", "1", "0", "yes", "no"}:
        raise ConfigError(name, f"must be true or false, got {raw!r}")
    return raw in {"true", "1", "yes"}


def _hide_password(value: object) -> object:
    """A URL with its password replaced, for repr; anything else unchanged."""
    if isinstance(value, str) and "@" in value and "://" in value:
        parts = urlsplit(value)
        if parts.password:
            return value.replace(f":{parts.password}@", ":***@", 1)
    return value


def _url(name: str, value: str, schemes: tuple[str, ...]) -> str:
    parts = urlsplit(value)
    if parts.scheme not in schemes or not parts.hostname:
        raise ConfigError(name, f"must be a URL starting with {' or '.join(s + '://' for s in schemes)}")
    return value.rstrip("/")


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
    user_max_jobs: int = 2  # jobs one user may have in flight
    user_cooldown: float = 5.0  # seconds between two jobs of one user
    progress_interval: float = 2.0  # least seconds between two edits of one progress message
    model_refresh_interval: float = 3600.0  # seconds between two refreshes of v1's model list; 0: never
    log_level: str = "INFO"
    log_json: bool = False  # one JSON object per log line, for log collectors
    log_prompts: bool = True  # include prompt text in INFO job lines
    shard_count: int | None = None  # None: one unsharded process
    shard_ids: tuple[int, ...] = ()  # the shards this process runs; empty: all of them
    sync_commands: bool = True

    @property
    def allowed_image_hosts(self) -> frozenset[str]:
        """Hosts result images may come from: the API's own, Prodia's image host and the configured extras."""
        api_host = urlsplit(self.prodia_base_url).hostname or ""
        return frozenset({api_host.lower(), PRODIA_IMAGE_HOST, *self.prodia_image_hosts})

    def require_runnable(self) -> None:
        """Raise ConfigError unless the bot has what it needs to connect to Discord and Prodia."""
        if self.discord_token is None:
            raise ConfigError("DISCORD_TOKEN", "is not set: copy your bot's token from the Discord developer portal")
        if self.prodia_api_key is None:
            raise ConfigError(
                "PRODIA_API_KEY",
                "is not set: use your Prodia key, or any value with the local server (python -m devtools.local_prodia)",
            )

    def __repr__(self) -> str:
        shown = ", ".join(f"{f.name}={_hide_password(getattr(self, f.name))!r}" for f in fields(self))
        return f"Settings({shown})"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Read settings from `environ`, or from os.environ after loading `.env` when it is None."""
        if environ is None:
            load_dotenv(Path.cwd() / ".env")
            environ = os.environ
        env = environ

        api = (_text(env, "PRODIA_API") or "v2").lower()
        if api not in DEFAULT_BASE_URLS:
            raise ConfigError("PRODIA_API", f"must be v1 or v2, got {api!r}")
        base_url = _url("PRODIA_BASE_URL", _text(env, "PRODIA_BASE_URL") or DEFAULT_BASE_URLS[api], ("http", "https"))
        proxy = _text(env, "PRODIA_PROXY")
        if proxy is not None:
            proxy = _url("PRODIA_PROXY", proxy, ("http", "https"))
        hosts = tuple(h.strip().lower() for h in (_text(env, "PRODIA_IMAGE_HOSTS") or "").split(",") if h.strip())
        for host in hosts:
            if "/" in host or " " in host:
                raise ConfigError("PRODIA_IMAGE_HOSTS", f"must list host names only, got {host!r}")

        v2_mode = (_text(env, "PRODIA_V2_MODE") or cls.prodia_v2_mode).lower()
        if v2_mode not in ("sync", "async", "auto"):
            raise ConfigError("PRODIA_V2_MODE", f"must be sync, async or auto, got {v2_mode!r}")
        named = (_text(env, "PRODIA_V2_MODELS") or "").split(",")
        v2_models = tuple(dict.fromkeys(m.strip().lower() for m in named if m.strip()))
        unknown = [m for m in v2_models if m not in V2_MODEL_NAMES]
        if unknown:
            raise ConfigError("PRODIA_V2_MODELS", f"knows {', '.join(V2_MODEL_NAMES)}; got {', '.join(unknown)}")

        database_url = _text(env, "DATABASE_URL") or cls.database_url
        if not database_url.startswith(("sqlite://", "postgresql://", "postgres://")):
            raise ConfigError("DATABASE_URL", "must start with sqlite:/// or postgresql://")

        log_level = (_text(env, "LOG_LEVEL") or "INFO").upper()
        if log_level not in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}:
            raise ConfigError("LOG_LEVEL", f"must be DEBUG, INFO, WARNING or ERROR, got {log_level!r}")

        shard_count = _text(env, "SHARD_COUNT")
        count = int(_number(env, "SHARD_COUNT", 1, low=1, high=100_000, integer=True)) if shard_count else None
        shard_ids: tuple[int, ...] = ()
        if raw_ids := _text(env, "SHARD_IDS"):
            if count is None:
                raise ConfigError("SHARD_IDS", "needs SHARD_COUNT to be set too")
            try:
                shard_ids = tuple(sorted({int(part) for part in raw_ids.split(",") if part.strip()}))
            except ValueError:
                raise ConfigError("SHARD_IDS", f"must be comma-separated shard numbers, got {raw_ids!r}") from None
            if not shard_ids or not all(0 <= shard < count for shard in shard_ids):
                raise ConfigError("SHARD_IDS", f"must be numbers from 0 to {count - 1}, got {raw_ids!r}")

        token = _text(env, "DISCORD_TOKEN")
        key = _text(env, "PRODIA_API_KEY")
        return cls(
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
            progress_interval=_number(env, "PROGRESS_INTERVAL", cls.progress_interval, low=0, high=60, integer=False),
            model_refresh_interval=_number(
                env, "MODEL_REFRESH_INTERVAL", cls.model_refresh_interval, low=0, high=7 * 86400, integer=False
            ),
            log_level=log_level,
            sync_commands=_flag(env, "SYNC_COMMANDS", True),
            log_json=_flag(env, "LOG_JSON", False),
            log_prompts=_flag(env, "LOG_PROMPTS", True),
            shard_count=count,
            shard_ids=shard_ids,
        )
