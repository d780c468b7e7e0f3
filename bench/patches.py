"""Every change the bot runs (`bench/botrun.py`) make at run time to discord.py, simcord or the interpreter.

Nothing in the bot's code changes; what is replaced here is replaced in the benchmark's own process only, each
by a context manager that puts the original back on exit:
- `record_interaction_arrival`, `record_tree_start`, `record_defer_call` (all three: `instrument_dispatch`):
  wrap discord.py methods to timestamp each interaction's way to its defer;
- `timed_http_log`: swaps simcord's HTTP request log for one that timestamps each request as it goes out;
- `settle_timeout`: lowers or raises simcord's settle timeout for a while;
- `no_settlement`: turns off simcord's settlement after each actor operation;
- `unscoped_bot`: feeds the bot its events outside simcord's bot scope (the bot's work is then not simcord's
  tracked work: real timers, the real clock, nothing settled) and keeps simcord's virtual clock still;
- `upload_sizes_only`: simcord's fake CDN keeps each upload's size instead of its bytes;
- `record_gc_pauses`: a garbage-collector callback (an addition to `gc.callbacks`, not a replacement).
Clock driving (`Clock`) moves simcord's virtual clock, which the bot's `time.monotonic` reads.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import discord
import simcord
from discord import app_commands
from discord.state import ConnectionState

ADVANCE_SETTLE = 0.5


@contextlib.contextmanager
def _replaced(owner: Any, name: str, value: Any) -> Iterator[Any]:
    """Set `owner.name` to `value`, yield the original, and put the original back on exit."""
    original = getattr(owner, name)
    setattr(owner, name, value)
    try:
        yield original
    finally:
        setattr(owner, name, original)


@dataclass
class DispatchTimes:
    """perf_counter timestamps per interaction id, written by the dispatch patches below."""

    arrived: dict[int, float] = field(default_factory=dict)  # parse_interaction_create started
    tree: dict[int, float] = field(default_factory=dict)  # the command tree's task started
    defer: dict[int, float] = field(default_factory=dict)  # /imagine called defer()


@contextlib.contextmanager
def record_interaction_arrival(times: DispatchTimes) -> Iterator[None]:
    """Replaces discord.py's `ConnectionState.parse_interaction_create` (the gateway event's first bot-side code)
    with a wrapper that records when each interaction reaches the bot, then calls the original. discord.py
    collects its `parse_*` handlers when a client is made, so this must be in place before `create_bot`."""
    original = ConnectionState.parse_interaction_create

    def parse_interaction_create(self, data):  # type: ignore[no-untyped-def]
        times.arrived.setdefault(int(data["id"]), time.perf_counter())
        return original(self, data)

    with _replaced(ConnectionState, "parse_interaction_create", parse_interaction_create):
        yield


@contextlib.contextmanager
def record_tree_start(times: DispatchTimes) -> Iterator[None]:
    """Replaces discord.py's `app_commands.CommandTree._call` with a wrapper that records when the command
    tree's task starts handling an interaction: the end of the `to_tree` stage."""
    original = app_commands.CommandTree._call

    async def _call(self, interaction):  # type: ignore[no-untyped-def]
        times.tree.setdefault(interaction.id, time.perf_counter())
        return await original(self, interaction)

    with _replaced(app_commands.CommandTree, "_call", _call):
        yield


@contextlib.contextmanager
def record_defer_call(times: DispatchTimes) -> Iterator[None]:
    """Replaces discord.py's `InteractionResponse.defer` with a wrapper that records when /imagine calls it
    (after the bot's checks): splits `tree_to_defer_call` from `defer_call_to_request`."""
    original = discord.InteractionResponse.defer

    async def timed_defer(self, **kwargs):  # type: ignore[no-untyped-def]
        times.defer.setdefault(self._parent.id, time.perf_counter())
        return await original(self, **kwargs)

    with _replaced(discord.InteractionResponse, "defer", timed_defer):
        yield


@contextlib.contextmanager
def instrument_dispatch(times: DispatchTimes) -> Iterator[None]:
    """The three discord.py wrappers above together: where an interaction's time to its defer goes."""
    with record_interaction_arrival(times), record_tree_start(times), record_defer_call(times):
        yield


class TimedLog(list):
    """simcord's HTTP log, with (perf_counter, virtual seconds) for each entry as it is appended."""

    def __init__(self, env: simcord.Env) -> None:
        super().__init__()
        self.env = env
        self.times: list[tuple[float, float]] = []

    def append(self, entry) -> None:  # type: ignore[no-untyped-def]
        self.times.append((time.perf_counter(), self.env.now().timestamp()))
        super().append(entry)


@contextlib.contextmanager
def timed_http_log(env: simcord.Env) -> Iterator[TimedLog]:
    """Replaces simcord's `env.backend.http_requests` (the list its router appends each request the bot sends
    to) with a `TimedLog`, so each request gets the real and virtual time it went out at; yields the log."""
    log = TimedLog(env)
    with _replaced(env.backend, "http_requests", log):
        yield log


@contextlib.contextmanager
def settle_timeout(env: simcord.Env, seconds: float) -> Iterator[None]:
    """Sets simcord's `env.settle_timeout` (how long it waits for the bot to go quiet after each operation)
    for a while: advancing the clock fires many due timers, which takes several settle turns."""
    with _replaced(env, "settle_timeout", seconds):
        yield


@contextlib.contextmanager
def no_settlement(env: simcord.Env) -> Iterator[None]:
    """Replaces simcord's `env._settle_internal` (internal: its wait for quiescence after each actor operation)
    with a no-op. Settling rescans every job already in flight, quadratic in their number: simcord's
    bookkeeping, not Discord's, so interactions emitted meanwhile reach the bot as gateway events do."""

    async def no_settle(**_kwargs) -> None:  # type: ignore[no-untyped-def]
        return None

    with _replaced(env, "_settle_internal", no_settle):
        yield


@contextlib.contextmanager
def unscoped_bot(env: simcord.Env) -> Iterator[None]:
    """Replaces simcord's `env._bot_scope` (internal: the context its gateway feeds each event to the bot in)
    with `env.time_context` (its driver's context: Discord's datetimes and the webhook adapter, no ownership).
    What the bot starts for an event is then not simcord's tracked work: its timers are the loop's real ones,
    `time.monotonic` is the real clock (as in production), and no settlement rescans it. simcord's settlement
    scans every tracked task against every timer on each turn, so with 1,000 jobs in flight its virtual clock
    could only be driven with time frozen between steps.

    Also replaces `env._advance_to` (internal: how a tracked timer's real-time fallback moves the virtual clock)
    with a no-op, so simcord's clock stands still: the work it still tracks from the bot's start-up (aiohttp's
    connection-pool cleanup after 15 s, the recovery sweep every 40 s) does not run, and no jump of that clock
    expires the 3 s defer window of interactions in flight. Discord's timestamps do not advance meanwhile."""

    async def frozen(_target: float, _deadline: float) -> None:
        return None

    with _replaced(env, "_bot_scope", env.time_context), _replaced(env, "_advance_to", frozen):
        yield


class _UploadSizes(dict):
    """A stand-in for simcord's CDN blob store: keeps each upload's size, stores empty bytes."""

    def __init__(self) -> None:
        super().__init__()
        self.sizes: dict[str, int] = {}

    def __setitem__(self, url: str, data: bytes) -> None:
        self.sizes[url] = len(data)
        super().__setitem__(url, b"")


@contextlib.contextmanager
def upload_sizes_only(env: simcord.Env) -> Iterator[dict[str, int]]:
    """Replaces simcord's `env.backend.cdn._blobs` (internal: every uploaded attachment's bytes, kept so that a
    test can read them back) with a store of their sizes; yields {url: bytes uploaded}. Discord keeps uploads
    on its CDN, not in the bot's process: kept here, 1,000 results of 0.1-1.5 MB would count in the bot's RSS."""
    store = _UploadSizes()
    with _replaced(env.backend.cdn, "_blobs", store):
        yield store.sizes


@contextlib.contextmanager
def record_gc_pauses() -> Iterator[list[tuple[int, float]]]:
    """Adds a callback to `gc.callbacks` (removed on exit) and yields the list it fills with (generation, ms)
    for each garbage collection meanwhile: are the slow acknowledgements collections?"""
    pauses: list[tuple[int, float]] = []
    started = [0.0]

    def on_gc(phase: str, info: dict) -> None:
        if phase == "start":
            started[0] = time.perf_counter()
        else:
            pauses.append((info["generation"], (time.perf_counter() - started[0]) * 1000))

    gc.callbacks.append(on_gc)
    try:
        yield pauses
    finally:
        gc.callbacks.remove(on_gc)


class Clock:
    """Moves simcord's virtual clock on by the real time that passed since its last move, so the bot's sleeps
    (polls, edit pacing) last at least the real time they asked for. An advance that times out (the bot was
    busy) leaves the virtual clock behind for good: it is never made up, since a catch-up would run the bot's
    clock faster than the real one and squeeze its paced edits together in real time. Virtual time thus never
    passes faster than real time, and a real-clock gap between two edits is at least the bot's own."""

    def __init__(self, env: simcord.Env) -> None:
        self.env = env
        self.real_start = self.last = time.perf_counter()
        self.virtual_start = env.now().timestamp()

    def behind(self) -> float:
        """Seconds the virtual clock is behind the real one."""
        real = time.perf_counter() - self.real_start
        return real - (self.env.now().timestamp() - self.virtual_start)

    async def catch_up(self) -> None:
        now = time.perf_counter()
        step, self.last = now - self.last, now
        if step <= 0:
            return
        with settle_timeout(self.env, ADVANCE_SETTLE):
            try:
                await self.env.advance_time(step)
            except TimeoutError:
                pass  # busy: the time up to where the bot got is committed; the rest is dropped

    async def run_for(self, seconds: float, tick: float = 0.02) -> None:
        end = time.perf_counter() + seconds
        while time.perf_counter() < end:
            await asyncio.sleep(tick)
            await self.catch_up()
