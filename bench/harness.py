"""What the bot runs' phases (`bench/ack.py`, `bench/jobs.py`, `bench/capacity.py`) share: the run's context,
issuing /imagine, reading simcord's timed HTTP log, the end-of-run totals and the local server's control API."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import itertools
import resource
import statistics
import time
from dataclasses import dataclass
from typing import Any

from bot import Settings

from .patches import DispatchTimes, TimedLog
from .procs import control


@dataclass
class BotRun:
    """A phase's context: simcord's env (the bot is `env.bot`), its timed HTTP log, the dispatch timestamps,
    the guild's members and channel, and the command line."""

    env: Any
    log: TimedLog
    times: DispatchTimes
    users: list
    channel: Any
    args: argparse.Namespace

    def in_queue(self) -> int:
        """The bot's jobs running or waiting in its queue."""
        return self.env.bot.pipeline.queue.running + self.env.bot.pipeline.queue.waiting


def non_default(settings: Settings) -> dict[str, object]:
    """Each setting that differs from the bot's default, by its variable's name (secrets as "(set)")."""
    changed: dict[str, object] = {}
    for field in dataclasses.fields(Settings):
        value = getattr(settings, field.name)
        if value != field.default:
            changed[field.name.upper()] = "(set)" if field.name.endswith(("_token", "_key")) else value
    return changed


async def slash(user, channel, index: int, model: str | None, prompt: str | None = None) -> None:  # type: ignore[no-untyped-def]
    options = {"prompt": prompt or f"bench {index}", "seed": 5000 + index}
    if model:
        options["model"] = model
    try:
        await user.slash(channel, "imagine", **options)
    except TimeoutError:
        pass  # the bot is busy with other jobs: simcord's settle gave up waiting, the interaction still went out


def interactions(log: TimedLog) -> dict[str, dict]:
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


def quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def edit_stats(items: list[dict]) -> dict:
    """Edits per job and the shortest gap between two edits of one message, real and virtual clocks."""
    progress_counts, all_counts = [], []
    gaps: dict[str, list[float]] = {"progress_real": [], "progress_virtual": [], "any_real": [], "any_virtual": []}
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

    def least(name: str) -> float | None:
        return round(min(gaps[name]), 3) if gaps[name] else None

    return {
        "messages": len(items),
        "progress_edits_per_job": round(statistics.fmean(progress_counts), 3) if items else None,
        "edits_per_job_incl_result": round(statistics.fmean(all_counts), 3) if items else None,
        "max_progress_edits_one_job": max(progress_counts, default=0),
        "progress_edits_without_status_change": repeated,
        "min_gap_progress_real_s": least("progress_real"),
        "min_gap_progress_virtual_s": least("progress_virtual"),
        "min_gap_any_real_s": least("any_real"),
        "min_gap_any_virtual_s": least("any_virtual"),
        "gaps_under_2s_any_real": sum(g < 2.0 for g in gaps["any_real"]),
        "gaps_counted_any": len(gaps["any_real"]),
    }


def peak_rss() -> int:
    """The process's peak RSS so far (`ru_maxrss`, KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


class Totals:
    """What every jobs run reports at its end (deliveries, CPU, wall time, peak RSS), measured from when it is
    made: the peak RSS before the jobs, then the CPU sampler (`bench/sampler.py`) if asked for, then the clocks."""

    def __init__(self, cpu_split: bool) -> None:
        self.rss_before = peak_rss()
        self.sampler = None
        if cpu_split:
            from .sampler import Sampler

            self.sampler = Sampler().__enter__()
        self.cpu0, self.wall0 = time.process_time(), time.perf_counter()
        self.main0 = time.thread_time()  # made on the event loop's thread: the rest is other threads' CPU

    def elapsed(self) -> float:
        return time.perf_counter() - self.wall0

    def result(self, log: TimedLog, jobs: int) -> dict:
        """Stop the sampler; the totals from when this was made until now."""
        cpu = time.process_time() - self.cpu0
        main = time.thread_time() - self.main0
        wall = time.perf_counter() - self.wall0
        if self.sampler is not None:
            self.sampler.__exit__(None, None, None)
        items = interactions(log)
        delivered = sum(1 for item in items.values() if any(e["final"] for e in item["edits"]))
        return {
            "jobs": jobs,
            "delivered": delivered,
            "not_delivered": jobs - delivered,
            "wall_seconds": round(wall, 2),
            "cpu_seconds": round(cpu, 3),
            "cpu_ms_per_job": round(1000 * cpu / jobs, 3),
            "cpu_split": self.sampler.split(cpu, jobs, main) if self.sampler is not None else None,
            "peak_rss_mb": round(peak_rss() / 1024, 1),
            "last_content_of_undelivered": [
                (item["edits"][-1]["content"] or "")[:80]
                for item in items.values()
                if item["edits"] and not item["edits"][-1]["final"]
            ][:3],
        }


async def refuse_new_jobs(server: str) -> None:
    """From now on the server answers every new job with HTTP 400 (which the bot does not retry)."""
    fault = {"kind": "status", "status": 400, "times": None, "path": "*/generate", "message": "bench: no new jobs"}
    await control(server, "POST", "/_control/faults", fault)


async def wait_submitted(server: str, count: int) -> None:
    """Until the server holds `count` jobs (each in-flight job submitted and now polling)."""
    while True:  # the server is another process: polling its control API is the only way to know
        if len(await control(server, "GET", "/_control/jobs")) >= count:
            return
        await asyncio.sleep(0.1)


async def finish_all(server: str, spread: float = 0.0, seed: int | None = None) -> int:
    """Release every job the server holds (its /_control/finish barrier), each ending at a moment drawn from
    the next `spread` seconds; how many it released."""
    return int((await control(server, "POST", "/_control/finish", {"spread": spread, "seed": seed}))["finished"])


async def server_polls(server: str) -> int | None:
    """Poll requests the server answered so far: shows whether in-flight jobs were polling meanwhile."""
    import aiohttp

    try:
        return sum(job["polls"] for job in await control(server, "GET", "/_control/jobs"))
    except (aiohttp.ClientError, ValueError):
        return None
