"""The `jobs` phase of the bot runs (`python -m bench.botrun jobs`): the progress edits run and the capacity
phase's sequential run (`capacity_sequential`)."""

from __future__ import annotations

import sys
import time

from .harness import BotRun, Totals, edit_stats, interactions, slash
from .patches import Clock


async def jobs_phase(run: BotRun) -> dict:
    """Run `jobs` /imagine at once (as fast as simcord dispatches them) and wait until each ended."""
    from bot.core.model_lists import SD_MODELS

    from .server import BENCH_MODELS

    env, log, users, channel, args = run.env, run.log, run.users, run.channel, run.args
    models = SD_MODELS[:BENCH_MODELS] if args.models else [None]
    totals = Totals(args.cpu_split)
    peak_in_flight = 0
    clock = Clock(env)
    lag = 0.0  # the most the virtual clock fell behind the real one (after a catch-up)
    for index in range(args.jobs):
        await slash(users[index % len(users)], channel, index, models[index % len(models)])
        await clock.catch_up()
        lag = max(lag, clock.behind())
        if args.verbose and index % 50 == 0:
            print(f"issued {index} at {totals.elapsed():.1f}s", file=sys.stderr, flush=True)
        peak_in_flight = max(peak_in_flight, run.in_queue())
    issued = totals.elapsed()
    deadline = time.perf_counter() + args.timeout
    while time.perf_counter() < deadline:
        items = interactions(log)
        ended = sum(1 for item in items.values() if item["edits"] and item["edits"][-1]["final"])
        failed = sum(1 for item in items.values() if item["edits"] and not item["edits"][-1]["final"])
        peak_in_flight = max(peak_in_flight, run.in_queue())
        if ended >= args.jobs or (not env.bot.pipeline.running and len(items) >= args.jobs):
            break  # every job's delivery has ended (a queue slot is freed before the final edit)
        if args.verbose:
            print(
                f"{totals.elapsed():.1f}s ended={ended} failed={failed} items={len(items)} "
                f"running={env.bot.pipeline.queue.running} waiting={env.bot.pipeline.queue.waiting}",
                file=sys.stderr,
                flush=True,
            )
        await clock.run_for(0.1 if not args.verbose else 1.0)
        lag = max(lag, clock.behind())
    await clock.run_for(0.3)  # the reroll reaction and the store write after the final edit
    result = totals.result(log, args.jobs)
    items = interactions(log)
    return {
        "phase": "jobs",
        "peak_in_flight": peak_in_flight,
        "issue_seconds": round(issued, 2),
        "rss_before_jobs_mb": round(totals.rss_before / 1024, 1),
        "progress_interval_s": args.progress_interval,
        "edits": edit_stats([item for item in items.values() if item["edits"]]),
        "virtual_clock_max_lag_s": round(lag, 3),
        **result,
    }
