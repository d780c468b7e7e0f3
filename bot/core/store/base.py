"""The abstract `Store`: the queries every backend shares, over three primitives each backend supplies."""

from __future__ import annotations

import asyncio
import logging
import time
from abc import abstractmethod
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import AbstractAsyncContextManager, contextmanager
from dataclasses import asdict
from typing import Any, ClassVar

from .journal import JobJournal
from .limits import LimitTables
from .migrations import _migrations, _statements
from .records import (
    _RESULT_COLUMNS,
    _SETTINGS_FIELDS,
    DEFAULT_FIELDS,
    Defaults,
    GuildSettings,
    ResultRecord,
    Row,
    StoreError,
    _dump,
    _encode_setting,
    _result_from_row,
    _settings_from_row,
)

Query = Callable[..., Awaitable[list[Row]]]
log = logging.getLogger(__name__)


class Store(JobJournal, LimitTables):
    """Storage shared by the cogs. Subclasses only supply `_query`, `_transaction` and `close`.
    The job journal's queries come from `JobJournal`, the admission limits' from `LimitTables`.

    Guild settings are cached in-process for `cache_ttl` seconds and invalidated by this process's
    writes; another process's writes are seen once the entry expires.
    """

    backend: ClassVar[str]
    _errors: tuple[type[BaseException], ...]  # the driver's failures, reported as StoreError
    _migration_lock: ClassVar[str | None] = None  # SQL run first in the migration transaction

    def __init__(self, *, cache_ttl: float) -> None:
        self._cache_ttl = cache_ttl
        self._settings_cache: dict[int, tuple[float, GuildSettings]] = {}
        self._defaults_cache: dict[tuple[str, int], tuple[float, Defaults]] = {}  # (table, id): a user's, a channel's
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

    async def checkpoint(self) -> None:
        """Leave no old copy of a changed or deleted row in the database's files, where the backend allows (SQLite
        overrides this; PostgreSQL's autovacuum removes dead row versions on its own)."""

    async def ping(self) -> None:
        """One trivial query: raises if the database does not answer (the health check's question)."""
        await self._query("SELECT 1")

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
        try:
            await self._load_settings(guild_id)
        except StoreError as exc:  # the next read tries again; meanwhile the expired copy serves
            log.warning("Could not refresh the settings of guild %s (%s); using the cached copy", guild_id, exc)

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
        """Forget every setting of a guild, moderation included (`/settings reset` puts back only some fields:
        `update_guild_settings` with None)."""
        await self._query("DELETE FROM guild_settings WHERE guild_id = ?", (guild_id,))
        self._settings_cache.pop(guild_id, None)

    # Image defaults below the server's: a user's preferences, a channel's defaults (each row all DEFAULT_FIELDS).

    async def preferences(self, user_id: int) -> Defaults:
        return await self._defaults("user_preferences", "user_id", user_id)

    async def update_preferences(self, user_id: int, **changes: Any) -> Defaults:
        """Change only the given fields; None unsets one."""
        return await self._update_defaults("user_preferences", "user_id", user_id, {}, changes)

    async def channel_defaults(self, channel_id: int) -> Defaults:
        return await self._defaults("channel_defaults", "channel_id", channel_id)

    async def update_channel_defaults(self, channel_id: int, guild_id: int, **changes: Any) -> Defaults:
        extra = {"guild_id": guild_id}
        return await self._update_defaults("channel_defaults", "channel_id", channel_id, extra, changes)

    async def reset_preferences(self, user_id: int) -> None:
        await self._reset_defaults("user_preferences", "user_id", user_id)

    async def reset_channel_defaults(self, channel_id: int) -> None:
        await self._reset_defaults("channel_defaults", "channel_id", channel_id)

    async def _defaults(self, table: str, key: str, id_: int) -> Defaults:
        cached = self._defaults_cache.get((table, id_))
        if cached and cached[0] > time.monotonic():
            return cached[1]
        rows = await self._query(f"SELECT {', '.join(DEFAULT_FIELDS)} FROM {table} WHERE {key} = ?", (id_,))
        defaults = Defaults(**rows[0]) if rows else Defaults()
        self._defaults_cache[(table, id_)] = (time.monotonic() + self._cache_ttl, defaults)
        return defaults

    async def _update_defaults(self, table: str, key: str, id_: int, extra: Row, changes: dict[str, Any]) -> Defaults:
        unknown = changes.keys() - set(DEFAULT_FIELDS)
        if unknown:
            raise TypeError(f"unknown default(s): {', '.join(sorted(unknown))}")
        if changes:
            await self._upsert(table, key, {key: id_, **extra, **changes})
            self._defaults_cache.pop((table, id_), None)
        return await self._defaults(table, key, id_)

    async def _reset_defaults(self, table: str, key: str, id_: int) -> None:
        await self._query(f"DELETE FROM {table} WHERE {key} = ?", (id_,))
        self._defaults_cache.pop((table, id_), None)

    # Results, for rerolls.

    async def save_result(self, record: ResultRecord) -> None:
        await self._upsert("results", "message_id", {**asdict(record), "request": _dump(record.request)})

    async def get_result(self, message_id: int) -> ResultRecord | None:
        rows = await self._query(f"SELECT {_RESULT_COLUMNS} FROM results WHERE message_id = ?", (message_id,))
        return _result_from_row(rows[0]) if rows else None

    async def delete_result(self, message_id: int) -> None:
        """Forget a result (its message was deleted): its buttons and 🔄 no longer work."""
        await self._query("DELETE FROM results WHERE message_id = ?", (message_id,))

    async def purge_results(self, before: float, *, limit: int) -> int:
        """Delete up to `limit` results posted before `before` (unix seconds): their 🔄 no longer works. How many."""
        rows = await self._query(
            "DELETE FROM results WHERE message_id IN"
            " (SELECT message_id FROM results WHERE created_at < ? LIMIT ?) RETURNING message_id",
            (before, limit),
        )
        return len(rows)


@contextmanager
def _wrap_errors(errors: tuple[type[BaseException], ...], what: str) -> Iterator[None]:
    """Report the driver's `errors` raised inside as StoreError, prefixed by `what`."""
    try:
        yield
    except errors as exc:
        raise StoreError(f"{what}: {type(exc).__name__}: {exc}") from exc
