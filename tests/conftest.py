from collections.abc import AsyncIterator

import pytest

from devtools.local_prodia import LocalProdia
from tests.proxy import ForwardProxy


@pytest.fixture
async def prodia() -> AsyncIterator[LocalProdia]:
    """A local Prodia server (v1 and v2) with tiny images, closed after the test."""
    async with LocalProdia(image_scale=0.125) as server:
        yield server


@pytest.fixture
async def forward_proxy() -> AsyncIterator[ForwardProxy]:
    """A plain-HTTP forward proxy recording the absolute URLs it forwarded in `.seen`."""
    async with ForwardProxy() as proxy:
        yield proxy


# --- Store fixtures: every test using `store` runs on SQLite and on PostgreSQL. ---

import os  # noqa: E402
import uuid  # noqa: E402
from contextlib import asynccontextmanager  # noqa: E402
from dataclasses import dataclass, field  # noqa: E402
from pathlib import Path  # noqa: E402

from bot.core.store import Store, open_store  # noqa: E402

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
async def _postgres_schema() -> AsyncIterator[str]:
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
        async with _postgres_schema() as url:
            target = StoreTarget(url)
            yield target
            await target.close()


@pytest.fixture
async def store(store_target: StoreTarget) -> Store:
    return await store_target.open()


pytest_plugins = ["tests.discord_world"]
