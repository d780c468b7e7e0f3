"""A small in-process sampling profiler: which share of the busy main thread is simcord's.

A SIGPROF timer fires every `interval` seconds of process CPU time; its handler (on the main thread) gets the
interrupted frame and classifies it, walking from the innermost frame outwards:
- "idle": the main thread is in the event loop's selector wait: the CPU was another thread's (counted with the bot);
- "simcord": the first frame met that is either simcord's or the bot side's is simcord's (the simulated
  Discord: its settle machinery, gateway, HTTP router and backend, and the wrappers it puts around bot
  callbacks when nothing of the bot side is running inside them);
- "harness": the first such frame is the benchmark's own driver code (`bench/`: issuing interactions, scanning
  simcord's HTTP log);
- "bot": the first such frame is the bot side's: the project (`bot/`, `cogs/`), discord.py or aiohttp (aiohttp
  called by the benchmark's own code, the local server's control API, is "harness");
- "other": neither was met (asyncio's own loop, the stdlib): counted with the bot, which is conservative.

It is an estimate: a handler runs at the next bytecode boundary after the signal, so time in a long C call is
charged to the Python frame that made it; the handler's own time is measured and taken out of the process CPU;
and the work simcord replaces (real HTTPS requests to Discord, the gateway websocket) is not there to measure.
"""

from __future__ import annotations

import os
import signal
import time
from collections import Counter

import simcord

SIMCORD_DIR = os.path.dirname(os.path.abspath(simcord.__file__)) + os.sep
BENCH_DIR = os.path.dirname(os.path.abspath(__file__)) + os.sep
BOT_SIDE = (os.sep + "bot" + os.sep, os.sep + "cogs" + os.sep, os.sep + "discord" + os.sep)
AIOHTTP = os.sep + "aiohttp" + os.sep


def classify(frame) -> str:  # type: ignore[no-untyped-def]
    """Return "idle", "simcord", "harness", "bot" or "other" for a stack whose innermost frame is `frame`."""
    code = frame.f_code
    if code.co_name == "select" and code.co_filename.endswith("selectors.py"):
        return "idle"
    library = False  # aiohttp met: the bot's, unless the benchmark's own code called it
    while frame is not None:
        filename = frame.f_code.co_filename
        if filename.startswith(SIMCORD_DIR):
            return "simcord"
        if filename.startswith(BENCH_DIR):
            return "harness"
        if any(part in filename for part in BOT_SIDE):
            return "bot"
        library = library or AIOHTTP in filename
        frame = frame.f_back
    return "bot" if library else "other"


class Sampler:
    """SIGPROF every `interval` s of process CPU time; the handler classifies the interrupted main-thread frame.

    ITIMER_PROF counts CPU time (user + system) of the whole process, so samples are proportional to CPU
    spent, not to wall time. A sample that finds the main thread waiting in the selector is CPU of another
    thread (executor, resolver): it is counted with the bot. The handler's own time is measured and taken out.
    """

    def __init__(self, interval: float = 0.001) -> None:
        self.interval = interval
        self.counts: Counter[str] = Counter()
        self.thread_cpu = 0.0  # the handler's own time (it runs on the main thread)
        self._previous = None

    def _handler(self, _signum, frame) -> None:  # type: ignore[no-untyped-def]
        started = time.perf_counter()
        if frame is not None:
            self.counts[classify(frame)] += 1
        self.thread_cpu += time.perf_counter() - started

    def __enter__(self) -> Sampler:
        self._previous = signal.signal(signal.SIGPROF, self._handler)
        signal.setitimer(signal.ITIMER_PROF, self.interval, self.interval)
        return self

    def __exit__(self, *exc: object) -> None:
        signal.setitimer(signal.ITIMER_PROF, 0, 0)
        signal.signal(signal.SIGPROF, self._previous or signal.SIG_DFL)

    def split(self, process_cpu: float, jobs: int, main_cpu: float | None = None) -> dict:
        """Total CPU per job (without the sampler's own), simcord's share of busy samples, the bot estimate.

        With `main_cpu` (the event loop thread's CPU), only that thread's CPU is split by the samples: the
        other threads' (image checks, SQLite, DNS) is all the bot's, and the samples that found the main
        thread waiting ("idle") are left out of the shares."""
        busy = sum(self.counts.values())  # every sample is CPU time; "idle" ones are other threads' (bot side)
        cpu = max(process_cpu - self.thread_cpu, 0.0)
        share = (self.counts["simcord"] + self.counts["harness"]) / busy if busy else None
        per_job = 1000 * cpu / jobs
        result = {
            "samples": dict(self.counts),
            "sampler_handler_seconds": round(self.thread_cpu, 3),
            "cpu_ms_per_job_total": round(per_job, 3),
            "simcord_share": round(self.counts["simcord"] / busy, 3) if busy else None,
            "harness_share": round(self.counts["harness"] / busy, 3) if busy else None,
            "excluded_share": round(share, 3) if share is not None else None,
            "bot_cpu_ms_per_job_estimate": round(per_job * (1 - share), 3) if share is not None else None,
        }
        on_main = busy - self.counts["idle"]
        if main_cpu is not None and on_main:
            main = max(main_cpu - self.thread_cpu, 0.0)
            others = max(cpu - main, 0.0)
            main_share = (self.counts["simcord"] + self.counts["harness"]) / on_main
            result |= {
                "main_thread_cpu_ms_per_job": round(1000 * main / jobs, 3),
                "other_threads_cpu_ms_per_job": round(1000 * others / jobs, 3),
                "main_thread_excluded_share": round(main_share, 3),
                "bot_cpu_ms_per_job_estimate": round(1000 * (main * (1 - main_share) + others) / jobs, 3),
            }
        return result
