"""When to poll a v1 job.

`PollPolicy` is a fixed interval (the official client's 250 ms, or the original provider's 2 s).
`LearnedPolling` is the bot's default: it learns per model how long jobs take, sleeps until shortly
before the earliest likely finish, polls densely around the expected finish and backs off, capped,
when a job runs longer than anything it has seen. `python -m bench` compares them.
"""

from __future__ import annotations

import asyncio
import random
import statistics
import time
from collections import deque


class PollPolicy:
    """A fixed interval (the official client's 250 ms by default)."""

    def __init__(self, interval: float = 0.25) -> None:
        self.interval = interval

    def delay(self, model: str, elapsed: float, status: str) -> float:
        return self.interval

    def observe(self, model: str, duration: float) -> None:
        """Learn how long a job of `model` took; a fixed interval has nothing to learn."""

    def running(self, model: str, elapsed: float) -> None:
        """Learn that a job of `model` was still unfinished `elapsed` seconds after its submit."""


class LearnedPolling(PollPolicy):
    """Poll little while a job cannot be done yet, densely when it is likely to finish.

    Per model it keeps the last `window` observed durations. For a job of a model with history:

    - before `start` = min(recent) - margin it sleeps straight to `start` (one poll, not many);
    - from `start` to `end` = max(recent) + margin it polls every `dense` seconds;
    - after `end` the job runs long: the interval grows with the overrun (a quarter of it), from
      `dense` up to `max_interval`, so a stuck job costs a logarithmic number of polls.

    The margin is max(`dense`, `spread` x the standard deviation); with a single observation it is
    15 % of it. Without history it polls every `interval` for the first seconds, then every tenth of
    the elapsed time, up to `max_interval`; but while another job of the model is known to have run
    for L seconds unfinished, a job younger than `floor` x L sleeps towards that age, `max_interval`
    at most at a time (jobs of one model started later rarely finish much sooner, and the cap bounds
    the cost when one does).
    A Retry-After from the server is honoured by the caller (ProdiaV1.wait) on top of this delay.
    """

    def __init__(
        self,
        interval: float = 0.25,
        *,
        dense: float | None = None,
        max_interval: float = 2.0,
        window: int = 20,
        spread: float = 0.5,
        max_sleep: float = 60.0,
        jitter: float = 0.2,
        floor: float = 0.75,
    ) -> None:
        super().__init__(interval)
        self.dense = min(interval, 0.15) if dense is None else dense
        self.max_interval = max(max_interval, self.dense)
        self.spread = spread
        self.max_sleep = max_sleep
        self.jitter = jitter  # +- this share on back-off delays, against lockstep bursts of polls
        self.window = window
        self.floor = floor
        self._durations: dict[str, deque[float]] = {}
        self._unfinished: dict[str, float] = {}  # per model without history: the longest a job ran unfinished

    def expected(self, model: str) -> tuple[float, float] | None:
        """(start, end) of the dense window for `model`, or None without history."""
        recent = self._durations.get(model)
        if not recent:
            return None
        low, high = min(recent), max(recent)
        if len(recent) >= 2:
            # Below the shortest of up to `window` jobs already, so half a deviation more is enough.
            margin = max(self.dense, self.spread * statistics.pstdev(recent))
        else:
            margin = max(self.dense, 0.15 * low)  # one job says nothing of the spread: a wide margin
        return max(0.0, low - margin), high + margin

    def delay(self, model: str, elapsed: float, status: str) -> float:
        window = self.expected(model)
        if window is None:
            younger = self.floor * self._unfinished.get(model, 0.0) - elapsed
            if younger > self.interval:
                return min(younger, self.max_interval)
            # Nothing learned yet: the fixed interval at first, then a tenth of the time already spent,
            # capped, so hundreds of unknown long jobs do not flood Prodia and the bot's own loop.
            # Jittered so that many jobs started together do not poll in lockstep bursts.
            backoff = min(max(self.interval, 0.1 * elapsed), max(self.max_interval, self.interval))
            return backoff * self._jitter()
        start, end = window
        if elapsed < start - self.dense:
            return min(start - elapsed, self.max_sleep)
        if elapsed <= end:
            return self.dense
        return min(self.max_interval, max(self.dense, 0.25 * (elapsed - end))) * self._jitter()

    def _jitter(self) -> float:
        return random.uniform(1 - self.jitter, 1 + self.jitter)

    def observe(self, model: str, duration: float) -> None:
        if duration < 0:
            return
        self._durations.setdefault(model, deque(maxlen=self.window)).append(duration)
        self._unfinished.pop(model, None)  # history answers from now on

    def running(self, model: str, elapsed: float) -> None:
        if model not in self._durations:
            self._unfinished[model] = max(self._unfinished.get(model, 0.0), elapsed)


class PollRate:
    """A ceiling on polls per second across every job of the process: under a flood of long jobs the
    bot spaces polls out instead of spending its event loop on them. Each poll reserves the next free
    slot, so waiting polls go in the order they asked."""

    def __init__(self, per_second: float) -> None:
        self.spacing = 1.0 / per_second
        self._next = 0.0

    async def turn(self) -> None:
        now = time.monotonic()
        slot = max(now, self._next)
        self._next = slot + self.spacing
        if slot > now:
            await asyncio.sleep(slot - now)
