"""`python -m bot` (or `imagine-bot`): read the settings, set up logging, run the bot.

`python -m bot --playground [--port N] [--real-prodia]` runs the bot in a simulated Discord on a local web
page instead, with images from the local Prodia server unless `--real-prodia` says otherwise.
"""

from __future__ import annotations

import argparse
import asyncio
import sys

import aiohttp
import discord

from .client import ImagineBot, ShardedImagineBot, create_bot, freeze_startup_heap
from .core.config import ConfigError, Settings
from .health import health_server
from .logs import setup_logging
from .resources import Resources
from .shutdown import run_until_stopped

DEFAULT_PLAYGROUND_PORT = 8766  # 8765 is the standalone local Prodia server's default


def main(argv: list[str] | None = None) -> int:
    args = _parse_args(argv)
    if args.playground:
        return _playground(args.port, args.open, args.real_prodia)
    try:
        settings = Settings.from_env(runnable=True)  # every missing or invalid setting, named at once
    except ConfigError as exc:
        print(f"Cannot start: {exc}.", file=sys.stderr)
        return 2
    setup_logging(settings)
    try:
        asyncio.run(_run(settings))
    except ConfigError as exc:  # METRICS_PORT already in use
        print(f"Cannot start: {exc}.", file=sys.stderr)
        return 2
    except discord.LoginFailure:
        print(
            "Cannot start: Discord refused DISCORD_TOKEN. Copy the token again from the developer portal.",
            file=sys.stderr,
        )
        return 2
    except aiohttp.ClientConnectionError as exc:  # no network, DNS, a firewall: say so, no traceback
        print(f"Cannot start: Discord could not be reached ({exc}). Check this machine's network.", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        pass
    return 0


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bot",
        description="Run the Imagine Discord bot (settings come from the environment or .env).",
        allow_abbrev=False,
    )
    parser.add_argument(
        "--playground",
        action="store_true",
        help="try the bot without Discord: a simulated Discord server on a local web page (no DISCORD_TOKEN needed)",
    )
    parser.add_argument(
        "--port", type=int, default=DEFAULT_PLAYGROUND_PORT, help="playground port on 127.0.0.1 (default %(default)s)"
    )
    parser.add_argument("--open", action="store_true", help="open the playground in the default browser")
    parser.add_argument(
        "--real-prodia",
        action="store_true",
        help="playground images from Prodia (PRODIA_API_KEY, PRODIA_BASE_URL: uses its credit), not the local server",
    )
    return parser.parse_args(argv)  # an unknown argument: argparse's usage message and exit status 2


def _playground(port: int, open_browser: bool, real_prodia: bool) -> int:
    try:
        from devtools.playground import PortUnavailable, run_playground  # a dev tool: not in the Docker image
    except ImportError as exc:
        print(
            f"Cannot start the playground ({exc}): from a clone of the repository, pip install -e '.[playground]'.",
            file=sys.stderr,
        )
        return 2
    try:
        asyncio.run(run_playground(None, port=port, open_browser=open_browser, real_prodia=real_prodia))
    except ConfigError as exc:
        print(f"Cannot start the playground: {exc}.", file=sys.stderr)
        return 2
    except PortUnavailable as exc:
        print(f"Cannot start the playground: {exc}.", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        pass
    return 0


async def _run(settings: Settings) -> None:
    """The process owns the resources: opened here, handed to the bot, closed here after it, also when
    SIGTERM or SIGINT stops it (`bot.shutdown`). /healthz and /metrics are served meanwhile if METRICS_PORT is set."""
    token = settings.discord_token.reveal()  # type: ignore[union-attr]  # from_env(runnable=True) checked it
    async with (
        Resources.open(settings) as resources,
        create_bot(settings, resources) as bot,
        health_server(bot, settings),
    ):
        await run_until_stopped(bot, _connect(bot, token))


async def _connect(bot: ImagineBot | ShardedImagineBot, token: str) -> None:
    await bot.login(token)  # runs setup_hook: pipeline, extensions, command sync
    freeze_startup_heap()
    await bot.connect()  # returns once the bot is closed


if __name__ == "__main__":
    sys.exit(main())
