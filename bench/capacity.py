"""The `concurrent` phase of the bot runs (`python -m bench.botrun concurrent`): the capacity run, every job in
flight at once."""

from __future__ import annotations

import asyncio
import sys

from .harness import BotRun, Totals, finish_all, peak_rss, slash, wait_submitted
from .patches import batch_virtual_timers, no_settlement, settle_timeout, step_until


async def concurrent_phase(run: BotRun) -> dict:
    """`jobs` /imagine all in flight at once, then released together, each delivered end to end.

    The server holds every job (it runs with a long duration) until the benchmark calls its
    /_control/finish barrier. Interactions are emitted without simcord's settlement after each one
    (settling rescans every job already in flight, quadratic in their number; that is simcord's
    bookkeeping, not Discord's); the bot handles each as it would any gateway event. Once the server
    holds all `jobs`, they are released, and the virtual clock is driven until every reply ended.
    """
    env, users, channel, args = run.env, run.users, run.channel, run.args
    totals = Totals(args.cpu_split)
    with no_settlement(env):
        for index in range(args.jobs):
            await slash(users[index % len(users)], channel, index, None)
            await asyncio.sleep(0.002)  # let the bot take the event in before the next one
    issued = totals.elapsed()
    async with asyncio.timeout(args.timeout):
        await wait_submitted(args.server, args.jobs)
    submitted = totals.elapsed()
    in_flight = run.in_queue()
    held_jobs = len(env.bot.pipeline.running)
    rss_held = peak_rss()
    released = await finish_all(args.server)

    def progress(virtual_seconds: int) -> None:
        if args.verbose:
            print(
                f"{totals.elapsed():.1f}s virtual +{virtual_seconds}s running={len(env.bot.pipeline.running)}",
                file=sys.stderr,
                flush=True,
            )

    # Virtual time stood still since the first interaction, so every job is waiting for its first poll.
    # Step the clock a second at a time, each step running until the bot is quiet: every timer fires in
    # order (the polls, spaced by the bot's poll-rate ceiling; progress edits and their pacing).
    with batch_virtual_timers(0.1), settle_timeout(env, args.timeout):
        async with asyncio.timeout(args.timeout):
            virtual_seconds, timeouts = await step_until(env, lambda: not env.bot.pipeline.running, progress)
    return {
        "phase": "concurrent",
        "virtual_seconds_to_deliver": virtual_seconds,
        "clock_steps_timed_out": timeouts,
        "in_flight_at_once": in_flight,
        "replies_open_at_once": held_jobs,
        "released_by_server": released,
        "issue_seconds": round(issued, 2),
        "all_submitted_seconds": round(submitted, 2),
        "rss_all_in_flight_mb": round(rss_held / 1024, 1),
        "rss_before_jobs_mb": round(totals.rss_before / 1024, 1),
        **totals.result(run.log, args.jobs),
    }
