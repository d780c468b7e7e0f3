"""The `ack` phase of the bot runs (`python -m bench.botrun ack`): acknowledgement latency with jobs in flight."""

from __future__ import annotations

import asyncio
import statistics
import time

from .harness import BotRun, interactions, quantile, refuse_new_jobs, server_polls, slash, wait_submitted
from .patches import DispatchTimes, record_gc_pauses


async def ack_phase(run: BotRun) -> dict:
    """Put `jobs` jobs in flight that do not finish, then time `measure` more interactions' defers.

    --fill slash: the in-flight jobs are /imagine interactions through simcord (bot-owned tasks that simcord's
    settlement scans on every later interaction; their poll sleeps are virtual and, with no clock driving,
    never fire, so they do not poll either).
    --fill direct: `bot.core.prodia.generate(job, progress)` tasks started from this driver code, outside simcord's
    bot scope, on the bot's event loop with its aiohttp session, Prodia client and HazardPolling: simcord does
    not track them, their sleeps are real-time timers, so they keep polling the server during the measurement.
    """
    env, users, channel, args = run.env, run.users, run.channel, run.args
    started = time.perf_counter()
    fill_tasks: list[asyncio.Task] = []
    if args.fill == "direct":
        fill_tasks = _start_direct_jobs(env.bot, args.jobs)
        async with asyncio.timeout(120):
            await wait_submitted(args.server, args.jobs)
    else:
        # No clock driving here: simcord's settle is quadratic in pending timers, so with 500 jobs advancing the
        # virtual clock costs seconds per step. The jobs' poll sleeps wait on virtual timers that never fire.
        for index in range(args.jobs):
            await slash(users[index % len(users)], channel, index, None)
    fill_seconds = time.perf_counter() - started
    if args.refuse_timed_jobs:
        # From here on the server refuses new jobs (400, which the bot does not retry): each timed interaction
        # runs /imagine through its defer as usual, then its job ends at submit with the bot's error reply.
        # The load stays the fill's jobs instead of growing by one parked bot job per timed interaction, each
        # of which simcord's settlement would rescan on every later interaction.
        await refuse_new_jobs(args.server)
    direct_running = sum(not t.done() for t in fill_tasks)
    tracked = sum(t in env._work.tasks for t in fill_tasks)  # simcord's task registry (internal): expect 0
    in_flight = run.in_queue() + direct_running
    before = set(run.times.arrived)
    polls_at_fill = await server_polls(args.server)
    with record_gc_pauses() as gc_pauses:
        measure_started = time.perf_counter()
        for index in range(args.jobs, args.jobs + args.measure):
            await asyncio.sleep(args.gap)  # let whatever of the in-flight jobs is due run between interactions
            await slash(users[index % len(users)], channel, index, None)
        window = time.perf_counter() - measure_started
    polls = await server_polls(args.server)
    await asyncio.sleep(0.5)
    items = interactions(run.log)
    latencies, stage_ms, missing = _latencies(run.times, before, items)
    failed = [t for t in fill_tasks if t.done()]
    for task in fill_tasks:
        task.cancel()
    await asyncio.gather(*fill_tasks, return_exceptions=True)
    during = None if polls is None or polls_at_fill is None else polls - polls_at_fill
    return {
        "phase": "ack",
        "fill": args.fill,
        "timed_jobs_refused": args.refuse_timed_jobs,
        "measure_seconds": round(window, 2),
        "polls_during_measurement": during,
        "polls_per_second_during_measurement": None if during is None else round(during / window, 1),
        "in_flight_before_measuring": in_flight,
        "direct_jobs_running": direct_running,
        "direct_jobs_tracked_by_simcord": tracked,
        "direct_jobs_ended_early": len(failed),
        "direct_job_errors": [repr(t.exception())[:160] for t in failed if not t.cancelled() and t.exception()][:3],
        "running_at_prodia": env.bot.pipeline.queue.running + direct_running,
        "fill_seconds": round(fill_seconds, 2),
        "measured": len(latencies),
        "no_defer": missing,
        **ack_summary(latencies, stage_ms),
        "ack_ms_p90_by_quarter": _p90_by_quarter(run.times.arrived, before, items),
        "gc_collections": {gen: sum(1 for g, _ in gc_pauses if g == gen) for gen in (0, 1, 2)},
        "gc_pause_ms_max": round(max((ms for _, ms in gc_pauses), default=0.0), 3),
        "gc_gen2_pause_ms": [round(ms, 1) for g, ms in gc_pauses if g == 2],
    }


def ack_summary(latencies: list[float], stage_ms: dict[str, list[float]]) -> dict:
    """Mean, p50, p99 and max of the acknowledgements (ms), and p50, p99 and max of each stage."""
    return {
        "ack_ms_mean": round(statistics.fmean(latencies), 3) if latencies else None,
        "ack_ms_p50": round(quantile(latencies, 0.5), 3) if latencies else None,
        "ack_ms_p99": round(quantile(latencies, 0.99), 3) if latencies else None,
        "ack_ms_max": round(max(latencies), 3) if latencies else None,
        "stages_ms": {
            name: {"p50": round(quantile(v, 0.5), 3), "p99": round(quantile(v, 0.99), 3), "max": round(max(v), 3)}
            for name, v in stage_ms.items()
            if v
        },
    }


def _latencies(
    times: DispatchTimes, before: set[int], items: dict[str, dict]
) -> tuple[list[float], dict[str, list[float]], int]:
    """For the timed interactions (arrived after `before`): arrival-to-defer-request ms, the same split by stage,
    and how many had no defer request."""
    latencies, missing = [], 0
    stage_ms: dict[str, list[float]] = {"to_tree": [], "tree_to_defer_call": [], "defer_call_to_request": []}
    for item in items.values():
        ident = item.get("id")
        if ident in times.arrived and ident not in before:
            if "defer_real" in item:
                arrived = times.arrived[ident]
                latencies.append((item["defer_real"] - arrived) * 1000)
                tree, deferred = times.tree.get(ident), times.defer.get(ident)
                if tree is not None and deferred is not None:
                    stage_ms["to_tree"].append((tree - arrived) * 1000)
                    stage_ms["tree_to_defer_call"].append((deferred - tree) * 1000)
                    stage_ms["defer_call_to_request"].append((item["defer_real"] - deferred) * 1000)
            else:
                missing += 1
    return latencies, stage_ms, missing


def _p90_by_quarter(arrived: dict[int, float], before: set[int], items: dict[str, dict]) -> list[float]:
    """The acknowledgement p90 in each quarter of the timed interactions, in arrival order: flat if the
    latency does not depend on how long the run has gone on (it grew when simcord's tracked work did)."""
    timed = sorted(
        (arrived[item["id"]], (item["defer_real"] - arrived[item["id"]]) * 1000)
        for item in items.values()
        if item.get("id") in arrived and item["id"] not in before and "defer_real" in item
    )
    size = len(timed) // 4
    if not size:
        return []
    return [round(quantile([ms for _, ms in timed[i * size : (i + 1) * size]], 0.9), 3) for i in range(4)]


def _start_direct_jobs(bot, count: int) -> list[asyncio.Task]:  # type: ignore[no-untyped-def]
    """`count` generations through the bot's own Prodia client, started from driver code (not bot-owned)."""
    from bot.core.request import GenerationRequest

    async def progress(_update) -> None:  # type: ignore[no-untyped-def]
        return None

    loop = asyncio.get_running_loop()
    tasks = []
    for index in range(count):
        job = bot.pipeline.catalog.prepare(GenerationRequest(prompt=f"in flight {index}", seed=90000 + index))
        tasks.append(loop.create_task(bot.pipeline.prodia.generate(job, progress)))
    return tasks
