"""The bot's storage: one `Store` interface over SQLite (the default) or PostgreSQL (for several processes).

It knows nothing of Discord: ids are plain ints. Every query is written once with `?` placeholders;
the PostgreSQL backend renumbers them to `$1, $2, ...`. The schema lives in `bot/core/migrations/NNNN_*.sql`,
shared by both backends.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import re
import sqlite3
import time
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Awaitable, Callable, Collection, Iterator, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager, contextmanager
from dataclasses import asdict, dataclass, field, fields
from functools import lru_cache, partial
from importlib.resources import files
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import urlsplit, urlunsplit

import aiosqlite

if TYPE_CHECKING:
    import asyncpg

Row = dict[str, Any]
Query = Callable[..., Awaitable[list[Row]]]

REROLL_MODES = ("requester", "anyone")
_SQLITE_PREFIX = "sqlite:///"
_MIGRATION_LOCK_KEY = 0x696D6167696E65  # "imagine": any constant shared by every process of the bot


class StoreError(Exception):
    """The database failed (locked, disk full, unreachable); the driver's error is `__cause__`."""


@dataclass(frozen=True)
class GuildSettings:
    """A guild's defaults; None means "use the built-in default"."""

    model: str | None = None
    sampler: str | None = None
    steps: int | None = None
    cfg: float | None = None
    negative_prompt: str | None = None
    aspect_ratio: str | None = None
    reroll: str = "requester"
    blocked_words: tuple[str, ...] = ()
    daily_cap: int | None = None
    locale: str | None = None


@dataclass(frozen=True)
class ResultRecord:
    """What a posted result was made from, keyed by its message id (for rerolls)."""

    message_id: int
    guild_id: int | None
    channel_id: int
    user_id: int
    request: dict[str, Any]
    created_at: float


@dataclass(frozen=True)
class JobRecord:
    """The durable job journal: one row per accepted request, so a restart can finish it."""

    id: str
    kind: str
    guild_id: int | None
    channel_id: int
    user_id: int
    request: dict[str, Any]
    state: str
    interaction_token: str | None = field(repr=False)  # a secret for its 15 minutes of life
    application_id: int | None
    interaction_created_at: float | None
    message_id: int | None
    reply_to: int | None
    prodia_job_id: str | None
    error: str | None
    created_at: float
    updated_at: float
    attempts: int = 0
    price: float | None = None  # US dollars Prodia charged, where it said


_SETTINGS_FIELDS = frozenset(f.name for f in fields(GuildSettings))
_JOB_FIELDS = tuple(f.name for f in fields(JobRecord))
_JOB_MUTABLE = frozenset(_JOB_FIELDS) - {"id", "created_at"}
_JOB_COLUMNS = ", ".join(_JOB_FIELDS)
_RESULT_COLUMNS = ", ".join(f.name for f in fields(ResultRecord))


def _dump(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def _job_from_row(row: Row) -> JobRecord:
    return JobRecord(**{**row, "request": json.loads(row["request"])})


def _settings_from_row(row: Row) -> GuildSettings:
    values = {name: value for name, value in row.items() if name in _SETTINGS_FIELDS and value is not None}
    if "blocked_words" in values:
        values["blocked_words"] = tuple(json.loads(values["blocked_words"]))
    return GuildSettings(**values)


def _encode_setting(name: str, value: Any) -> Any:
    if name == "reroll" and value not in (None, *REROLL_MODES):
        raise ValueError(f"reroll must be one of {REROLL_MODES}, not {value!r}")
    if name == "blocked_words":
        return _dump(list(value)) if value else None
    return value


class Store(ABC):
    """Storage shared by the cogs. Subclasses only supply `_query`, `_transaction` and `close`.

    Guild settings are cached in-process for `cache_ttl` seconds and invalidated by this process's
    writes; another process's writes are seen once the entry expires.
    """

    backend: ClassVar[str]
    _errors: tuple[type[BaseException], ...]  # the driver's failures, reported as StoreError
    _migration_lock: ClassVar[str | None] = None  # SQL run first in the migration transaction

    def __init__(self, *, cache_ttl: float) -> None:
        self._cache_ttl = cache_ttl
        self._settings_cache: dict[int, tuple[float, GuildSettings]] = {}
        self._refreshing: dict[int, asyncio.Task[None]] = {}

    @abstractmethod
    async def close(self) -> None: ...

    @abstractmethod
    async def _query(self, sql: str, args: Sequence[Any] = ()) -> list[Row]:
        """Run one statement (outside any transaction) and return its rows, if any."""

    @abstractmethod
    def _transaction(self) -> AbstractAsyncContextManager[Query]:
        """A write transaction, yielding a `_query`-like function that runs inside it."""

    async def _migrate(self) -> None:
        """Apply the missing migrations in one locked transaction, so processes starting together apply each once."""
        async with self._transaction() as query:
            if self._migration_lock:
                await query(self._migration_lock)
            await query(
                "CREATE TABLE IF NOT EXISTS schema_migrations"
                " (version INTEGER PRIMARY KEY, applied_at DOUBLE PRECISION NOT NULL)"
            )
            applied = {row["version"] for row in await query("SELECT version FROM schema_migrations")}
            for version, script in _migrations():
                if version in applied:
                    continue
                for statement in _statements(script):
                    await query(statement)
                await query("INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)", (version, time.time()))

    async def _upsert(self, table: str, key: str, row: Row) -> None:
        updates = ", ".join(f"{column} = excluded.{column}" for column in row if column != key)
        await self._query(
            f"INSERT INTO {table} ({', '.join(row)}) VALUES ({', '.join('?' * len(row))})"
            f" ON CONFLICT ({key}) DO UPDATE SET {updates}",
            tuple(row.values()),
        )

    # Small key/value state, e.g. the hash of the synced command tree.

    async def get_meta(self, key: str) -> str | None:
        rows = await self._query("SELECT value FROM meta WHERE key = ?", (key,))
        return rows[0]["value"] if rows else None

    async def set_meta(self, key: str, value: str) -> None:
        await self._upsert("meta", "key", {"key": key, "value": value})

    # Guild settings.

    async def guild_settings(self, guild_id: int, *, allow_stale: bool = False) -> GuildSettings:
        """A guild's settings through the cache. `allow_stale` answers from an expired entry at once and
        refreshes it in the background: for hot paths that must not wait on the database."""
        cached = self._settings_cache.get(guild_id)
        if cached and cached[0] > time.monotonic():
            return cached[1]
        if cached and allow_stale:
            if guild_id not in self._refreshing:
                task = asyncio.create_task(self._refresh_settings(guild_id))
                self._refreshing[guild_id] = task
                task.add_done_callback(lambda _: self._refreshing.pop(guild_id, None))
            return cached[1]
        return await self._load_settings(guild_id)

    async def _refresh_settings(self, guild_id: int) -> None:
        with contextlib.suppress(StoreError):  # the next read tries again
            await self._load_settings(guild_id)

    async def _load_settings(self, guild_id: int) -> GuildSettings:
        rows = await self._query("SELECT * FROM guild_settings WHERE guild_id = ?", (guild_id,))
        settings = _settings_from_row(rows[0]) if rows else GuildSettings()
        self._settings_cache[guild_id] = (time.monotonic() + self._cache_ttl, settings)
        return settings

    async def update_guild_settings(self, guild_id: int, **changes: Any) -> GuildSettings:
        """Change only the given fields; None puts a field back to its default."""
        unknown = changes.keys() - _SETTINGS_FIELDS
        if unknown:
            raise TypeError(f"unknown guild setting(s): {', '.join(sorted(unknown))}")
        if changes:
            row = {name: _encode_setting(name, value) for name, value in changes.items()}
            await self._upsert("guild_settings", "guild_id", {"guild_id": guild_id, **row})
            self._settings_cache.pop(guild_id, None)
        return await self.guild_settings(guild_id)

    async def reset_guild_settings(self, guild_id: int) -> None:
        await self._query("DELETE FROM guild_settings WHERE guild_id = ?", (guild_id,))
        self._settings_cache.pop(guild_id, None)

    # Results, for rerolls.

    async def save_result(self, record: ResultRecord) -> None:
        await self._upsert("results", "message_id", {**asdict(record), "request": _dump(record.request)})

    async def get_result(self, message_id: int) -> ResultRecord | None:
        rows = await self._query(f"SELECT {_RESULT_COLUMNS} FROM results WHERE message_id = ?", (message_id,))
        return ResultRecord(**{**rows[0], "request": json.loads(rows[0]["request"])}) if rows else None

    # The job journal.

    async def add_job(self, job: JobRecord) -> None:
        values = [_dump(job.request) if name == "request" else getattr(job, name) for name in _JOB_FIELDS]
        await self._query(f"INSERT INTO jobs ({_JOB_COLUMNS}) VALUES ({', '.join('?' * len(values))})", values)

    async def update_job(self, job_id: str, **changes: Any) -> None:
        unknown = changes.keys() - _JOB_MUTABLE
        if unknown:
            raise TypeError(f"unknown or read-only job field(s): {', '.join(sorted(unknown))}")
        changes.setdefault("updated_at", time.time())
        if "request" in changes:
            changes["request"] = _dump(changes["request"])
        assignments = ", ".join(f"{name} = ?" for name in changes)
        await self._query(f"UPDATE jobs SET {assignments} WHERE id = ?", (*changes.values(), job_id))

    async def get_job(self, job_id: str) -> JobRecord | None:
        rows = await self._query(f"SELECT {_JOB_COLUMNS} FROM jobs WHERE id = ?", (job_id,))
        return _job_from_row(rows[0]) if rows else None

    async def unfinished_jobs(
        self, guild_ids: Collection[int] | None = None, *, include_dms: bool = True
    ) -> list[JobRecord]:
        """Jobs not yet delivered or failed, oldest first; DM jobs have no guild."""
        rows = await self._query(
            f"SELECT {_JOB_COLUMNS} FROM jobs WHERE state NOT IN ('delivered', 'failed') ORDER BY created_at, id"
        )
        # Unfinished jobs are few, so filtering here beats an IN list as long as the guild count.
        wanted = None if guild_ids is None else set(guild_ids)
        jobs = (_job_from_row(row) for row in rows)
        return [
            job for job in jobs if (include_dms if job.guild_id is None else wanted is None or job.guild_id in wanted)
        ]

    async def claim_job(self, job_id: str, owner: str, *, lease: float) -> bool:
        """Take an unfinished job for `lease` seconds unless another owner holds an unexpired lease.

        One conditional UPDATE, so two processes never both win; the owner may renew its own lease.
        """
        now = time.time()
        rows = await self._query(
            "UPDATE jobs SET lease_owner = ?, lease_until = ?"
            " WHERE id = ? AND state NOT IN ('delivered', 'failed')"
            " AND (lease_until IS NULL OR lease_until <= ? OR lease_owner = ?) RETURNING id",
            (owner, now + lease, job_id, now, owner),
        )
        return bool(rows)

    async def release_jobs(self, owner: str) -> None:
        """Drop every lease `owner` holds (a process stopping cleanly), so the next start resumes at once."""
        await self._query("UPDATE jobs SET lease_owner = NULL, lease_until = NULL WHERE lease_owner = ?", (owner,))

    async def count_images_since(self, guild_id: int, since: float) -> int:
        rows = await self._query(
            "SELECT COUNT(*) AS n FROM jobs WHERE guild_id = ? AND state IN ('generated', 'delivered')"
            " AND created_at >= ?",
            (guild_id, since),
        )
        return int(rows[0]["n"])


@contextmanager
def _wrap_errors(errors: tuple[type[BaseException], ...], what: str) -> Iterator[None]:
    try:
        yield
    except errors as exc:
        raise StoreError(f"{what}: {type(exc).__name__}: {exc}") from exc


class SQLiteStore(Store):
    """One aiosqlite connection in autocommit mode; WAL lets other processes read while it writes."""

    backend = "sqlite"
    _errors = (sqlite3.Error, OSError)

    def __init__(self, db: aiosqlite.Connection, *, cache_ttl: float) -> None:
        super().__init__(cache_ttl=cache_ttl)
        self._db = db

    @classmethod
    async def connect(cls, path: str, *, cache_ttl: float = 60.0) -> SQLiteStore:
        with _wrap_errors(cls._errors, f"cannot open SQLite database {path}"):
            if path != ":memory:":
                Path(path).parent.mkdir(parents=True, exist_ok=True)
            db = await aiosqlite.connect(path, isolation_level=None)
        db.row_factory = sqlite3.Row
        store = cls(db, cache_ttl=cache_ttl)
        try:
            await store._query("PRAGMA busy_timeout = 5000")
            await store._switch_to_wal()
            await store._query("PRAGMA foreign_keys = ON")
        except BaseException:
            await db.close()
            raise
        return store

    async def _switch_to_wal(self, attempts: int = 50) -> None:
        """WAL lets other processes read while this one writes. Switching to it can answer "database is
        locked" at once, without waiting out busy_timeout, while another process opens the same new file:
        try again for a few seconds."""
        for attempt in range(attempts):
            try:
                await self._query("PRAGMA journal_mode = WAL")
                return
            except StoreError as exc:
                if "locked" not in str(exc) or attempt == attempts - 1:
                    raise
                await asyncio.sleep(0.1)

    async def close(self) -> None:
        await self._db.close()

    async def _query(self, sql: str, args: Sequence[Any] = ()) -> list[Row]:
        with _wrap_errors(self._errors, "SQLite error"):
            return [dict(row) for row in await self._db.execute_fetchall(sql, args)]

    @asynccontextmanager
    async def _transaction(self) -> AsyncIterator[Query]:
        # IMMEDIATE takes the write lock now, so concurrent migrators queue instead of deadlocking.
        await self._query("BEGIN IMMEDIATE")
        try:
            yield self._query
        except BaseException:
            await self._query("ROLLBACK")
            raise
        await self._query("COMMIT")


class PostgresStore(Store):
    """An asyncpg pool; safe to share one database between several bot processes."""

    backend = "postgresql"
    _migration_lock = f"SELECT pg_advisory_xact_lock({_MIGRATION_LOCK_KEY})"

    def __init__(self, pool: asyncpg.Pool, *, cache_ttl: float) -> None:
        super().__init__(cache_ttl=cache_ttl)
        self._pool = pool
        self._errors = _postgres_errors()

    @classmethod
    async def connect(cls, url: str, *, cache_ttl: float = 60.0) -> PostgresStore:
        """Connect a pool; extra URL query parameters (e.g. `?search_path=bot`) become server settings."""
        import asyncpg

        with _wrap_errors(_postgres_errors(), f"cannot connect to {_redact(url)}"):
            pool = await asyncpg.create_pool(url, min_size=1, max_size=10, timeout=10, command_timeout=30)
        return cls(pool, cache_ttl=cache_ttl)

    async def close(self) -> None:
        await self._pool.close()

    async def _query(self, sql: str, args: Sequence[Any] = ()) -> list[Row]:
        return await self._run(self._pool, sql, args)

    async def _run(self, target: asyncpg.Pool | asyncpg.Connection, sql: str, args: Sequence[Any] = ()) -> list[Row]:
        with _wrap_errors(self._errors, "PostgreSQL error"):
            return [dict(record) for record in await target.fetch(_numbered(sql), *args)]

    @asynccontextmanager
    async def _transaction(self) -> AsyncIterator[Query]:
        with _wrap_errors(self._errors, "PostgreSQL error"):
            async with self._pool.acquire() as connection, connection.transaction():
                yield partial(self._run, connection)


def _postgres_errors() -> tuple[type[BaseException], ...]:
    import asyncpg  # imported late: only PostgreSQL users need it installed

    return (asyncpg.PostgresError, asyncpg.InterfaceError, OSError, TimeoutError)


@lru_cache(maxsize=256)
def _numbered(sql: str) -> str:
    """`?` placeholders to asyncpg's `$1, $2, ...` (our SQL never has a `?` inside a literal)."""
    counter = itertools.count(1)
    return re.sub(r"\?", lambda _: f"${next(counter)}", sql)


def _redact(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None:
        return url
    user_info, _, host = parts.netloc.rpartition("@")
    return urlunsplit(parts._replace(netloc=f"{user_info.partition(':')[0]}:***@{host}"))


def _migrations() -> list[tuple[int, str]]:
    """The packaged `migrations/NNNN_name.sql` files as (version, script), in order."""
    found = []
    for entry in (files(__package__) / "migrations").iterdir():
        match = re.fullmatch(r"(\d+)_\w+\.sql", entry.name)
        if match:
            found.append((int(match[1]), entry.read_text(encoding="utf-8")))
    return sorted(found)


def _statements(script: str) -> Iterator[str]:
    """Split a script into statements, since both drivers prepare one at a time."""
    statement = ""
    for line in script.splitlines(keepends=True):
        statement += line
        if sqlite3.complete_statement(statement):
            yield statement.strip()
            statement = ""
    if re.sub(r"--.*", "", statement).strip():
        raise ValueError(f"migration has text after its last ';': {statement.strip()[:80]!r}")


async def open_store(database_url: str, *, cache_ttl: float = 60.0) -> Store:
    """Open `sqlite:///relative/path`, `sqlite:////abs/path`, `sqlite:///:memory:` or `postgresql://...`
    (also `postgres://`) and bring its schema up to date."""
    scheme = urlsplit(database_url).scheme
    store: Store
    if scheme == "sqlite" and database_url.startswith(_SQLITE_PREFIX) and len(database_url) > len(_SQLITE_PREFIX):
        store = await SQLiteStore.connect(database_url.removeprefix(_SQLITE_PREFIX), cache_ttl=cache_ttl)
    elif scheme in ("postgresql", "postgres"):
        store = await PostgresStore.connect(database_url, cache_ttl=cache_ttl)
    else:
        raise ValueError(f"unsupported database URL {_redact(database_url)!r}: use sqlite:///path or postgresql://...")
    try:
        await store._migrate()
    except BaseException:
        await store.close()
        raise
    return store
