"""Phase "v2": what v2's async mode costs against sync, over the same jobs.

Sync is one request that returns when the image is made: the least delay physically possible here
(the answer's transfer only). Async submits, polls `job.state.current` (with the bot's HazardPolling)
and then reads the job's JSON, its output list and the output: it survives restarts, at the price of
the poll's lag and three more round trips. Delay = time.time() in this process right after `generate`
returned the bytes, minus the server's `finished_wall` for the job (one wall clock on one machine).
"""

from __future__ import annotations

import asyncio
import time

import aiohttp

from bot.core.catalog import Catalog
from bot.core.config import Settings
from bot.core.prodia import ProdiaV2
from bot.core.request import GenerationRequest

from .delivery import job_list, summarise
from .procs import control
from .workloads import WORKLOADS

MODES = ("sync", "async", "auto")
ASYNC_EXTRA_REQUESTS = 4  # the POST, job.json, the output list and the output, besides the polls


async def run_mode(url: str, mode: str, count: int, spread: float, seed: int) -> dict:
    settings = Settings.from_env(
        {"PRODIA_BASE_URL": url + "/v2", "PRODIA_API_KEY": "bench-key", "PRODIA_V2_MODE": mode}
    )
    catalog = Catalog.for_api("v2")
    jobs = job_list(WORKLOADS[0], count, spread, seed)  # for the arrival times only
    async with aiohttp.ClientSession() as session:
        await control(url, "POST", "/_control/reset")
        client = ProdiaV2(session, settings)
        done: dict[str, float] = {}
        errors: list[str] = []
        t0 = time.monotonic()

        async def one(index: int, arrival: float) -> None:
            await asyncio.sleep(max(0.0, t0 + arrival - time.monotonic()))
            job = catalog.prepare(GenerationRequest(prompt=f"bench job {index}", seed=1000 + index))
            try:
                await client.generate(job)
            except Exception as exc:  # counted, not hidden
                errors.append(f"{type(exc).__name__}: {exc}")
                return
            done[str(index)] = time.time()

        await asyncio.gather(*(one(job.index, job.arrival) for job in jobs))
        server_jobs = await control(url, "GET", "/_control/jobs")
    # Every server job belongs to one bench job: match them by prompt.
    by_prompt = {j["prompt"]: j for j in server_jobs}
    rows = []
    for index, have_bytes in done.items():
        info = by_prompt[f"bench job {index}"]
        is_async = info["polls"] > 0
        rows.append(
            {
                "delay": have_bytes - info["finished_wall"],
                "polls": info["polls"],
                "requests": info["polls"] + ASYNC_EXTRA_REQUESTS if is_async else 1,
            }
        )
    summary = summarise(rows)
    if rows:
        summary["requests_per_job"] = round(sum(r["requests"] for r in rows) / len(rows), 2)
    return {"mode": mode, "jobs": count, "delivered": len(rows), "errors": errors[:5], "all": summary}


async def run(url: str, count: int, spread: float, seed: int) -> dict:
    modes = {mode: await run_mode(url, mode, count, spread, seed) for mode in MODES}
    sync = modes["sync"]["all"].get("delay_mean_s")
    for result in modes.values():
        mean = result["all"].get("delay_mean_s")
        result["extra_delay_vs_sync_s"] = round(mean - sync, 4) if mean is not None and sync is not None else None
    return {"jobs_per_mode": count, "arrival_spread_s": spread, "modes": modes}
