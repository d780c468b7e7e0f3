"""`python -m tests.ops.stop_harness`: the real `python -m bot` (`bot.__main__.main`: settings from the environment,
logging, resources, signal handling, exit status) with its connection to Discord replaced by simcord, for
`test_stop.py` to stop with a signal.

Once connected it has a member run /imagine against the Prodia server the environment names, and prints
`ready <journal id>` while that job is in flight (leased to this process). Then it holds the connection until
the bot is stopped, as `bot.connect()` does. Everything but `_connect` is the product's own code.
"""

from __future__ import annotations

import asyncio
import sys

import simcord

import bot.__main__ as entry
from bot.client import ImagineBot, ShardedImagineBot


async def simulated_connect(bot: ImagineBot | ShardedImagineBot, token: str) -> None:
    """What `_connect` does (log in, hold the gateway until closed), against simcord instead of Discord."""
    async with simcord.run(bot, settle_timeout=0.5, check_errors=False) as env:  # simcord logs the bot in
        guild = env.create_guild("Gallery")
        channel = guild.create_text_channel("gen")
        alice = guild.add_member(env.create_user("alice"))
        try:
            await alice.slash(channel, "imagine", prompt="a harbour at night", seed=7)
        except TimeoutError:
            pass  # the job waits on Prodia: not settled, and that is the point
        rows = await bot.pipeline.store._query("SELECT id FROM jobs")
        print("ready", *(row["id"] for row in rows), flush=True)
        closed = asyncio.Event()
        while not bot.is_closed():  # connect() returns once the bot is closed
            try:
                await asyncio.wait_for(closed.wait(), 0.05)
            except TimeoutError:
                pass


if __name__ == "__main__":
    entry._connect = simulated_connect  # type: ignore[assignment]
    sys.exit(entry.main([]))
