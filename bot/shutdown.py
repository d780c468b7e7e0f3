"""A clean stop on SIGTERM (`docker stop`, systemd, Kubernetes) and SIGINT (Ctrl-C).

On the first signal the bot takes no new work (commands are answered privately that it is restarting), hands
the jobs in flight back to the journal with their leases released (so the next start, or another process,
resumes them at once instead of after the lease expires), and closes its gateway; the caller then closes the
store and the session, and the process exits 0. A second signal is not caught: SIGINT raises
KeyboardInterrupt, SIGTERM ends the process at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .client import ImagineBot, ShardedImagineBot

log = logging.getLogger(__name__)

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)
# Longest a stop may take before the bot gives up on closing tidily (the store and session are closed anyway).
# Compose's stop_grace_period (docker-compose.yml) leaves room above it.
STOP_TIMEOUT = 10.0


async def run_until_stopped(bot: ImagineBot | ShardedImagineBot, serve: Coroutine[Any, Any, None]) -> None:
    """Run `serve` (log in and hold the gateway) until it ends, or until SIGTERM or SIGINT: then stop the bot
    cleanly and return. What `serve` raises before a signal (a refused token, no network) is raised here."""
    loop = asyncio.get_running_loop()
    signalled = asyncio.Event()

    def on_signal(signum: int) -> None:
        log.info("%s: stopping (jobs in flight are handed back to the journal)", signal.Signals(signum).name)
        _restore_default_handlers(loop)  # a second signal is not caught: it ends the process
        signalled.set()

    for signum in STOP_SIGNALS:
        with contextlib.suppress(NotImplementedError):  # not on Windows: Ctrl-C then raises KeyboardInterrupt
            loop.add_signal_handler(signum, on_signal, signum)
    serving = asyncio.create_task(serve)
    waiting = asyncio.create_task(signalled.wait())
    try:
        await asyncio.wait({serving, waiting}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        waiting.cancel()
        _restore_default_handlers(loop)
    if not signalled.is_set():
        serving.result()  # it ended on its own: its exception, if any, is the caller's
        return
    await stop(bot, serving)


async def stop(bot: ImagineBot | ShardedImagineBot, serving: asyncio.Task[None]) -> None:
    """Close the bot (see `ImagineMixin.close`: new work refused, jobs handed back, gateway closed) within
    STOP_TIMEOUT, and end `serving`, the task holding its connection."""
    if not bot.is_ready():
        serving.cancel()  # still logging in or connecting: no job can be in flight yet
    try:
        async with asyncio.timeout(STOP_TIMEOUT):
            await bot.close()
    except TimeoutError:
        log.warning("The bot did not close within %.0f s; stopping anyway", STOP_TIMEOUT)
    serving.cancel()  # connect() returns once the bot is closed; this ends it if it did not
    await asyncio.gather(serving, return_exceptions=True)
    log.info("Stopped")


def _restore_default_handlers(loop: asyncio.AbstractEventLoop) -> None:
    for signum in STOP_SIGNALS:
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.remove_signal_handler(signum)
