"""The PostgreSQL backend, for several bot processes sharing one database. asyncpg is imported only when
it is used, so SQLite users need not install it."""

from __future__ import annotations

import itertools
import re
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from functools import lru_cache, partial
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

from .base import Query, Store, _wrap_errors
from .records import Row

if TYPE_CHECKING:
    import asyncpg

_MIGRATION_LOCK_KEY = 0x696D6167  # "imag": any constant shared by every process of the bot


class PostgresStore(Store):
    """An asyncpg pool; safe to share one database between several bot processes."""

    backend = "postgresql"
    # Per schema: the processes of one bot migrate one at a time, and bots (or tests) in other schemas of the same
    # database never wait on each other.
    _migration_lock = f"SELECT pg_advisory_xact_lock({_MIGRATION_LOCK_KEY}, hashtext(current_schema()))"
    _limit_lock = "SELECT pg_advisory_xact_lock(?)"
    _skip_locked = " FOR UPDATE SKIP LOCKED"

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
    """`url` with its password, if any, replaced by `***`: for error messages."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    user_info, _, host = parts.netloc.rpartition("@")
    return urlunsplit(parts._replace(netloc=f"{user_info.partition(':')[0]}:***@{host}"))
