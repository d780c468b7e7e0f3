"""`python -m devtools.local_prodia`: serve the local Prodia-compatible API until Ctrl-C or SIGTERM.

A port it cannot listen on (already in use, say) is one sentence on stderr and exit status 1.
"""

from __future__ import annotations

import argparse
import asyncio
import errno
import random
import signal
import sys
from collections.abc import Callable

from .server import LocalProdia


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m devtools.local_prodia",
        description="Serve a local Prodia-compatible API (v1 and v2) for trying the bot without Prodia.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8765, help="port to listen on; 0 picks a free one")
    parser.add_argument("--api-key", help="accept only this v1 key / v2 token (default: any non-empty one)")
    durations = parser.add_mutually_exclusive_group()
    durations.add_argument("--duration", type=float, default=0.0, help="seconds every job takes")
    durations.add_argument(
        "--duration-range",
        type=float,
        nargs=2,
        metavar=("MIN", "MAX"),
        help="draw each job's duration uniformly from MIN..MAX seconds, in creation order",
    )
    parser.add_argument("--seed", type=int, help="random seed for --duration-range, for repeatable runs")
    parser.add_argument("--image-scale", type=float, default=1.0, help="multiply image sizes (e.g. 0.25)")
    return parser.parse_args(argv)


def _durations(args: argparse.Namespace) -> float | Callable[[dict], float]:
    if args.duration_range is None:
        return args.duration
    low, high = args.duration_range
    rng = random.Random(args.seed)  # one generator, so durations follow job creation order
    return lambda params: rng.uniform(low, high)


async def _serve(args: argparse.Namespace) -> int:
    server = LocalProdia(
        api_key=args.api_key,
        job_duration=_durations(args),
        image_scale=args.image_scale,
        host=args.host,
        port=args.port,
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    try:
        await server.start()
    except OSError as exc:  # the bind: a port in use, a host this machine does not have
        await server.close()
        print(f"Cannot start the local Prodia server: {_cannot_listen(args.host, args.port, exc)}.", file=sys.stderr)
        return 1
    try:
        print(
            f"Local Prodia server listening on {server.url} (v1: {server.v1_url}, v2: {server.v2_url})",
            flush=True,
        )
        await stop.wait()
    finally:
        await server.close()
    return 0


def _cannot_listen(host: str, port: int, error: OSError) -> str:
    if error.errno == errno.EADDRINUSE:
        return (
            f"cannot listen on {host}:{port}: it is already in use (by another local server or program); "
            "choose another with --port N (0 picks a free one)"
        )
    return f"cannot listen on {host}:{port}: {error.strerror or error}"


def main(argv: list[str] | None = None) -> int:
    return asyncio.run(_serve(_parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())
