"""`python -m bot --playground`: the real bot in simcord's preview, a simulated Discord on a local web page.

A newcomer can type `/imagine`, watch the progress, see the result, use the buttons under it (reroll, edit,
vary, upscale, delete) and react 🔄 without a Discord application. Images come from the local Prodia-compatible
server (:mod:`devtools.local_prodia`), whatever `.env` says, unless `--real-prodia` asks for Prodia as
`PRODIA_API_KEY` and `PRODIA_BASE_URL` configure it (which uses the key's credit). Needs the `playground` extra
(`simcord[preview]`).
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import secrets
import tempfile
import time
import webbrowser
from collections.abc import AsyncIterator, Mapping
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import discord
import simcord
from dotenv import load_dotenv

from bot.client import ImagineBot, create_bot
from bot.core.config import Settings
from bot.logs import setup_logging
from devtools.local_prodia import LocalProdia

NOTICE = "This is a SIMULATION of Discord running the real bot locally; nothing is sent to Discord."
GUILD_NAME = "Imagine Playground"
CHANNEL_NAME = "imagine"
USER_NAME = "you"
# Settings the playground always sets itself: no Discord token, its own database, one unsharded bot.
OWN_SETTINGS = frozenset({"DISCORD_TOKEN", "DATABASE_URL", "SHARD_COUNT", "SHARD_IDS", "SYNC_COMMANDS", "LOG_JSON"})
# Settings of the real Prodia that mean nothing for the local server.
REAL_PRODIA_SETTINGS = frozenset({"PRODIA_API_KEY", "PRODIA_BASE_URL", "PRODIA_PROXY", "PRODIA_IMAGE_HOSTS"})


class PortUnavailable(Exception):
    """The page's port cannot be listened on; the message says why and what to do, in one sentence."""


def playground_settings(environ: Mapping[str, str], *, local_prodia_url: str | None, database_url: str) -> Settings:
    """The bot's settings in the playground: `environ` minus what the playground owns.

    `local_prodia_url` is the local server's root, or None to use real Prodia as `environ` configures it
    (then PRODIA_API_KEY must be set).
    """
    dropped = OWN_SETTINGS | (REAL_PRODIA_SETTINGS if local_prodia_url else frozenset())
    values = {name: value for name, value in environ.items() if name not in dropped}
    values.update(
        # simcord needs no token (nothing connects to Discord); a random one, since the log filter scrubs the
        # token wherever it appears: a plain word would be scrubbed from paths and messages too.
        DISCORD_TOKEN=secrets.token_hex(16),
        DATABASE_URL=database_url,
        USER_COOLDOWN=values.get("USER_COOLDOWN", "1"),
        PROGRESS_INTERVAL=values.get("PROGRESS_INTERVAL", "0.5"),
        LOG_LEVEL=values.get("LOG_LEVEL", "WARNING"),
    )
    if local_prodia_url:
        api = (values.get("PRODIA_API") or "v1").lower()  # v1 (submit + poll) shows every progress state
        values.update(PRODIA_API=api, PRODIA_API_KEY=secrets.token_hex(16), PRODIA_BASE_URL=f"{local_prodia_url}/{api}")
    return Settings.from_env(values, runnable=local_prodia_url is None)


@dataclass
class Playground:
    """The running playground: the simulated Discord, its one server, channel and user, and the bot."""

    env: Any  # simcord.Env
    guild: Any
    channel: Any
    you: Any  # a member with Manage Server, so /settings works too
    settings: Settings
    prodia: LocalProdia | None  # None with real Prodia

    @property
    def bot(self) -> ImagineBot:
        return self.env.bot


def build_world(env: Any) -> tuple[Any, Any, Any]:
    """The server "Imagine Playground" with #imagine and a member "you" who may manage the server."""
    guild = env.create_guild(GUILD_NAME)
    channel = guild.create_text_channel(CHANNEL_NAME)
    managers = guild.create_role("Server managers", permissions=discord.Permissions(manage_guild=True))
    you = guild.add_member(env.create_user(USER_NAME), roles=[managers])
    return guild, channel, you


@asynccontextmanager
async def open_playground(
    settings_env: Mapping[str, str] | None = None,
    *,
    real_prodia: bool = False,
    job_duration: float = 4.0,
    settle_timeout: float = 10.0,
    database_dir: Path | None = None,
) -> AsyncIterator[Playground]:
    """Start the local Prodia server (unless `real_prodia`), the bot under simcord, and the world.

    `settings_env` None reads the environment and `.env`; a PRODIA_API_KEY there is used only with
    `real_prodia`. `job_duration` is how long a local image takes, so the progress is visible. Everything
    is closed on exit.
    """
    if settings_env is None:
        load_dotenv(Path.cwd() / ".env")
        settings_env = os.environ
    async with AsyncExitStack() as stack:
        if database_dir is None:
            database_dir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="imagine-playground-")))
        prodia: LocalProdia | None = None
        if not real_prodia:
            prodia = await stack.enter_async_context(LocalProdia(job_duration=job_duration, image_scale=0.5))
        settings = playground_settings(
            settings_env,
            local_prodia_url=prodia.url if prodia else None,
            database_url=f"sqlite:///{database_dir / 'playground.sqlite3'}",
        )
        bot = create_bot(settings)
        stack.push_async_callback(bot.close)  # simcord never closes the bot
        env = await stack.enter_async_context(simcord.run(bot, settle_timeout=settle_timeout))
        # The result's seconds in real time: simcord's virtual clock stands still during one HTTP request
        # (a v2 job, real Prodia's), so time.monotonic would say 0.0 s. perf_counter is not simulated.
        bot.pipeline.clock = time.perf_counter
        guild, channel, you = build_world(env)
        yield Playground(env=env, guild=guild, channel=channel, you=you, settings=settings, prodia=prodia)


async def _republish_on_change(preview: Any, env: Any, interval: float) -> None:
    """Show the bot's edits as they happen.

    simcord 3.2's preview republishes its pages only after an action taken in the page, so the progress
    edits and the result would wait for "Refresh preview". Republish whenever the bot made a REST call.
    (Private simcord API, pinned by the `playground` extra's version range and by the tests.)
    """
    seen = len(env.http_requests)
    while not preview._closed:
        await asyncio.sleep(interval)
        if len(env.http_requests) != seen and not preview._closed:
            seen = len(env.http_requests)
            preview._advance_presentation_time()
            preview._publish_message_pages(reason="refresh")


@asynccontextmanager
async def live_preview(
    playground: Playground, *, port: int | None = None, interval: float = 0.25
) -> AsyncIterator[Any]:
    """The preview of #imagine as "you" in the channel layout, updated live while the bot works."""
    preview = playground.env.preview(playground.channel, viewers=[playground.you], layout="channel", port=port)
    async with contextlib.AsyncExitStack() as stack:
        try:
            await stack.enter_async_context(preview)
        except simcord.SetupError as exc:  # simcord's, from the OSError of binding the page's port
            if port is None or not isinstance(exc.__cause__, OSError):
                raise
            raise _port_unavailable(port, exc.__cause__) from None
        updater = asyncio.create_task(_republish_on_change(preview, playground.env, interval))
        try:
            yield preview
        finally:
            updater.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await updater


def _port_unavailable(port: int, error: OSError) -> PortUnavailable:
    if error.errno == errno.EADDRINUSE:
        return PortUnavailable(
            f"cannot listen on 127.0.0.1:{port}: it is already in use (by another playground or program); "
            "choose another with --port N"
        )
    return PortUnavailable(f"cannot listen on 127.0.0.1:{port}: {error.strerror or error}")


async def run_playground(
    settings_env: Mapping[str, str] | None, *, port: int, open_browser: bool = False, real_prodia: bool = False
) -> None:
    """Serve the playground on http://127.0.0.1:`port` until the page ends the session or Ctrl-C.

    Raises PortUnavailable when the port is taken, ConfigError when settings are wrong."""
    async with open_playground(settings_env, real_prodia=real_prodia) as playground:
        setup_logging(playground.settings)
        async with live_preview(playground, port=port) as preview:
            source = (
                "the local Prodia server (--real-prodia uses Prodia with your PRODIA_API_KEY)"
                if playground.prodia
                else f"Prodia at {playground.settings.prodia_base_url}, with your PRODIA_API_KEY's credit"
            )
            print(f"\n{NOTICE}\nImages come from {source}.", flush=True)
            print(f"Open: {preview.url}", flush=True)
            print("Type /imagine in #imagine. End with 'End preview session' in the page or Ctrl-C.\n", flush=True)
            if open_browser:
                webbrowser.open(preview.url)
            await preview.wait_closed()
