"""Child processes of the benchmark: the local Prodia server and the bot runs."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


@contextlib.contextmanager
def local_server(*args: str) -> Iterator[str]:
    """Start `python -m bench.server ARGS` and yield its base URL; stop it afterwards."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "bench.server", *args],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().strip()
        if not url.startswith("http://"):
            raise RuntimeError(f"local server did not start (said {url!r})")
        yield url
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def run_json(module: str, *args: str, timeout: float = 900) -> dict:
    """Run `python -m MODULE ARGS` to completion; it prints one JSON object as its last stdout line."""
    done = subprocess.run(
        [sys.executable, "-m", module, *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0 or not lines:
        raise RuntimeError(f"{module} {' '.join(args)} failed ({done.returncode}):\n{done.stderr[-4000:]}")
    return json.loads(lines[-1])


async def control(url: str, method: str, path: str, body: dict | None = None) -> Any:
    """Call the local server's control API (`/_control/...`); its JSON answer, or None without one."""
    import aiohttp

    async with aiohttp.ClientSession() as session, session.request(method, url + path, json=body) as resp:
        resp.raise_for_status()
        return await resp.json() if resp.content_type == "application/json" else None
