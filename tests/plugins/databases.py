"""Fixtures: a store on each backend. Every test using `store` runs on SQLite and on PostgreSQL."""

import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from bot.core.store import Store, open_store

TEST_POSTGRES_URL = os.environ.get("TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")


@dataclass
class StoreTarget:
    """One test database; each `open()` is another Store on it (like another process), closed after the test."""

    url: str
    opened: list[Store] = field(default_factory=list)

    async def open(self, **kwargs: float) -> Store:
        store = await open_store(self.url, **kwargs)
        self.opened.append(store)
        return store

    async def close(self) -> None:
        for store in self.opened:
            await store.close()


@asynccontextmanager
async def postgres_schema() -> AsyncIterator[str]:
    """A URL on a fresh schema, dropped afterwards; skips (or fails with REQUIRE_POSTGRES=1) without a server."""
    try:
        import asyncpg

        admin = await asyncpg.connect(TEST_POSTGRES_URL, timeout=3)
    except (ImportError, OSError, TimeoutError) as exc:
        reason = f"PostgreSQL at {TEST_POSTGRES_URL} unavailable: {exc}"
        if os.environ.get("REQUIRE_POSTGRES") == "1":
            pytest.fail(reason)
        pytest.skip(reason)
    schema = f"t_{uuid.uuid4().hex[:12]}"
    await admin.execute(f"CREATE SCHEMA {schema}")
    try:
        # asyncpg sends unknown URL query parameters as server settings, so every pool connection uses the schema.
        yield f"{TEST_POSTGRES_URL}{'&' if '?' in TEST_POSTGRES_URL else '?'}search_path={schema}"
    finally:
        await admin.execute(f"DROP SCHEMA {schema} CASCADE")
        await admin.close()


@pytest.fixture(params=["sqlite", "postgresql"])
async def store_target(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[StoreTarget]:
    if request.param == "sqlite":
        target = StoreTarget(f"sqlite:///{tmp_path}/bot.sqlite3")
        yield target
        await target.close()
    else:
        async with postgres_schema() as url:
            target = StoreTarget(url)
            yield target
            await target.close()


@pytest.fixture
async def store(store_target: StoreTarget) -> Store:
    return await store_target.open()
