"""The `concurrent` phase of the bot runs (`python -m bench.botrun concurrent`): the capacity run. 1,000 /imagine
in flight at once, their 1024x1024 results (PNG and JPEG) ending over about 30 s, acknowledgements timed while
they are delivered; the bot at its default settings but for what an operator of a large bot raises."""

from __future__ import annotations

import asyncio
import gc
import logging
import statistics
import time
from collections import Counter

from bot.core.model_lists import SDXL_MODELS

from .ack import _latencies, _p90_by_quarter, ack_summary
from .harness import (
    BotRun,
    Totals,
    edit_stats,
    finish_all,
    interactions,
    non_default,
    peak_rss,
    quantile,
    server_polls,
    slash,
    wait_submitted,
)
from .patches import TimedLog, no_settlement, record_gc_pauses, unscoped_bot, upload_sizes_only
from .procs import control

MODEL = SDXL_MODELS[0]  # SDXL's square is 1024x1024, as Prodia makes it
HOLD = 3600  # seconds a capacity job lasts at the server, until the release spreads its end
PROBE_SECONDS = 1  # each timed interaction's own job
SEED = 7
# What the run raises from the bot's defaults: (value, reason). The report lists every setting that differs,
# computed from the bot's Settings, with its reason from WHY; one without a reason fails a target.
SETTINGS = {
    "MAX_CONCURRENT_JOBS": (
        "1000",
        "default 4: jobs at Prodia at once. 1,000 in flight is the run; an operator with that many users raises "
        "it to what the Prodia plan allows (1000 is the setting's maximum)",
    ),
    "QUEUE_SIZE": (
        "1000",
        "default 50: jobs waiting behind the running ones. The timed interactions' jobs arrive while the 1,000 "
        "hold every slot; with 50 places some would be refused before their defer, so the defer (what is timed) "
        "would not happen",
    ),
}
WHY = {
    **{name: why for name, (_value, why) in SETTINGS.items()},
    "DISCORD_TOKEN": "required; any value: simcord stands in for Discord",
    "PRODIA_API_KEY": "required; any value: the local server stands in for Prodia",
    "PRODIA_API": "default v2: v1 is Prodia's submit-then-poll API whose results come from an imageUrl (PNG or "
    "JPEG); its polls under the poll ceiling are this run's load (v2's default mode polls its async jobs too)",
    "PRODIA_BASE_URL": "the local Prodia server",
    "DATABASE_URL": "SQLite, the default backend, in a temporary directory instead of data/",
}


async def concurrent_phase(run: BotRun) -> dict:
    """`jobs` /imagine held at the server until all are in flight, then ended at moments spread over `spread` s;
    `measure` more /imagine (each a job of 1 s) timed from arrival to defer, `gap` s apart, meanwhile.

    The bot's work runs outside simcord's bot scope (`unscoped_bot`): on the real clock, with real timers, polled
    repeatedly under the bot's default poll ceiling and edit pacing; simcord is its Discord (REST, gateway) only.
    Interactions are emitted without simcord's settlement; the phase watches simcord's HTTP log instead."""
    env, log, users, channel, args = run.env, run.log, run.users, run.channel, run.args
    jobs, probes = args.jobs, args.measure
    if len(users) < jobs + probes:  # one user per job: the default per-user limits stay
        raise SystemExit(f"--users must be at least --jobs + --measure ({jobs + probes})")
    logged = _LogCount()
    logging.getLogger().addHandler(logged)
    virtual_start = env.now()
    totals = Totals(args.cpu_split)
    with unscoped_bot(env), no_settlement(env), upload_sizes_only(env) as uploads:
        for index in range(jobs):
            await slash(users[index], channel, index, MODEL, f"capacity {index} d={HOLD}")
            await asyncio.sleep(0.002)  # let the bot take the event in before the next one
        issued = totals.elapsed()
        async with asyncio.timeout(args.timeout):
            await wait_submitted(args.server, jobs)
        submitted = totals.elapsed()
        in_flight, replies_open, rss_held = run.in_queue(), len(env.bot.pipeline.running), peak_rss()
        tracked = sum(not task.done() for task in env._work.tasks)  # simcord's task registry (internal)
        objects_held = len(gc.get_objects())
        polls_held = await server_polls(args.server)
        released = await finish_all(args.server, args.spread, SEED)
        released_real, released_wall = time.perf_counter(), time.time()
        before = set(run.times.arrived)
        with record_gc_pauses() as gc_pauses:
            for index in range(jobs, jobs + probes):
                await asyncio.sleep(args.gap)
                await slash(users[index], channel, index, MODEL, f"probe {index} d={PROBE_SECONDS}")
            probes_end = time.perf_counter()
            async with asyncio.timeout(args.timeout):
                await _until_ended(run, jobs + probes)
        result = totals.result(log, jobs + probes)
    logging.getLogger().removeHandler(logged)

    offset = time.time() - time.perf_counter()  # the bot's perf_counter as wall-clock time, the server's clock
    at_server = {job["prompt"]: job for job in await control(args.server, "GET", "/_control/jobs")}
    sent = _result_messages(log)
    capacity = [f"capacity {i} d={HOLD}" for i in range(jobs)]
    probe_prompts = [f"probe {i} d={PROBE_SECONDS}" for i in range(jobs, jobs + probes)]
    done = [(at_server[p], sent[p][0] + offset) for p in capacity if sent.get(p) and at_server[p]["found_wall"]]
    delays = [delivered - job["finished_wall"] for job, delivered in done]
    ends = [at_server[p]["finished_wall"] - released_wall for p in capacity if p in at_server]
    items = interactions(log)
    latencies, stage_ms, missing = _latencies(run.times, before, items)
    arrivals = [t for ident, t in run.times.arrived.items() if ident not in before]
    window = (min(arrivals, default=released_real), max(arrivals, default=probes_end))
    delivered_meanwhile = sum(window[0] <= sent[p][0] <= window[1] for p in capacity if sent.get(p))
    last_delivery = max((sent[p][0] for p in capacity if sent.get(p)), default=released_real)
    polls_end = sum(job["polls"] for job in at_server.values())
    return {
        "phase": "concurrent",
        "capacity_jobs": jobs,
        "probes": probes,
        "model": MODEL,
        "settings": [
            {"setting": name, "value": value, "why": WHY.get(name)}
            for name, value in non_default(env.bot.settings).items()
        ],
        "in_flight_at_once": in_flight,
        "replies_open_at_once": replies_open,
        "released_by_server": released,
        "issue_seconds": round(issued, 2),
        "all_submitted_seconds": round(submitted, 2),
        "simcord_tracked_tasks_in_flight": tracked,
        "virtual_clock_moved_s": (env.now() - virtual_start).total_seconds(),
        "results_end_s_after_release": {"first": round(min(ends), 2), "last": round(max(ends), 2)} if ends else None,
        "delivered_exactly_once": sum(len(sent.get(p, ())) == 1 for p in capacity),
        "delivered_more_than_once": sum(len(sent.get(p, ())) > 1 for p in capacity),
        "not_delivered_at_all": sum(not sent.get(p) for p in capacity),
        "probe_jobs_delivered_exactly_once": sum(len(sent.get(p, ())) == 1 for p in probe_prompts),
        "delivery_delay_s": _summary(delays),
        "delivery_delay_split_s": {  # the poll that found the job done; then download, check, edit pacing
            "finished_to_found": _summary([job["found_wall"] - job["finished_wall"] for job, _ in done]),
            "found_to_delivered": _summary([delivered - job["found_wall"] for job, delivered in done]),
        },
        "edits": edit_stats([item for item in items.values() if item["edits"]]),
        "last_delivery_s_after_release": round(last_delivery - released_real, 2),
        "polls": {
            "per_capacity_job": round(sum(at_server[p]["polls"] for p in capacity if p in at_server) / jobs, 2),
            "while_held": polls_held,
            "per_second_after_release": round((polls_end - (polls_held or 0)) / (last_delivery - released_real), 1)
            if last_delivery > released_real
            else None,
            "ceiling_per_second": env.bot.settings.prodia_max_polls_per_second,
        },
        "uploads": _uploads(uploads),
        "ack_window_s": round(window[1] - window[0], 2),
        "deliveries_during_ack_window": delivered_meanwhile,
        "ack_measured": len(latencies),
        "no_defer": missing,
        **ack_summary(latencies, stage_ms),
        "ack_ms_p90_by_quarter": _p90_by_quarter(run.times.arrived, before, items),
        "gc_pause_ms_max": round(max((ms for _, ms in gc_pauses), default=0.0), 3),
        "gc_gen2_pauses_ms": [round(ms, 1) for generation, ms in gc_pauses if generation == 2],
        "gc_tracked_objects": {"all_in_flight": objects_held, "end": len(gc.get_objects())},
        "rss_all_in_flight_mb": round(rss_held / 1024, 1),
        "rss_before_jobs_mb": round(totals.rss_before / 1024, 1),
        "log_records": dict(logged.counts),
        "first_errors": logged.errors[:3],
        **result,
    }


async def _until_ended(run: BotRun, interactions_sent: int) -> None:
    """Until every interaction was deferred and every job ended, with its reroll reaction added if delivered."""
    while True:
        await asyncio.sleep(0.25)
        if run.env.bot.pipeline.running or len(run.times.arrived) < interactions_sent:
            continue  # cheap checks first: scanning the HTTP log takes the loop from the bot
        items = interactions(run.log)
        deferred = sum("defer_real" in item for item in items.values())
        if deferred < interactions_sent or run.env.bot.pipeline.running:
            continue
        results = sum(any(e["final"] for e in item["edits"]) for item in items.values())
        if sum(entry.method == "PUT" and "/reactions/" in entry.path for entry in run.log) >= results:
            return


def _result_messages(log: TimedLog) -> dict[str, list[float]]:
    """Per prompt: when (perf_counter) each message carrying its result went out: an edit or a new message with
    an attachment and an embed titled with the prompt."""
    sent: dict[str, list[float]] = {}
    for entry, (real, _virtual) in zip(log, log.times, strict=True):
        body = entry.json if isinstance(entry.json, dict) else {}
        if body.get("attachments") and body.get("embeds"):
            sent.setdefault(body["embeds"][0].get("title"), []).append(real)
    return sent


def _summary(values: list[float]) -> dict | None:
    if not values:
        return None
    return {
        "mean": round(statistics.fmean(values), 3),
        "p50": round(quantile(values, 0.5), 3),
        "p95": round(quantile(values, 0.95), 3),
        "max": round(max(values), 3),
    }


def _uploads(sizes: dict[str, int]) -> dict:
    """The result files simcord received, by type: how many, their mean size."""
    by_type: dict[str, list[int]] = {}
    for url, size in sizes.items():
        by_type.setdefault(url.rsplit(".", 1)[-1], []).append(size)
    return {kind: {"count": len(s), "mean_kb": round(statistics.fmean(s) / 1024, 1)} for kind, s in by_type.items()}


class _LogCount(logging.Handler):
    """Counts the bot's log records by level and keeps the first errors: the bot's work is not simcord's here,
    so an exception in it reaches the log, not `env.errors`."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.counts: Counter[str] = Counter()
        self.errors: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.counts[record.levelname] += 1
        if record.levelno >= logging.ERROR:
            self.errors.append(record.getMessage()[:200])
