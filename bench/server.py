"""The local Prodia server as the benchmark runs it, in a process of its own.

`python -m bench.server --durations models --seed 7` gives each v1 model a characteristic duration
(uniform MIN..MAX s, drawn from the seed) and each job a jitter of +-JITTER around it, derived from the
job's prompt and seed: the same job list gets the same durations under every policy, in any order.
`--durations prompt` takes each job's duration from its prompt (`d=SECONDS`): the delivery phase's
workloads (bench/workloads.py) plan every duration themselves.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import random
import re
import signal

from bot.core.model_lists import SD_MODELS
from devtools.local_prodia import LocalProdia

BENCH_MODELS = 8  # the first SD models get distinct characteristic durations


def model_durations(seed: int, low: float, high: float, models: int = BENCH_MODELS) -> dict[str, float]:
    rng = random.Random(seed)
    return {name: rng.uniform(low, high) for name in SD_MODELS[:models]}


def job_duration(params: dict, base: dict[str, float], jitter: float, default: float) -> float:
    centre = base.get(params.get("model") or "", default)
    key = f"{params.get('prompt')}|{params.get('seed')}".encode()
    unit = int.from_bytes(hashlib.sha256(key).digest()[:8], "big") / 2**64  # uniform in [0, 1)
    return centre * (1 + jitter * (2 * unit - 1))


def prompt_duration(params: dict) -> float:
    match = re.search(r"\bd=([0-9.]+)", str(params.get("prompt", "")))
    return float(match[1]) if match else 0.0


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.server")
    parser.add_argument("--durations", choices=["models", "fixed", "prompt"], default="models")
    parser.add_argument("--duration", type=float, default=0.0, help="seconds per job with --durations fixed")
    parser.add_argument("--range", type=float, nargs=2, default=(1.0, 6.0), metavar=("MIN", "MAX"))
    parser.add_argument("--jitter", type=float, default=0.1)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--image-scale", type=float, default=0.25)
    return parser.parse_args(argv)


async def serve(args: argparse.Namespace) -> None:
    if args.durations == "fixed":
        duration = args.duration
    elif args.durations == "prompt":  # each job says its own duration: "... d=3.2140"
        duration = prompt_duration
    else:
        base = model_durations(args.seed, *args.range)
        default = sum(base.values()) / len(base)
        duration = lambda params: job_duration(params, base, args.jitter, default)  # noqa: E731
    server = LocalProdia(job_duration=duration, image_scale=args.image_scale)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    async with server:
        print(server.url, flush=True)
        await stop.wait()


if __name__ == "__main__":
    asyncio.run(serve(parse_args()))
