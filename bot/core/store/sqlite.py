"""The SQLite backend, the default: one file, one process writing at a time."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiosqlite

from .base import Query, Store, _wrap_errors
from .records import Row, StoreError


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
            # Overwrite deleted content with zeros: a cleared interaction token or a purged row leaves no bytes behind.
            await store._query("PRAGMA secure_delete = ON")
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

    async def checkpoint(self) -> None:
        # The WAL keeps old copies of the pages written (a token since cleared, say) until it is copied back and
        # truncated; busy readers make this a no-op until the next pass.
        await self._query("PRAGMA wal_checkpoint(TRUNCATE)")

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
