"""Fixtures for the bot under simcord: the bot wired to the local Prodia server and a small server world."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import discord
import pytest

from bot import Settings, create_bot
from bot.client import ImagineBot
from devtools.local_prodia import LocalProdia

PRODIA_KEY = "canary-prodia-key-77c1"
DISCORD_TOKEN = "canary-discord-token-0b2e"


def bot_settings(prodia: LocalProdia, api: str, database: str, **extra: str) -> Settings:
    return Settings.from_env(
        {
            "DISCORD_TOKEN": DISCORD_TOKEN,
            "PRODIA_API_KEY": PRODIA_KEY,
            "PRODIA_API": api,
            "PRODIA_BASE_URL": prodia.v1_url if api == "v1" else prodia.v2_url,
            "DATABASE_URL": database,
            "PRODIA_RETRY_DELAY": "0.01",
            "USER_COOLDOWN": "0",
            "PRODIA_POLL_INTERVAL": "0.05",  # real sleeps cost real time under simcord
            "PROGRESS_INTERVAL": "0",  # no pacing unless a test is about it
            **extra,
        }
    )


@pytest.fixture(params=["v1", "v2"])
def api(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def bot_env(tmp_path) -> dict[str, str]:
    """Extra settings for the bot under test; a test may add to it before the bot starts."""
    return {}


@pytest.fixture
def database_url(tmp_path) -> str:
    return f"sqlite:///{tmp_path / 'imagine.sqlite3'}"


@pytest.fixture
async def simcord_bot(prodia, api, database_url, bot_env) -> AsyncIterator[ImagineBot]:
    bots: list[ImagineBot] = []

    def factory() -> ImagineBot:
        bot = create_bot(bot_settings(prodia, api, database_url, **bot_env))
        bots.append(bot)
        return bot

    bot = factory()
    bot.factory = factory  # type: ignore[attr-defined]  # for tests that restart the bot
    yield bot
    for made in bots:  # simcord closes none of them, restarted ones included
        await made.close()


@contextlib.asynccontextmanager
async def arriving_together(env) -> AsyncIterator[None]:
    """Interactions sent inside reach the bot before it has answered any (as a burst reaches a real bot); the bot
    settles once at the end. simcord otherwise settles after each action: `_settle_internal` is its wait for
    that (internal, put back on exit; the benchmark's `no_settlement` replaces it the same way)."""

    async def not_yet(**_options: Any) -> None:
        return None

    env._settle_internal = not_yet
    try:
        yield
    finally:
        del env._settle_internal  # simcord's own again
    await env.settle()


def results_in(channel) -> list[discord.Message]:
    """The finished results in a channel (an embed with its image), oldest first."""
    return [m for m in channel.history() if m.embeds and m.attachments]


@dataclass
class World:
    env: Any
    guild: Any
    channel: Any
    admin: Any  # Manage Server
    alice: Any
    bob: Any
    mod: Any  # Manage Messages

    @property
    def bot(self) -> ImagineBot:
        return self.env.bot

    async def restart(self) -> ImagineBot:
        """Stop the bot as a process stop would (its jobs cancelled mid-way), then start a new one."""
        old = self.env.bot
        await old.close()
        new = old.factory()
        new.factory = old.factory
        await self.env.restart_bot(new)
        return new


@pytest.fixture
def world(simcord_env) -> World:
    env = simcord_env
    guild = env.create_guild("Gallery")
    channel = guild.create_text_channel("gen")
    managers = guild.create_role("Managers", permissions=discord.Permissions(manage_guild=True))
    mods = guild.create_role("Mods", permissions=discord.Permissions(manage_messages=True))
    return World(
        env=env,
        guild=guild,
        channel=channel,
        admin=guild.add_member(env.create_user("admin"), roles=[managers]),
        alice=guild.add_member(env.create_user("alice")),
        bob=guild.add_member(env.create_user("bob")),
        mod=guild.add_member(env.create_user("mod"), roles=[mods]),
    )
