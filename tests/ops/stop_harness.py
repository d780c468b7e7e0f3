"""`python -m tests.ops.stop_harness [--resume]`: the real `python -m bot` (`bot.__main__.main`: settings from the
environment, logging, resources, signal handling, exit status) with its connection to Discord replaced by simcord,
for `test_stop.py` to stop with a signal (or kill).

Once connected it has a member run /imagine against the Prodia server the environment names, and prints
`ready <journal id>` while that job is in flight (leased to this process). Then it holds the connection until
the bot is stopped, as `bot.connect()` does.

With `--resume` it is the process that starts after another died: it builds the same simulated server (simcord's
ids are deterministic, so the guild and channel have the ids the journal names), runs nothing itself, and moves
simcord's clock a third of JOB_LEASE_SECONDS at a time (the recovery pass's period) until every job in the journal
is finished. Then it prints `done <JSON>` (the jobs as journaled, and what the channel shows) and returns, as
`bot.connect()` does when the bot is closed, so the process exits 0. Everything but `_connect` is the product's own
code.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
import time

import simcord

import bot.__main__ as entry
from bot.client import ImagineBot, ShardedImagineBot

RESUME_TIMEOUT = 60.0  # real seconds the resuming process waits for the journal to finish: a hang guard


def build_world(env: simcord.Env) -> tuple[simcord.ChannelHandle, simcord.MemberActor]:
    guild = env.create_guild("Gallery")
    channel = guild.create_text_channel("gen")
    return channel, guild.add_member(env.create_user("alice"))


async def hold(bot: ImagineBot | ShardedImagineBot) -> None:
    closed = asyncio.Event()
    while not bot.is_closed():  # connect() returns once the bot is closed
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(closed.wait(), 0.05)


async def simulated_connect(bot: ImagineBot | ShardedImagineBot, token: str) -> None:
    """What `_connect` does (log in, hold the gateway until closed), against simcord instead of Discord."""
    async with simcord.run(bot, settle_timeout=0.5, check_errors=False) as env:  # simcord logs the bot in
        channel, alice = build_world(env)
        try:
            await alice.slash(channel, "imagine", prompt="a harbour at night", seed=7)
        except TimeoutError:
            pass  # the job waits on Prodia: not settled, and that is the point
        rows = await bot.pipeline.store._query("SELECT id FROM jobs")
        print("ready", *(row["id"] for row in rows), flush=True)
        await hold(bot)


async def resuming_connect(bot: ImagineBot | ShardedImagineBot, token: str) -> None:
    """The next process: let recovery finish the journal's jobs, then report them and what the channel shows."""
    async with simcord.run(bot, settle_timeout=0.5, check_errors=False) as env:
        # The first process synced its commands (a new database) before it built the world, and simcord numbers
        # both from one counter; this one found them synced. Syncing here too gives the world the same ids.
        await bot.tree.sync()
        channel, _ = build_world(env)
        store = bot.pipeline.store
        deadline = time.time() + RESUME_TIMEOUT  # wall clock: simcord moves time.monotonic itself
        while time.time() < deadline:
            rows = await store._query("SELECT state FROM jobs")
            if rows and all(row["state"] in ("delivered", "failed") for row in rows):
                break
            with contextlib.suppress(TimeoutError):  # a pass waiting on Prodia's HTTP answer is not settled
                await env.advance_time(bot.pipeline.lease / 3)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.Event().wait(), 0.1)  # real time: the dead process's lease lapses
        jobs = await store._query("SELECT id, state, error, attempts, prodia_job_id, updated_at FROM jobs")
        results = [m for m in channel.history() if m.embeds and m.attachments]
        result_sends = [r for r in env.http_requests if isinstance(r.json, dict) and r.json.get("embeds")]
        report = {
            "channel_id": channel.id,
            "jobs": jobs,
            "results": [{"id": m.id, "title": m.embeds[0].title, "image": m.attachments[0].filename} for m in results],
            "result_sends": [f"{r.method} {r.path}" for r in result_sends],
        }
        print("done", json.dumps(report), flush=True)


if __name__ == "__main__":
    entry._connect = resuming_connect if "--resume" in sys.argv[1:] else simulated_connect  # type: ignore[assignment]
    sys.exit(entry.main([]))
