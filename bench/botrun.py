"""Phases 3-5 (bench/README.md): the real bot (`bot.create_bot`) under simcord, in a process of its own,
against the local server.

`python -m bench.botrun PHASE --server URL [--jobs N] [--measure M]` prints one JSON line. The phases:
`ack` (`bench/ack.py`), `jobs` (`bench/jobs.py`) and `concurrent` (`bench/capacity.py`); what they share is in
`bench/harness.py`.

Instrumentation (nothing in the bot changes; every run-time replacement is in `bench/patches.py`):
- "interaction reaches the bot": time.perf_counter() when discord.py's ConnectionState.parse_interaction_create
  starts for that interaction (the gateway event's first bot-side code);
- every HTTP request the bot sends to (simulated) Discord is timestamped when simcord's router logs it, i.e.
  when the request goes out: the defer is `POST /interactions/{id}/{token}/callback` with type 5, each edit a
  `PATCH /webhooks/{app}/{token}/messages/...` (or `/channels/.../messages/...` with the bot token).
  Each entry gets time.perf_counter() (real) and simcord's virtual clock (what the bot's time.monotonic sees).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
import tempfile
from pathlib import Path

import simcord

from bot import Settings, create_bot
from bot.client import freeze_startup_heap
from bot.logs import setup_logging

from .ack import ack_phase
from .capacity import SETTINGS as CAPACITY_SETTINGS
from .capacity import concurrent_phase
from .harness import BotRun, non_default
from .jobs import jobs_phase
from .patches import DispatchTimes, instrument_dispatch, timed_http_log

PHASES = {"ack": ack_phase, "jobs": jobs_phase, "concurrent": concurrent_phase}
# What the ack and jobs phases change besides the connection settings.
LIMITS_RAISED = {
    "USER_COOLDOWN": "0",
    "USER_MAX_JOBS": "100",
    "MAX_CONCURRENT_JOBS": "1000",
    "QUEUE_SIZE": "1000",
    "LOG_LEVEL": "WARNING",
}


def settings(server: str, database: str, **extra: str) -> Settings:
    """The bot's settings against the local server: `extra` over the connection settings every phase needs."""
    return Settings.from_env(
        {
            "DISCORD_TOKEN": "bench-discord-token",
            "PRODIA_API_KEY": "bench-key",
            "PRODIA_API": "v1",
            "PRODIA_BASE_URL": server + "/v1",
            "DATABASE_URL": database,
            **extra,
        }
    )


async def run(args: argparse.Namespace) -> dict:
    times = DispatchTimes()
    if args.phase == "concurrent":  # the bot's defaults but for what an operator of a large bot raises
        extra = {name: value for name, (value, _why) in CAPACITY_SETTINGS.items()}
    else:
        extra = {
            **LIMITS_RAISED,
            "PROGRESS_INTERVAL": str(args.progress_interval),
            "PRODIA_MAX_POLLS_PER_SECOND": str(args.max_polls_per_second),
        }
    # The dispatch patches go in before create_bot: discord.py collects its event parsers when the client is made.
    with instrument_dispatch(times), tempfile.TemporaryDirectory() as tmp:
        bot_settings = settings(args.server, f"sqlite:///{Path(tmp) / 'bench.sqlite3'}", **extra)
        if args.phase == "concurrent":
            setup_logging(bot_settings)  # as `python -m bot` does: INFO, one line per job
        else:
            logging.basicConfig(level=logging.WARNING)
        bot = create_bot(bot_settings)
        try:
            async with simcord.run(bot, settle_timeout=args.settle_timeout) as env:
                freeze_startup_heap()  # as `python -m bot` does once the bot is set up
                with timed_http_log(env) as log:
                    guild = env.create_guild("Bench")
                    channel = guild.create_text_channel("gen")
                    users = [guild.add_member(env.create_user(f"user{i}")) for i in range(args.users)]
                    result = await PHASES[args.phase](BotRun(env, log, times, users, channel, args))
                result["non_default_settings"] = non_default(bot_settings)
                result["simcord_errors"] = [repr(e)[:200] for e in env.errors[:5]]
                result["simcord_error_count"] = len(env.errors)
        finally:
            await bot.close()
    return result


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.botrun")
    parser.add_argument("phase", choices=list(PHASES))
    parser.add_argument("--server", required=True)
    parser.add_argument("--jobs", type=int, default=500)
    parser.add_argument(
        "--measure", type=int, default=200, help="ack: interactions timed after the fill; concurrent: while delivering"
    )
    parser.add_argument(
        "--fill", choices=["direct", "slash"], default="direct", help="ack: how the in-flight jobs are started"
    )
    parser.add_argument(
        "--refuse-timed-jobs", action="store_true", help="ack: the server refuses the timed interactions' jobs"
    )
    parser.add_argument(
        "--gap", type=float, default=0.01, help="ack, concurrent: real seconds between timed interactions"
    )
    parser.add_argument("--spread", type=float, default=30.0, help="concurrent: results end over this many seconds")
    parser.add_argument("--users", type=int, default=20)
    parser.add_argument("--models", action="store_true", help="jobs: spread jobs over the benchmark's models")
    parser.add_argument("--settle-timeout", type=float, default=0.05)
    parser.add_argument("--progress-interval", type=float, default=2.0, help="ack, jobs (concurrent: the default)")
    parser.add_argument("--max-polls-per-second", type=float, default=100.0, help="ack, jobs (concurrent: the default)")
    parser.add_argument("--timeout", type=float, default=300.0, help="jobs: give up waiting after this long")
    parser.add_argument("--verbose", action="store_true")
    parser.add_argument("--cpu-split", action="store_true", help="jobs: sample the main thread (bench/sampler.py)")
    return parser.parse_args(argv)


if __name__ == "__main__":
    print(json.dumps(asyncio.run(run(parse_args()))), flush=True)
    sys.stdout.flush()
