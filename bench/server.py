"""The local Prodia server as the benchmark runs it, in a process of its own.

`python -m bench.server --durations models --seed 7` gives each v1 model a characteristic duration
(uniform MIN..MAX s, drawn from the seed) and each job a jitter of +-JITTER around it, derived from the
job's prompt and seed: the same job list gets the same durations under every policy, in any order.
`--durations prompt` takes each job's duration from its prompt (`d=SECONDS`): the delivery phase's
workloads (bench/workloads.py) plan every duration themselves.

Images: `--image-scale` multiplies every size (v1 SD: 512x512 square, SDXL: 1024x1024); `--image-format mix`
serves half of the v1 results as PNG and half as JPEG; `--grain` makes them weigh what generated images do
(drawing.draw); `--image-variants N` draws N images per size and format once and serves each job one of
them (by its prompt and seed), so a thousand 1024x1024 results cost the server no drawing.
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
    parser.add_argument("--image-format", choices=["png", "jpeg", "mix"], default="png")
    parser.add_argument("--grain", type=float, default=0.0)
    parser.add_argument("--image-variants", type=int, default=0, help="0: draw every job's own image")
    parser.add_argument("--prerender", type=int, default=0, help="with --image-variants: this square size first")
    return parser.parse_args(argv)


class CachedImages(LocalProdia):
    """Serves each job one of `variants` images drawn once per size and format (0: each job its own)."""

    def __init__(self, variants: int, **kwargs) -> None:  # type: ignore[no-untyped-def]
        super().__init__(**kwargs)
        self.variants = variants
        self.cache: dict[tuple[int, int, int, str], bytes] = {}

    def draw(self, params: dict, width: int, height: int, fmt: str) -> bytes:
        if not self.variants:
            return super().draw(params, width, height, fmt)
        key = f"{params.get('prompt')}|{params.get('seed')}".encode()
        return self.variant(int.from_bytes(hashlib.sha256(key).digest()[:4], "big") % self.variants, width, height, fmt)

    def variant(self, index: int, width: int, height: int, fmt: str) -> bytes:
        slot = (index, width, height, fmt)
        if slot not in self.cache:
            self.cache[slot] = super().draw({"prompt": f"variant {index}", "seed": index}, width, height, fmt)
        return self.cache[slot]

    def prerender(self, side: int) -> None:
        """Draw every variant of this square size in the formats served, before any job asks (0: none)."""
        for index in range(self.variants if side else 0):
            for fmt in ["png", "jpeg"] if self.image_format == "mix" else [self.image_format]:
                self.variant(index, side, side, fmt)


async def serve(args: argparse.Namespace) -> None:
    if args.durations == "fixed":
        duration = args.duration
    elif args.durations == "prompt":  # each job says its own duration: "... d=3.2140"
        duration = prompt_duration
    else:
        base = model_durations(args.seed, *args.range)
        default = sum(base.values()) / len(base)
        duration = lambda params: job_duration(params, base, args.jitter, default)  # noqa: E731
    server = CachedImages(
        args.image_variants,
        job_duration=duration,
        image_scale=args.image_scale,
        image_format=args.image_format,
        image_grain=args.grain,
    )
    server.prerender(args.prerender)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    async with server:
        print(server.url, flush=True)
        await stop.wait()


if __name__ == "__main__":
    asyncio.run(serve(parse_args()))
