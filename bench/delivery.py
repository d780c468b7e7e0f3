"""Phase 1: delivery delay and poll requests per job on Prodia v1, for three poll policies over the same jobs,
on every workload of bench/workloads.py side by side, each with the best schedule possible (the oracle).

The bench process is the client (the bot's own ProdiaV1 on an aiohttp session); the local server runs in
another process. Delay = the time this process has the image bytes (time.time() right after
`generate` returns) minus the server's `finished_wall` for the job (time.time() in the server, from
/_control/jobs): the same wall clock on one machine.
"""

from __future__ import annotations

import asyncio
import random
import statistics
import time
from dataclasses import dataclass

import aiohttp

from bot.core.catalog import Catalog
from bot.core.config import Settings
from bot.core.model_lists import SD_MODELS
from bot.core.prodia import ProdiaV1
from bot.core.prodia.polling import PollPolicy
from bot.core.request import GenerationRequest

from . import workloads
from .procs import control
from .workloads import Workload

KEY = "bench-key"


@dataclass(frozen=True)
class BenchJob:
    index: int
    model: str
    prompt: str
    seed: int
    arrival: float  # seconds after the policy's run starts


def job_list(workload: Workload, count: int, spread: float, seed: int, scale: float = 1.0) -> list[BenchJob]:
    """`count` jobs of `workload` arriving over about `spread` seconds (Poisson arrivals), seeded; each prompt
    carries the job's planned duration for the bench server (`--durations prompt`)."""
    rng = random.Random(seed)
    planned = workloads.jobs(workload, count, seed)
    jobs, at = [], 0.0
    for index, (model, seconds) in enumerate(planned):
        name = SD_MODELS[int(model[1:]) % len(SD_MODELS)]
        jobs.append(
            BenchJob(index, name, f"bench {workload.name} job {index} d={seconds * scale:.4f}", 1000 + index, at)
        )
        at += rng.expovariate(count / spread)
    return jobs


def settings_for(url: str) -> Settings:
    # The process-wide poll ceiling (100/s by default) would throttle the 250 ms policy with ~30 jobs in flight:
    # raised here so each policy polls as it means to (the one setting this phase changes, besides the retry delay).
    return Settings.from_env(
        {
            "PRODIA_API": "v1",
            "PRODIA_BASE_URL": url + "/v1",
            "PRODIA_API_KEY": KEY,
            "PRODIA_RETRY_DELAY": "0.05",
            "PRODIA_MAX_POLLS_PER_SECOND": "10000",
        }
    )


async def run_policy(url: str, name: str, jobs: list[BenchJob], policy: PollPolicy | None) -> dict:
    """Run every job (each submitted at its arrival time) with one policy; per-job numbers and a summary."""
    catalog = Catalog.for_api("v1")
    settings = settings_for(url)
    async with aiohttp.ClientSession() as session:
        client = ProdiaV1(session, settings, poll_policy=policy)
        policy_name = type(client.poll_policy).__name__
        t0 = time.monotonic()
        done: dict[int, tuple[str, float]] = {}
        errors: list[str] = []

        async def one(job: BenchJob) -> None:
            await asyncio.sleep(max(0.0, t0 + job.arrival - time.monotonic()))
            prepared = catalog.prepare(GenerationRequest(prompt=job.prompt, model=job.model, seed=job.seed))
            try:
                result = await client.generate(prepared)
            except Exception as exc:  # counted, not hidden
                errors.append(f"{type(exc).__name__}: {exc}")
                return
            done[job.index] = (result.job_id or "", time.time())

        started = time.perf_counter()
        await asyncio.gather(*(one(job) for job in jobs))
        wall = time.perf_counter() - started
        server_jobs = {j["id"]: j for j in await control(url, "GET", "/_control/jobs")}

    rows = []
    for job in jobs:
        if job.index not in done:
            continue
        job_id, have_bytes = done[job.index]
        info = server_jobs[job_id]
        rows.append(
            {
                "index": job.index,
                "model": job.model,
                "duration": info["duration"],
                "created_wall": info["created_wall"],
                "delay": have_bytes - info["finished_wall"],
                "polls": info["polls"],
                "have_bytes": have_bytes,
            }
        )
    # Warm-up: a job submitted before any job of its model had been delivered in this run (nothing to learn from).
    first_done: dict[str, float] = {}
    for row in rows:
        first_done[row["model"]] = min(first_done.get(row["model"], float("inf")), row["have_bytes"])
    for row in rows:
        row["warm_up"] = row["created_wall"] < first_done[row["model"]]
    return {
        "policy": name,
        "class": policy_name,
        "jobs": len(jobs),
        "delivered": len(rows),
        "errors": errors[:5],
        "wall_seconds": round(wall, 2),
        "all": summarise(rows),
        "after_warm_up": summarise([r for r in rows if not r["warm_up"]]),
        "per_job": [{k: (round(v, 4) if isinstance(v, float) else v) for k, v in r.items()} for r in rows],
    }


def summarise(rows: list[dict]) -> dict:
    if not rows:
        return {"jobs": 0}
    delays = sorted(r["delay"] for r in rows)
    polls = [r["polls"] for r in rows]
    return {
        "jobs": len(rows),
        "delay_mean_s": round(statistics.fmean(delays), 4),
        "delay_p50_s": round(delays[len(delays) // 2], 4),
        "delay_p95_s": round(delays[min(len(delays) - 1, int(0.95 * len(delays)))], 4),
        "delay_max_s": round(delays[-1], 4),
        "polls_per_job": round(statistics.fmean(polls), 2),
        "polls_total": sum(polls),
    }


POLICIES = (
    ("fixed_2s", lambda: PollPolicy(2.0), "the original gpt4free provider: a poll every 2 s"),
    ("fixed_250ms", lambda: PollPolicy(0.25), "the official client: a poll every 250 ms"),
    ("bot", lambda: None, "the bot's default (ProdiaV1 without poll_policy: HazardPolling(PRODIA_POLL_INTERVAL))"),
)


async def run(url: str, count: int, spread: float, seed: int, scale: float = 1.0) -> dict:
    """Every workload, each with every policy over the same jobs, and the oracle at the bot's own delay.
    `scale` shortens every duration (tests of the report's structure); the benchmark runs them as planned."""
    results = {}
    for workload in workloads.WORKLOADS:
        jobs = job_list(workload, count, spread, seed, scale)
        await control(url, "POST", "/_control/reset")
        policies = {}
        for name, make, about in POLICIES:  # one after another: no policy's load slows another's
            policies[name] = {**await run_policy(url, name, jobs, make()), "about": about}
        planned = workloads.jobs(workload, count, seed)
        bot = policies["bot"]
        learned = {row["index"] for row in bot["per_job"] if not row["warm_up"]}
        learned_delay = bot["after_warm_up"].get("delay_mean_s", 0.0)
        results[workload.name] = {
            "about": workload.about,
            "narrow": workload.narrow,
            "policies": policies,
            "oracle_polls_at_bot_delay": round(
                workloads.oracle_polls(workload, planned, bot["all"].get("delay_mean_s", 0.0), scale=scale), 3
            ),
            # The oracle knows each model from its first job; the bot must learn it. Over the jobs submitted after
            # the first of their model was delivered, the gap is what the estimate costs, not the learning.
            "oracle_polls_after_warm_up_at_bot_delay": round(
                workloads.oracle_polls(workload, planned, learned_delay, scale=scale, only=learned), 3
            )
            if learned
            else None,
            # What a policy that learns each model from its finished jobs could do at best (generously: one
            # finished job teaches the exact distribution): the oracle also knows models no job has shown yet.
            "learner_polls_at_bot_delay": round(
                workloads.learner_polls(
                    workload,
                    planned,
                    [job.arrival for job in jobs],
                    bot["all"].get("delay_mean_s", 0.0),
                    scale=scale,
                ),
                3,
            ),
        }
    return {"jobs_per_policy": count, "arrival_spread_s": spread, "workloads": results}
