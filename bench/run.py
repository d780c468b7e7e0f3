"""The benchmark's driver: phases one after another, each child process started and stopped here."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import sys
import time
from pathlib import Path

from . import delivery, v2modes
from .procs import local_server, run_json
from .report import table, targets

FULL = {
    "delivery_jobs": 120,  # per workload and policy
    "delivery_spread": 16.0,
    "delivery_scale": 1.0,
    "v2_jobs": 100,
    "v2_spread": 20.0,
    "ack_in_flight": 500,
    "ack_measure": 200,
    "ack_context_measure": 50,  # the old way (context): its fill alone takes minutes (simcord's settlement)
    "capacity_jobs": 1000,
    "capacity_spread": 30.0,  # seconds over which the capacity jobs' results end
    "capacity_probes": 300,  # /imagine timed meanwhile, 0.1 s apart
    "edit_jobs": 100,
}
QUICK = {
    "delivery_jobs": 24,
    "delivery_spread": 3.0,
    "delivery_scale": 0.1,  # a smoke run: every duration a tenth, so the phase takes about two minutes
    "v2_jobs": 20,
    "v2_spread": 4.0,
    "ack_in_flight": 40,
    "ack_measure": 20,
    "ack_context_measure": 10,
    "capacity_jobs": 50,
    "capacity_spread": 3.0,
    "capacity_probes": 20,
    "edit_jobs": 16,
}
SEED = 7


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description="Run the Imagine benchmark (no network).")
    parser.add_argument("--out", required=True, type=Path, help="where to write the JSON report")
    parser.add_argument("--quick", action="store_true", help="small sizes, a smoke run of well under a minute")
    parser.add_argument(
        "--phases",
        default="delivery,v2,ack,capacity,edits",
        help="comma-separated subset of delivery,v2,ack,capacity,edits",
    )
    return parser.parse_args(argv)


def build_report(quick: bool, phases: set[str], log=print) -> dict:  # type: ignore[no-untyped-def]
    config = dict(QUICK if quick else FULL, seed=SEED)
    report: dict = {
        "mode": "quick" if quick else "full",
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": {
            "cpu_count": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
            "implementation": platform.python_implementation(),
        },
        "config": config,
        "method": {
            "durations": "v1 jobs; every workload of bench/workloads.py (narrow, wide, uniform, lognormal, outliers, "
            "drift, many_models) plans each job's model and duration from the seed and sends the duration in the "
            "prompt, so every policy meets the same jobs. The oracle: the fewest polls at the bot's own mean delay "
            "with each job's true distribution known, E[polls] = 1 + K^2/(2 delay), K = integral sqrt(f S).",
            "delay": "time.time() in the bench process right after ProdiaV1.generate returned the bytes, minus the "
            "server's finished_wall (time.time() in the server process)",
            "warm_up": "a job submitted before any job of its model had been delivered in that policy's run; "
            "'all' includes them, 'after_warm_up' excludes them",
            "ack": "perf_counter at discord.py's parse_interaction_create to perf_counter when the defer callback "
            "request is logged by simcord's HTTP router, for interactions sent one after another through simcord "
            "(10 ms apart). 'ack' (the target): the in-flight jobs are bot.core.prodia.generate(job, progress) tasks "
            "started by the benchmark's driver code outside simcord's bot scope, on the bot's own event loop, "
            "aiohttp session, ProdiaV1 client and HazardPolling (cold: no history, so it polls every 250 ms); "
            "simcord does not track them (direct_jobs_tracked_by_simcord), their sleeps are real timers and they "
            "poll the server throughout the window (polls_during_measurement, from the server's /_control/jobs). "
            "Included: the bot's loop serving those polls, discord.py's parsing and the bot's /imagine up to the "
            "defer. Once the fill is in, the server refuses new jobs (400, not retried), so each timed "
            "interaction's own job ends at submit with the bot's error reply and the load stays the 500. "
            "stages_ms splits each ack: arrival to the command tree's task starting, tree to /imagine calling "
            "defer(), defer() to the request. 'ack_timed_jobs_kept' (context): the same with the timed "
            "interactions' jobs accepted; they park on virtual timers (no clock driving) as bot-owned tasks, "
            "which simcord's settlement rescans on every later interaction, so its latency grows with the "
            "window (ack_ms_p90_by_quarter) and measures simcord's bookkeeping more than the bot. "
            "'ack_via_simcord' (context only): the in-flight jobs are /imagine interactions through simcord, so "
            "simcord's settlement scans all of them on every later interaction; their poll sleeps are virtual "
            "timers and, with no clock driving, never fire, so they do not poll at all; only ack_context_measure "
            "interactions are timed there, to keep the run short. Server jobs never finish.",
            "capacity": "the bot and simcord in one subprocess; ru_maxrss and process_time of that process. "
            "'capacity' (the targets): 1,000 /imagine from 1,000 users, each asking for SDXL (1024x1024), held by the "
            "server until all are in flight, then ended at moments drawn uniformly from the next 30 s; the results are "
            "PNG (~1.6 MB) and JPEG (~110 KB) in turn, 8 of each drawn once with grain so they weigh what generated "
            "images do. Meanwhile 300 more /imagine, 0.1 s apart, each a 1 s job, are timed from discord.py's "
            "parse_interaction_create to the defer callback request. The bot runs at its defaults (poll ceiling "
            "100/s, PROGRESS_INTERVAL 2 s, per-user limits, INFO logs) except MAX_CONCURRENT_JOBS=1000, "
            "QUEUE_SIZE=1000, PRODIA_API=v1 and the connection settings ('settings' lists each with its reason). "
            "Its events are fed outside simcord's bot scope, so its tasks and timers are not simcord's tracked work: "
            "they run on the real clock and no settlement scans them; simcord's own clock stays still and its CDN "
            "keeps upload sizes only. Delivery delay = wall-clock time of the result edit (bench process) minus the "
            "server's finished_wall, split at the poll that found the job done (found_wall). 'capacity_sequential' "
            "(context): 1,000 jobs of 0 s one after another, 32x32 images, the other bot phases' settings. CPU "
            "split: a SIGPROF sampler (ITIMER_PROF, bench/sampler.py) classifies the main thread's interrupted "
            "stack by the innermost simcord/bench/bot-side frame; the bot estimate is the event loop thread's CPU "
            "times its bot-side share of non-waiting samples plus the other threads' CPU (image checks, SQLite), "
            "per job. It is an estimate: unclassified samples (asyncio, stdlib) are counted as the bot's, and what "
            "simcord replaces (real HTTPS to Discord, the gateway websocket) is not measured at all.",
            "v2": "the bot's ProdiaV2 in each PRODIA_V2_MODE over the same flux-fast jobs (Poisson arrivals); each job "
            "takes the bench server's default duration (the mean of the 8 v1 models' durations) +-10%; delay as in "
            "delivery; requests per job = 1 for sync, polls + 4 for async (submit, job.json, output list, output)",
            "edits": "PATCHes of each interaction's reply, timestamped with perf_counter when simcord logs them; "
            "jobs with the 1-6 s per-model durations",
        },
    }
    started = time.perf_counter()
    if "delivery" in phases:
        log("delivery: three poll policies over the same jobs, on every workload ...")
        with local_server("--durations", "prompt", "--image-scale", "0.25") as url:
            report["delivery"] = asyncio.run(
                delivery.run(url, config["delivery_jobs"], config["delivery_spread"], SEED, config["delivery_scale"])
            )
    if "v2" in phases:
        log("v2: sync, async and auto over the same flux-fast jobs ...")
        with local_server("--durations", "models", "--seed", str(SEED), "--image-scale", "0.25") as url:
            report["v2"] = asyncio.run(v2modes.run(url, config["v2_jobs"], config["v2_spread"], SEED))
    if "ack" in phases:
        for key, fill, measure, refuse in (
            ("ack", "direct", config["ack_measure"], True),
            ("ack_timed_jobs_kept", "direct", config["ack_measure"], False),
            ("ack_via_simcord", "slash", config["ack_context_measure"], False),
        ):
            log(f"{key}: {config['ack_in_flight']} jobs in flight ({fill}) ...")
            with local_server("--durations", "fixed", "--duration", "3600", "--image-scale", "0.0625") as url:
                report[key] = run_json(
                    "bench.botrun",
                    "ack",
                    "--server",
                    url,
                    "--fill",
                    fill,
                    "--jobs",
                    str(config["ack_in_flight"]),
                    "--measure",
                    str(measure),
                    "--users",
                    "20",
                    "--settle-timeout",
                    "0.005",
                    *(["--refuse-timed-jobs"] if refuse else []),
                )
    if "capacity" in phases:
        jobs, probes = config["capacity_jobs"], config["capacity_probes"]
        log(f"capacity: {jobs} jobs in flight at once, results over {config['capacity_spread']:g} s ...")
        # 1024x1024 SDXL results, PNG and JPEG in turn, weighing what generated images do; 8 of each drawn once.
        images = ["--image-scale", "1", "--image-format", "mix", "--grain", "0.1", "--image-variants", "8"]
        with local_server("--durations", "prompt", *images, "--prerender", "1024") as url:
            report["capacity"] = run_json(
                "bench.botrun", "concurrent", "--server", url, "--jobs", str(jobs), "--measure", str(probes),
                "--gap", "0.1", "--spread", str(config["capacity_spread"]), "--users", str(jobs + probes),
                "--timeout", "600", "--cpu-split",
            )  # fmt: skip
        log(f"capacity_sequential: {jobs} jobs one after another ...")
        with local_server("--durations", "fixed", "--duration", "0", "--image-scale", "0.0625") as url:
            report["capacity_sequential"] = _bot_jobs("jobs", url, str(jobs), "--cpu-split")
    if "edits" in phases:
        log(f"edits: {config['edit_jobs']} jobs of 1-6 s ...")
        with local_server("--durations", "models", "--seed", str(SEED), "--image-scale", "0.0625") as url:
            report["edits"] = _bot_jobs("jobs", url, str(config["edit_jobs"]), "--models")
    report["seconds"] = round(time.perf_counter() - started, 1)
    report["targets"] = targets(report)
    return report


def _bot_jobs(phase: str, url: str, jobs: str, *extra: str) -> dict:
    """A jobs run of the bot under simcord (bench.botrun) against the server at `url`."""
    return run_json("bench.botrun", phase, "--server", url, "--jobs", jobs, "--users", "20",
                    "--settle-timeout", "0.005", *extra)  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    phases = {p.strip() for p in args.phases.split(",") if p.strip()}
    report = build_report(args.quick, phases, log=lambda m: print(m, file=sys.stderr, flush=True))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1))
    print(table(report))
    print(f"\nreport written to {args.out} ({report['seconds']} s)")
    return 0
