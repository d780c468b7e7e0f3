"""Every change the bot runs (`bench/botrun.py`) make at run time to discord.py, simcord or the interpreter.

Nothing in the bot's code changes; what is replaced here is replaced in the benchmark's own process only, each
by a context manager that puts the original back on exit:
- `record_interaction_arrival`, `record_tree_start`, `record_defer_call` (all three: `instrument_dispatch`):
  wrap discord.py methods to timestamp each interaction's way to its defer;
- `timed_http_log`: swaps simcord's HTTP request log for one that timestamps each request as it goes out;
- `settle_timeout`: lowers or raises simcord's settle timeout for a while;
- `no_settlement`: turns off simcord's settlement after each actor operation;
- `batch_virtual_timers`: rounds simcord's next virtual timer instant up;
- `record_gc_pauses`: a garbage-collector callback (an addition to `gc.callbacks`, not a replacement).
Clock driving (`Clock`, `step_until`) moves simcord's virtual clock, which the bot's `time.monotonic` reads.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import math
import time
from collections.abc import Callable, Iterator
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
def batch_virtual_timers(quantum: float) -> Iterator[None]:
    """Replaces simcord's `simcord.env._next_virtual_timer` (internal) with one that rounds the next timer
    instant up to `quantum`. simcord advances its clock one timer instant at a time and settles the whole bot
    after each; with a thousand jobs' timers that is a thousand settlements per virtual second. Rounded, the
    timers due within one quantum fire together (each at most `quantum` late)."""
    from simcord import env as simcord_env

    exact = simcord_env._next_virtual_timer

    def batched(state):  # type: ignore[no-untyped-def]
        instant = exact(state)
        return None if instant is None else math.ceil(instant / quantum) * quantum

    with _replaced(simcord_env, "_next_virtual_timer", batched):
        yield


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
    """Keeps simcord's virtual clock in step with the real one: the bot's sleeps (polls, edit throttling)
    then end after the real time they asked for, and the job durations at the server are real time too.
    An advance that times out (the bot was busy) leaves the virtual clock behind; the next one makes up the
    difference, so the two clocks do not drift apart."""

    def __init__(self, env: simcord.Env) -> None:
        self.env = env
        self.real_start = time.perf_counter()
        self.virtual_start = env.now().timestamp()

    def behind(self) -> float:
        """Seconds the virtual clock is behind the real one."""
        real = time.perf_counter() - self.real_start
        return real - (self.env.now().timestamp() - self.virtual_start)

    async def catch_up(self) -> None:
        step = self.behind()
        if step <= 0:
            return
        with settle_timeout(self.env, ADVANCE_SETTLE):
            try:
                await self.env.advance_time(step)
            except TimeoutError:
                pass  # busy: the time up to where the bot got is committed; the rest follows next time

    async def run_for(self, seconds: float, tick: float = 0.02) -> None:
        end = time.perf_counter() + seconds
        while time.perf_counter() < end:
            await asyncio.sleep(tick)
            await self.catch_up()


async def step_until(env: simcord.Env, done: Callable[[], bool], on_step: Callable[[int], None]) -> tuple[int, int]:
    """Advance simcord's virtual clock a second at a time, each step running until the bot is quiet (every timer
    fires in order), until `done()`; then one more second. Returns (virtual seconds stepped, steps timed out).
    The caller bounds it in real time and sets the settle timeout."""
    virtual_seconds = timeouts = 0
    while not done():
        try:
            await env.advance_time(1.0)
        except TimeoutError:
            timeouts += 1  # a fallback advance simcord began earlier gave up; what it reached stays
        virtual_seconds += 1
        on_step(virtual_seconds)
    await env.advance_time(1.0)  # the reroll reaction and the store write after the final edit
    return virtual_seconds, timeouts
