"""What the bot needs from outside Discord, opened once and closed once: the aiohttp session and the store.

The entry point opens them (`async with Resources.open(settings)`) and hands them to `create_bot`; an
embedder that passes none gets a bot that opens and closes its own.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass

import aiohttp
import discord

from .core.config import Settings
from .core.store import Store, open_store

VERSION = "0.1.0"
USER_AGENT = f"ImagineBot/{VERSION} (discord.py {discord.__version__})"


@dataclass(frozen=True)
class Resources:
    session: aiohttp.ClientSession  # the one session: Prodia calls and image downloads
    store: Store

    @classmethod
    @contextlib.asynccontextmanager
    async def open(cls, settings: Settings) -> AsyncIterator[Resources]:
        async with contextlib.AsyncExitStack() as stack:
            session = await stack.enter_async_context(
                aiohttp.ClientSession(
                    headers={"User-Agent": USER_AGENT},
                    timeout=aiohttp.ClientTimeout(total=None, connect=15, sock_connect=15),
                )
            )
            store = await open_store(settings.database_url)
            stack.push_async_callback(store.close)
            yield cls(session, store)
