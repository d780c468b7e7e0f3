"""Fixtures for the bot under simcord: the bot wired to the local Prodia server and a small server world."""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import discord
import pytest
from simcord.backend.errors import BackendError
from simcord.backend.ops.commands import CommandsMixin

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


@pytest.fixture
def tokens_expire_as_on_discord(monkeypatch: pytest.MonkeyPatch) -> None:
    """A request on an interaction token past its 15 minutes is answered as Discord answers it: 401, code 50027
    ("Invalid Webhook Token"); simcord says 404 (10015). Wraps simcord's token lookup, put back after the test."""
    lookup = CommandsMixin.interaction_by_token

    def as_discord(backend: CommandsMixin, token: str) -> Any:
        interaction = backend.interactions.get(backend.interaction_tokens.get(token, 0))
        if interaction is not None and interaction.expires_at and backend.now_iso() >= interaction.expires_at:
            raise BackendError(401, 50027, "Invalid Webhook Token")
        return lookup(backend, token)

    monkeypatch.setattr(CommandsMixin, "interaction_by_token", as_discord)


@pytest.fixture
def wall_clock_on_discord_time(simcord_env, monkeypatch: pytest.MonkeyPatch) -> None:
    """From now on the bot's wall clock (`time.time`) reads simcord's virtual clock, as simcord already makes
    `time.monotonic` and discord.py's `utcnow` do: what the bot measures in wall-clock seconds (job leases, expired
    interaction tokens in the journal) moves with `env.advance_time`, and agrees with Discord's times (an
    interaction's creation) as it does in production. Without it the two clocks are months apart."""
    monkeypatch.setattr(time, "time", lambda: simcord_env.now().timestamp())
