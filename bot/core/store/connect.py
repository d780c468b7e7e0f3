"""Opening a store from its database URL: the backend the URL names, its schema brought up to date."""

from __future__ import annotations

from urllib.parse import urlsplit

from .base import Store
from .postgres import PostgresStore, _redact
from .sqlite import SQLiteStore

_SQLITE_PREFIX = "sqlite:///"


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
