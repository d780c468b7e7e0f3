"""When to poll a submitted job (v1, v2 async).

`PollPolicy` is a fixed interval (the official client's 250 ms, or the original provider's 2 s).
`HazardPolling` is the bot's default, and it assumes no shape of the duration distribution.

**The rule.** A poll at time s costs one request if the job is still running then; a job that
finishes at D waits from D to the next poll. With n(s) polls per second around s, the expected cost
is ∫ n·S (S: the chance the job still runs at s) and the expected delay ∫ f/(2n) (f: the density of
D). Minimising polls + λ·delay pointwise gives n(s) ∝ sqrt(f/S) = sqrt(hazard): poll densely where a
running job is likely to finish *now*, rarely where it cannot be done yet or has run long past what
was seen. The constant is chosen so the expected delay equals `target_delay` (by default half the
interval: 125 ms for 250 ms, the fixed policy's own mean delay): then the polls are the fewest that
buy that delay, whatever the distribution (narrow, wide, skewed, with outliers). For that schedule
E[polls before D] = K²/(2·delay) with K = ∫ sqrt(f·S): the benchmark's "oracle" uses the same
formula with the true distribution.

**The estimate.** Per model, f and S come from a Gaussian kernel estimate over the last `window`
observed durations, weighted towards recent ones (half-weight after `half_life` jobs) so a drift is
followed within its window; the bandwidth is Silverman's, but never below 0.5/(effective sample
size) of the typical duration, since a few jobs say little about how much sooner the next may end. It
is mixed with a 10 % log-uniform prior reaching 10x the longest duration seen, so an outlier is still
found at a moderate pace. A model with no history of its own starts from every model's recent
durations. From the estimate the cumulative poll count M(s) = ∫0^s n is tabulated once per new
observation (about a millisecond); each delay is then a binary search: the next poll is where M grows by
one, at most two per target delay. Past the prior's reach it backs off to `max_interval`. With no
history at all it polls every `interval`, then a tenth of the elapsed time (capped at `max_interval`),
and a job younger than one of its model already seen running L seconds sleeps towards `floor`·L. A
Retry-After from the server is honoured by the caller on top of this delay.

Where the numbers come from: the rule and the oracle are derived, not fitted. Three choices were made
by replaying the benchmark's seven workloads offline: the target delay (half the interval, tried 0.4-0.7),
the tail prior (10 % up to 10x, tried 5-15 % up to 10-20x) and the bandwidth floor (0.5/n, since the
gap below the least of n samples shrinks like 1/n; tried 0.25-0.4/sqrt(n)); so those workloads are not
independent of them.
`python -m bench --phases delivery` compares the policy with the fixed ones and with the best schedule
possible on each.
"""

from __future__ import annotations

import asyncio
import bisect
import math
import random
import time
from collections import deque
from dataclasses import dataclass


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


@dataclass(frozen=True)
class Schedule:
    """The learned poll schedule of one model: cumulative polls M at times `at` (a grid), up to `end`."""

    at: list[float]
    polls: list[float]

    @property
    def end(self) -> float:
        return self.at[-1]

    def next_poll(self, elapsed: float) -> float | None:
        """When M has grown by one after `elapsed`, or None past the end of the grid."""
        i = bisect.bisect_right(self.at, elapsed)
        if i >= len(self.at):
            return None
        if i == 0:
            current = self.polls[0]
        else:  # linear between grid points
            t0, t1 = self.at[i - 1], self.at[i]
            m0, m1 = self.polls[i - 1], self.polls[i]
            current = m0 + (m1 - m0) * (elapsed - t0) / (t1 - t0)
        j = bisect.bisect_left(self.polls, current + 1.0, lo=i)
        if j >= len(self.polls):
            return None
        m0, m1 = self.polls[j - 1], self.polls[j]
        t0, t1 = self.at[j - 1], self.at[j]
        return t0 + (t1 - t0) * (current + 1.0 - m0) / (m1 - m0) if m1 > m0 else t1


TAIL_SHARE = 0.1  # the prior's weight: some jobs run far longer than any seen (outliers, a drift up)
TAIL_REACH = 10.0  # the prior spans up to this many times the longest duration seen


def schedule(durations: list[float], weights: list[float], target_delay: float, points: int = 150) -> Schedule:
    """The sqrt-hazard schedule for a weighted sample of durations, scaled to `target_delay`.

    The distribution is a Gaussian kernel estimate mixed with a small log-uniform prior reaching
    TAIL_REACH times the longest duration seen, so a job running longer than the sample is still
    polled at a pace the prior's (modest) hazard sets instead of densely or not at all."""
    total = sum(weights)
    mean = sum(w * d for w, d in zip(weights, durations, strict=True)) / total
    spread = math.sqrt(sum(w * (d - mean) ** 2 for w, d in zip(weights, durations, strict=True)) / total)
    # Silverman's bandwidth, with a floor relative to the typical duration that shrinks as the (effective)
    # sample grows: three jobs say little about how much shorter the next one may be.
    effective = total**2 / sum(w * w for w in weights)
    typical = sorted(durations)[len(durations) // 2]
    bandwidth = max(0.02, 1.06 * spread * effective**-0.2, typical * max(0.06, 0.5 / effective))
    low, high = max(0.05, 0.5 * min(durations)), TAIL_REACH * max(durations)
    kde_end = max(durations) + 3 * bandwidth
    step = max(0.01, kde_end / points)
    at = [i * step for i in range(int(kde_end / step) + 1)]
    while at[-1] < high:  # past the sample, geometric steps through the prior's reach
        at.append(at[-1] * 1.05)
    density, survival = [], []
    norm = total * bandwidth * math.sqrt(2 * math.pi)
    for t in at:
        f = s = 0.0
        for w, d in zip(weights, durations, strict=True):
            z = (t - d) / bandwidth
            if z < 8:
                f += w * math.exp(-0.5 * z * z)
                s += w * 0.5 * math.erfc(z / math.sqrt(2))
        prior_f = 1 / (t * math.log(high / low)) if low <= t <= high else 0.0
        prior_s = 1.0 if t < low else max(0.0, math.log(high / t) / math.log(high / low))
        density.append((1 - TAIL_SHARE) * f / norm + TAIL_SHARE * prior_f)
        survival.append((1 - TAIL_SHARE) * s / total + TAIL_SHARE * prior_s)
    # n(t) = c·sqrt(f/S); c from E[delay] = (1/2c)·∫ sqrt(f·S) = target_delay.
    k = sum(math.sqrt(f * s) * (t1 - t0) for f, s, t0, t1 in zip(density, survival, at, at[1:], strict=False))
    c = k / (2 * target_delay) if k > 0 else 1.0 / target_delay
    polls, acc = [0.0], 0.0
    for i in range(1, len(at)):
        dt = at[i] - at[i - 1]
        if survival[i] < 1e-6:
            return Schedule(at[:i], polls)
        # At most one poll per half target delay: near the end of what was seen the hazard soars.
        acc += min(dt / (0.5 * target_delay), c * math.sqrt(density[i] / survival[i]) * dt)
        polls.append(acc)
    return Schedule(at, polls)


class HazardPolling(PollPolicy):
    """Poll where a running job is likely to finish now: n(t) ∝ sqrt(hazard), learned per model."""

    def __init__(
        self,
        interval: float = 0.25,
        *,
        target_delay: float | None = None,
        max_interval: float = 2.0,
        max_sleep: float = 60.0,
        window: int = 40,
        half_life: float = 10.0,
        jitter: float = 0.2,
        floor: float = 0.75,
    ) -> None:
        super().__init__(interval)
        self.target_delay = 0.5 * interval if target_delay is None else target_delay
        self.max_interval = max(max_interval, interval)
        self.max_sleep = max_sleep
        self.window = window
        self.half_life = half_life
        self.jitter = jitter  # +- this share on back-off delays, against lockstep bursts of polls
        self.floor = floor
        self._pooled: deque[float] = deque(maxlen=window)  # recent durations of every model: a new one's prior
        self._durations: dict[str, deque[float]] = {}
        self._schedules: dict[str, Schedule] = {}
        self._unfinished: dict[str, float] = {}  # per model without history: the longest a job ran unfinished

    def schedule(self, model: str) -> Schedule | None:
        """The model's schedule from its own recent durations (recent ones weigh most); a model with none yet
        starts from every model's recent durations."""
        if model in self._schedules:
            return self._schedules[model]
        own = self._durations.get(model)
        if own:
            durations = list(own)
            weights = [0.5 ** (age / self.half_life) for age in range(len(own) - 1, -1, -1)]  # the newest: age 0
        elif self._pooled:  # a model without history of its own starts from every model's recent jobs
            durations = list(self._pooled)
            weights = [0.5 ** (age / self.half_life) for age in range(len(durations) - 1, -1, -1)]
        else:
            return None
        self._schedules[model] = schedule(durations, weights, self.target_delay)
        return self._schedules[model]

    def delay(self, model: str, elapsed: float, status: str) -> float:
        younger = self.floor * self._unfinished.get(model, 0.0) - elapsed
        if not self._pooled and younger > self.interval:
            return min(younger, self.max_interval)
        learned = self.schedule(model)
        if learned is None:
            # Nothing learned of any model yet: the fixed interval at first, then a tenth of the time already
            # spent, capped, so hundreds of unknown long jobs do not flood Prodia and the bot's own loop.
            return min(max(self.interval, 0.1 * elapsed), self.max_interval) * self._jitter()
        at = learned.next_poll(elapsed)
        if at is not None:
            return min(max(at - elapsed, 0.01), self.max_sleep)
        # Longer than any job seen: back off with the overrun, capped, jittered.
        overrun = max(0.0, elapsed - learned.end)
        return min(self.max_interval, max(self.interval, 0.25 * overrun)) * self._jitter()

    def _jitter(self) -> float:
        return random.uniform(1 - self.jitter, 1 + self.jitter)

    def observe(self, model: str, duration: float) -> None:
        if duration < 0:
            return
        self._durations.setdefault(model, deque(maxlen=self.window)).append(duration)
        self._pooled.append(duration)
        self._schedules.pop(model, None)  # recomputed at the next delay
        for other in [m for m in self._schedules if m not in self._durations]:
            del self._schedules[other]  # models without history follow the pooled durations
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
