"""Phases 2-4: the real bot (`bot.create_bot`) under simcord, in a process of its own, against the local server.

`python -m bench.botrun PHASE --server URL [--jobs N] [--measure M]` prints one JSON line.

Instrumentation (nothing in the bot changes):
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
import gc
import itertools
import json
import logging
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

import discord
import simcord
from discord import app_commands
from discord.state import ConnectionState

from bot import Settings, create_bot
from bot.client import freeze_startup_heap

from .procs import control

ARRIVED: dict[int, float] = {}
STAGES: dict[str, dict[int, float]] = {"tree": {}, "defer": {}}  # interaction id -> perf_counter at each stage
ADVANCE_SETTLE = 0.5


def _instrument_dispatch() -> None:
    original = ConnectionState.parse_interaction_create

    def parse_interaction_create(self, data):  # type: ignore[no-untyped-def]
        ARRIVED.setdefault(int(data["id"]), time.perf_counter())
        return original(self, data)

    ConnectionState.parse_interaction_create = parse_interaction_create  # type: ignore[method-assign]

    # Where the time between arrival and the defer request goes: the command tree's task starting, and /imagine
    # calling defer() (after its checks).
    tree_call = app_commands.CommandTree._call

    async def _call(self, interaction):  # type: ignore[no-untyped-def]
        STAGES["tree"].setdefault(interaction.id, time.perf_counter())
        return await tree_call(self, interaction)

    app_commands.CommandTree._call = _call  # type: ignore[method-assign]
    defer = discord.InteractionResponse.defer

    async def timed_defer(self, **kwargs):  # type: ignore[no-untyped-def]
        STAGES["defer"].setdefault(self._parent.id, time.perf_counter())
        return await defer(self, **kwargs)

    discord.InteractionResponse.defer = timed_defer  # type: ignore[method-assign]


class TimedLog(list):
    """simcord's HTTP log, with (perf_counter, virtual seconds) for each entry as it is appended."""

    def __init__(self, env: simcord.Env) -> None:
        super().__init__()
        self.env = env
        self.times: list[tuple[float, float]] = []

    def append(self, entry) -> None:  # type: ignore[no-untyped-def]
        self.times.append((time.perf_counter(), self.env.now().timestamp()))
        super().append(entry)


def settings(server: str, database: str, **extra: str) -> Settings:
    return Settings.from_env(
        {
            "DISCORD_TOKEN": "bench-discord-token",
            "PRODIA_API_KEY": "bench-key",
            "PRODIA_API": "v1",
            "PRODIA_BASE_URL": server + "/v1",
            "DATABASE_URL": database,
            "USER_COOLDOWN": "0",
            "USER_MAX_JOBS": "100",
            "MAX_CONCURRENT_JOBS": "1000",
            "QUEUE_SIZE": "1000",
            "LOG_LEVEL": "WARNING",
            **extra,
        }
    )


async def _slash(user, channel, index: int, model: str | None) -> None:  # type: ignore[no-untyped-def]
    options = {"prompt": f"bench {index}", "seed": 5000 + index}
    if model:
        options["model"] = model
    try:
        await user.slash(channel, "imagine", **options)
    except TimeoutError:
        pass  # the bot is busy with other jobs: simcord's settle gave up waiting, the interaction still went out


class Clock:
    """Keeps simcord's virtual clock in step with the real one: the bot's sleeps (polls, edit throttling)
    then end after the real time they asked for, and the job durations at the server are real time too.
    An advance that times out (the bot was busy) leaves the virtual clock behind; the next one makes up the
    difference, so the two clocks do not drift apart."""

    def __init__(self, env) -> None:  # type: ignore[no-untyped-def]
        self.env = env
        self.real_start = time.perf_counter()
        self.virtual_start = env.now().timestamp()

    def behind(self) -> float:
        """Seconds the virtual clock is behind the real one."""
        real = time.perf_counter() - self.real_start
        return real - (self.env.now().timestamp() - self.virtual_start)

    async def catch_up(self) -> None:
        step = self.behind()
        if step <= 0:
            return
        quick = self.env.settle_timeout
        self.env.settle_timeout = ADVANCE_SETTLE  # firing many due timers takes several settle turns
        try:
            await self.env.advance_time(step)
        except TimeoutError:
            pass  # busy: the time up to where the bot got is committed; the rest follows next time
        finally:
            self.env.settle_timeout = quick

    async def run_for(self, seconds: float, tick: float = 0.02) -> None:
        end = time.perf_counter() + seconds
        while time.perf_counter() < end:
            await asyncio.sleep(tick)
            await self.catch_up()


def _interactions(log: TimedLog) -> dict[str, dict]:
    """Per interaction token: id, defer time, and the edits of its reply (method, path, json, real, virtual)."""
    by_token: dict[str, dict] = {}
    for entry, (real, virtual) in zip(log, log.times, strict=True):
        parts = entry.path.strip("/").split("/")
        if parts[0] == "interactions" and parts[-1] == "callback":
            item = by_token.setdefault(parts[2], {"edits": []})
            item["id"] = int(parts[1])
            if (entry.json or {}).get("type") == 5:
                item["defer_real"] = real
        elif parts[0] == "webhooks" and entry.method == "PATCH" and "messages" in parts:
            item = by_token.setdefault(parts[2], {"edits": []})
            body = entry.json or {}
            final = bool(body.get("attachments")) or bool(body.get("embeds"))
            item["edits"].append({"real": real, "virtual": virtual, "final": final, "content": body.get("content")})
    return by_token


def _quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def edit_stats(items: list[dict]) -> dict:
    """Edits per job and the shortest gap between two edits of one message, real and virtual clocks."""
    progress_counts, all_counts = [], []
    gaps = {"progress_real": [], "progress_virtual": [], "any_real": [], "any_virtual": []}
    repeated = 0  # progress edits whose text equals the previous edit's (an edit without a status change)
    for item in items:
        edits = item["edits"]
        progress = [e for e in edits if not e["final"]]
        progress_counts.append(len(progress))
        all_counts.append(len(edits))
        for a, b in itertools.pairwise(progress):
            gaps["progress_real"].append(b["real"] - a["real"])
            gaps["progress_virtual"].append(b["virtual"] - a["virtual"])
            repeated += a["content"] == b["content"]
        for a, b in itertools.pairwise(edits):
            gaps["any_real"].append(b["real"] - a["real"])
            gaps["any_virtual"].append(b["virtual"] - a["virtual"])
    return {
        "messages": len(items),
        "progress_edits_per_job": round(statistics.fmean(progress_counts), 3) if items else None,
        "edits_per_job_incl_result": round(statistics.fmean(all_counts), 3) if items else None,
        "max_progress_edits_one_job": max(progress_counts, default=0),
        "progress_edits_without_status_change": repeated,
        "min_gap_progress_real_s": round(min(gaps["progress_real"]), 3) if gaps["progress_real"] else None,
        "min_gap_progress_virtual_s": round(min(gaps["progress_virtual"]), 3) if gaps["progress_virtual"] else None,
        "min_gap_any_real_s": round(min(gaps["any_real"]), 3) if gaps["any_real"] else None,
        "min_gap_any_virtual_s": round(min(gaps["any_virtual"]), 3) if gaps["any_virtual"] else None,
        "gaps_under_2s_any_real": sum(g < 2.0 for g in gaps["any_real"]),
        "gaps_counted_any": len(gaps["any_real"]),
    }


async def run(args: argparse.Namespace) -> dict:
    _instrument_dispatch()
    logging.basicConfig(level=logging.WARNING)
    with tempfile.TemporaryDirectory() as tmp:
        extra = {
            "PROGRESS_INTERVAL": str(args.progress_interval),
            "PRODIA_MAX_POLLS_PER_SECOND": str(args.max_polls_per_second),
        }
        bot = create_bot(settings(args.server, f"sqlite:///{Path(tmp) / 'bench.sqlite3'}", **extra))
        try:
            async with simcord.run(bot, settle_timeout=args.settle_timeout) as env:
                freeze_startup_heap()  # as `python -m bot` does once the bot is set up
                log = TimedLog(env)
                env.backend.http_requests = log
                guild = env.create_guild("Bench")
                channel = guild.create_text_channel("gen")
                users = [guild.add_member(env.create_user(f"user{i}")) for i in range(args.users)]
                phase = {"ack": ack_phase, "jobs": jobs_phase, "concurrent": concurrent_phase}[args.phase]
                result = await phase(env, log, users, channel, args)
                result["simcord_errors"] = [repr(e)[:200] for e in env.errors[:5]]
                result["simcord_error_count"] = len(env.errors)
        finally:
            await bot.close()
    return result


async def ack_phase(env, log: TimedLog, users, channel, args) -> dict:  # type: ignore[no-untyped-def]
    """Put `jobs` jobs in flight that do not finish, then time `measure` more interactions' defers.

    --fill slash: the in-flight jobs are /imagine interactions through simcord (bot-owned tasks that simcord's
    settlement scans on every later interaction; their poll sleeps are virtual and, with no clock driving,
    never fire, so they do not poll either).
    --fill direct: `bot.core.prodia.generate(job, progress)` tasks started from this driver code, outside simcord's
    bot scope, on the bot's event loop with its aiohttp session, Prodia client and LearnedPolling: simcord does
    not track them, their sleeps are real-time timers, so they keep polling the server during the measurement.
    """
    started = time.perf_counter()
    fill_tasks: list[asyncio.Task] = []
    if args.fill == "direct":
        fill_tasks = _start_direct_jobs(env.bot, args.jobs)
        async with asyncio.timeout(120):
            await _wait_submitted(args.server, args.jobs)
    else:
        # No clock driving here: simcord's settle is quadratic in pending timers, so with 500 jobs advancing the
        # virtual clock costs seconds per step. The jobs' poll sleeps wait on virtual timers that never fire.
        for index in range(args.jobs):
            await _slash(users[index % len(users)], channel, index, None)
    fill_seconds = time.perf_counter() - started
    if args.refuse_timed_jobs:
        # From here on the server refuses new jobs (400, which the bot does not retry): each timed interaction
        # runs /imagine through its defer as usual, then its job ends at submit with the bot's error reply.
        # The load stays the fill's jobs instead of growing by one parked bot job per timed interaction, each
        # of which simcord's settlement would rescan on every later interaction.
        await _refuse_new_jobs(args.server)
    direct_running = sum(not t.done() for t in fill_tasks)
    tracked = sum(t in env._work.tasks for t in fill_tasks)  # simcord's task registry (internal): expect 0
    in_flight = env.bot.pipeline.queue.running + env.bot.pipeline.queue.waiting + direct_running
    before = set(ARRIVED)
    polls_at_fill = await _server_polls(args.server)
    gc_pauses: list[tuple[int, float]] = []  # (generation, ms): are the slow acks garbage collections?
    gc_started = [0.0]

    def on_gc(phase: str, info: dict) -> None:
        if phase == "start":
            gc_started[0] = time.perf_counter()
        else:
            gc_pauses.append((info["generation"], (time.perf_counter() - gc_started[0]) * 1000))

    gc.callbacks.append(on_gc)
    measure_started = time.perf_counter()
    for index in range(args.jobs, args.jobs + args.measure):
        await asyncio.sleep(args.gap)  # let whatever of the in-flight jobs is due run between interactions
        await _slash(users[index % len(users)], channel, index, None)
    window = time.perf_counter() - measure_started
    gc.callbacks.remove(on_gc)
    polls = await _server_polls(args.server)
    await asyncio.sleep(0.5)
    items = _interactions(log)
    latencies, missing = [], 0
    stage_ms: dict[str, list[float]] = {"to_tree": [], "tree_to_defer_call": [], "defer_call_to_request": []}
    for item in items.values():
        ident = item.get("id")
        if ident in ARRIVED and ident not in before:
            if "defer_real" in item:
                latencies.append((item["defer_real"] - ARRIVED[ident]) * 1000)
                tree, deferred = STAGES["tree"].get(ident), STAGES["defer"].get(ident)
                if tree is not None and deferred is not None:
                    stage_ms["to_tree"].append((tree - ARRIVED[ident]) * 1000)
                    stage_ms["tree_to_defer_call"].append((deferred - tree) * 1000)
                    stage_ms["defer_call_to_request"].append((item["defer_real"] - deferred) * 1000)
            else:
                missing += 1
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
        "ack_ms_mean": round(statistics.fmean(latencies), 3) if latencies else None,
        "ack_ms_p50": round(_quantile(latencies, 0.5), 3) if latencies else None,
        "ack_ms_p99": round(_quantile(latencies, 0.99), 3) if latencies else None,
        "ack_ms_max": round(max(latencies), 3) if latencies else None,
        "stages_ms": {
            name: {"p50": round(_quantile(v, 0.5), 3), "p99": round(_quantile(v, 0.99), 3), "max": round(max(v), 3)}
            for name, v in stage_ms.items()
            if v
        },
        "ack_ms_p90_by_quarter": _p90_by_quarter(ARRIVED, before, items),
        "gc_collections": {gen: sum(1 for g, _ in gc_pauses if g == gen) for gen in (0, 1, 2)},
        "gc_pause_ms_max": round(max((ms for _, ms in gc_pauses), default=0.0), 3),
        "gc_gen2_pause_ms": [round(ms, 1) for g, ms in gc_pauses if g == 2],
    }


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
    return [round(_quantile([ms for _, ms in timed[i * size : (i + 1) * size]], 0.9), 3) for i in range(4)]


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


async def _refuse_new_jobs(server: str) -> None:
    fault = {"kind": "status", "status": 400, "times": None, "path": "*/generate", "message": "bench: no new jobs"}
    await control(server, "POST", "/_control/faults", fault)


async def _wait_submitted(server: str, count: int) -> None:
    """Until the server holds `count` jobs (each in-flight job submitted and now polling)."""
    while True:  # the server is another process: polling its control API is the only way to know
        if len(await control(server, "GET", "/_control/jobs")) >= count:
            return
        await asyncio.sleep(0.1)


async def jobs_phase(env, log: TimedLog, users, channel, args) -> dict:  # type: ignore[no-untyped-def]
    """Run `jobs` /imagine at once (as fast as simcord dispatches them) and wait until each ended."""
    from bot.core.model_lists import SD_MODELS

    from .server import BENCH_MODELS

    models = SD_MODELS[:BENCH_MODELS] if args.models else [None]
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    sampler = None
    if args.cpu_split:
        from .sampler import Sampler

        sampler = Sampler().__enter__()
    cpu0, wall0 = time.process_time(), time.perf_counter()
    peak_in_flight = 0
    clock = Clock(env)
    lag = 0.0  # the most the virtual clock fell behind the real one (after a catch-up)
    for index in range(args.jobs):
        await _slash(users[index % len(users)], channel, index, models[index % len(models)])
        await clock.catch_up()
        lag = max(lag, clock.behind())
        if args.verbose and index % 50 == 0:
            print(f"issued {index} at {time.perf_counter() - wall0:.1f}s", file=sys.stderr, flush=True)
        peak_in_flight = max(peak_in_flight, env.bot.pipeline.queue.running + env.bot.pipeline.queue.waiting)
    issued = time.perf_counter() - wall0
    deadline = time.perf_counter() + args.timeout
    while time.perf_counter() < deadline:
        items = _interactions(log)
        ended = sum(1 for item in items.values() if item["edits"] and item["edits"][-1]["final"])
        failed = sum(1 for item in items.values() if item["edits"] and not item["edits"][-1]["final"])
        peak_in_flight = max(peak_in_flight, env.bot.pipeline.queue.running + env.bot.pipeline.queue.waiting)
        if ended >= args.jobs or (not env.bot.pipeline.running and len(items) >= args.jobs):
            break  # every job's delivery has ended (a queue slot is freed before the final edit)
        if args.verbose:
            print(
                f"{time.perf_counter() - wall0:.1f}s ended={ended} failed={failed} items={len(items)} "
                f"running={env.bot.pipeline.queue.running} waiting={env.bot.pipeline.queue.waiting}",
                file=sys.stderr,
                flush=True,
            )
        await clock.run_for(0.1 if not args.verbose else 1.0)
        lag = max(lag, clock.behind())
    await clock.run_for(0.3)  # the reroll reaction and the store write after the final edit
    totals = _totals(log, args.jobs, cpu0, wall0, sampler)
    items = _interactions(log)
    return {
        "phase": "jobs",
        "peak_in_flight": peak_in_flight,
        "issue_seconds": round(issued, 2),
        "rss_before_jobs_mb": round(rss_before / 1024, 1),
        "edits": edit_stats([item for item in items.values() if item["edits"]]),
        "virtual_clock_max_lag_s": round(lag, 3),
        **totals,
    }


def _totals(log: TimedLog, jobs: int, cpu0: float, wall0: float, sampler) -> dict:  # type: ignore[no-untyped-def]
    """What every jobs run reports at its end: deliveries, CPU, wall time, peak RSS."""
    cpu = time.process_time() - cpu0
    wall = time.perf_counter() - wall0
    if sampler is not None:
        sampler.__exit__(None, None, None)
    items = _interactions(log)
    delivered = sum(1 for item in items.values() if any(e["final"] for e in item["edits"]))
    return {
        "jobs": jobs,
        "delivered": delivered,
        "not_delivered": jobs - delivered,
        "wall_seconds": round(wall, 2),
        "cpu_seconds": round(cpu, 3),
        "cpu_ms_per_job": round(1000 * cpu / jobs, 3),
        "cpu_split": sampler.split(cpu, jobs) if sampler is not None else None,
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "last_content_of_undelivered": [
            (item["edits"][-1]["content"] or "")[:80]
            for item in items.values()
            if item["edits"] and not item["edits"][-1]["final"]
        ][:3],
    }


async def concurrent_phase(env, log: TimedLog, users, channel, args) -> dict:  # type: ignore[no-untyped-def]
    """`jobs` /imagine all in flight at once, then released together, each delivered end to end.

    The server holds every job (it runs with a long duration) until the benchmark calls its
    /_control/finish barrier. Interactions are emitted without simcord's settlement after each one
    (settling rescans every job already in flight, quadratic in their number; that is simcord's
    bookkeeping, not Discord's); the bot handles each as it would any gateway event. Once the server
    holds all `jobs`, they are released, and the virtual clock is driven until every reply ended.
    """
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    sampler = None
    if args.cpu_split:
        from .sampler import Sampler

        sampler = Sampler().__enter__()
    cpu0, wall0 = time.process_time(), time.perf_counter()
    settle = env._settle_internal  # simcord internal: the wait for quiescence after each actor operation

    async def no_settle(**_kwargs) -> None:  # type: ignore[no-untyped-def]
        return None

    env._settle_internal = no_settle
    try:
        for index in range(args.jobs):
            await _slash(users[index % len(users)], channel, index, None)
            await asyncio.sleep(0.002)  # let the bot take the event in before the next one
    finally:
        env._settle_internal = settle
    issued = time.perf_counter() - wall0
    async with asyncio.timeout(args.timeout):
        await _wait_submitted(args.server, args.jobs)
    submitted = time.perf_counter() - wall0
    in_flight = env.bot.pipeline.queue.running + env.bot.pipeline.queue.waiting
    held_jobs = len(env.bot.pipeline.running)
    rss_held = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    released = await _finish_all(args.server)
    _batch_virtual_timers(0.1)
    # Virtual time stood still since the first interaction, so every job is waiting for its first poll.
    # Step the clock a second at a time, each step running until the bot is quiet: every timer fires in
    # order (the polls, spaced by the bot's poll-rate ceiling; progress edits and their pacing).
    quick, env.settle_timeout = env.settle_timeout, args.timeout
    virtual_seconds = timeouts = 0
    try:
        async with asyncio.timeout(args.timeout):
            while env.bot.pipeline.running:
                try:
                    await env.advance_time(1.0)
                except TimeoutError:
                    timeouts += 1  # a fallback advance simcord began earlier gave up; what it reached stays
                virtual_seconds += 1
                if args.verbose:
                    print(
                        f"{time.perf_counter() - wall0:.1f}s virtual +{virtual_seconds}s "
                        f"running={len(env.bot.pipeline.running)}",
                        file=sys.stderr,
                        flush=True,
                    )
            await env.advance_time(1.0)  # the reroll reaction and the store write after the final edit
    finally:
        env.settle_timeout = quick
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
        "rss_before_jobs_mb": round(rss_before / 1024, 1),
        **_totals(log, args.jobs, cpu0, wall0, sampler),
    }


def _batch_virtual_timers(quantum: float) -> None:
    """simcord advances its clock one timer instant at a time and settles the whole bot after each; with
    a thousand jobs' timers that is a thousand settlements per virtual second. Rounding the next instant
    up to `quantum` fires the timers due within it together (each at most `quantum` late)."""
    import math

    from simcord import env as simcord_env

    exact = simcord_env._next_virtual_timer

    def batched(state):  # type: ignore[no-untyped-def]
        instant = exact(state)
        return None if instant is None else math.ceil(instant / quantum) * quantum

    simcord_env._next_virtual_timer = batched


async def _finish_all(server: str) -> int:
    return int((await control(server, "POST", "/_control/finish"))["finished"])


async def _server_polls(server: str) -> int | None:
    """Poll requests the server answered so far: shows whether in-flight jobs were polling meanwhile."""
    import aiohttp

    try:
        return sum(job["polls"] for job in await control(server, "GET", "/_control/jobs"))
    except (aiohttp.ClientError, ValueError):
        return None


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.botrun")
    parser.add_argument("phase", choices=["ack", "jobs", "concurrent"])
    parser.add_argument("--server", required=True)
    parser.add_argument("--jobs", type=int, default=500)
    parser.add_argument("--measure", type=int, default=200, help="ack: interactions timed after the fill")
    parser.add_argument(
        "--fill", choices=["direct", "slash"], default="direct", help="ack: how the in-flight jobs are started"
    )
    parser.add_argument(
        "--refuse-timed-jobs", action="store_true", help="ack: the server refuses the timed interactions' jobs"
    )
    parser.add_argument("--gap", type=float, default=0.01, help="ack: real seconds between timed interactions")
    parser.add_argument("--users", type=int, default=20)
    parser.add_argument("--models", action="store_true", help="jobs: spread jobs over the benchmark's models")
    parser.add_argument("--settle-timeout", type=float, default=0.05)
    parser.add_argument("--progress-interval", type=float, default=2.0)
    parser.add_argument("--max-polls-per-second", type=float, default=100.0)
    parser.add_argument("--timeout", type=float, default=300.0, help="jobs: give up waiting after this long")
    parser.add_argument("--verbose", action="store_true")
    parser.add_argument("--cpu-split", action="store_true", help="jobs: sample the main thread (bench/sampler.py)")
    return parser.parse_args(argv)


if __name__ == "__main__":
    print(json.dumps(asyncio.run(run(parse_args()))), flush=True)
    sys.stdout.flush()
