"""`python -m bot` (or `imagine-bot`): read the settings, set up logging, run the bot."""

from __future__ import annotations

import asyncio
import sys

import discord

from .client import create_bot
from .config import ConfigError, Settings
from .logs import setup_logging


def main() -> int:
    try:
        settings = Settings.from_env()
        settings.require_runnable()
    except ConfigError as exc:
        print(f"Cannot start: {exc}.", file=sys.stderr)
        return 2
    setup_logging(settings)
    try:
        asyncio.run(_run(settings))
    except discord.LoginFailure:
        print(
            "Cannot start: Discord refused DISCORD_TOKEN. Copy the token again from the developer portal.",
            file=sys.stderr,
        )
        return 2
    except KeyboardInterrupt:
        pass
    return 0


async def _run(settings: Settings) -> None:
    async with create_bot(settings) as bot:
        await bot.start(settings.discord_token.reveal())  # type: ignore[union-attr]


if __name__ == "__main__":
    sys.exit(main())
