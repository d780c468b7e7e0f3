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

**The estimate.** Durations are modelled in log time, as a model's typical duration times a shape
that models share: a model's typical duration is the recency-weighted median of its last `window`
durations (half-weight after `half_life` jobs, so a drift is followed), the shape is the residuals
around it, its own and the other models' recent ones (these weigh `shared_weight` jobs in all), so a
model seen once or twice is as predictable as the busy ones say models are. Three durations in a row
beyond every earlier one of the model, on the same side, are a level shift (a new model version, a loaded
cluster), not outliers: the model's older durations are forgotten (replayed on the drift workload, 2 s ->
4 s halfway: 4.7 polls a job instead of 6.2 at the same delay; on the others it never fires). f and S come from a
Gaussian kernel estimate over that sample (Silverman's bandwidth, widened by the uncertainty of a
typical duration known from n jobs), mixed with a log-uniform prior reaching 10x the longest duration
seen, whose share is the chance that the next job outlasts everything seen (1/(n+1) for n jobs),
at least 5 %: an outlier is still found at a moderate pace. A model with no history of its own
starts from every model's recent durations. From the estimate the cumulative poll count M(s) = ∫0^s n
is tabulated (a few milliseconds) after each job of the model and, for the shared shape, every few
jobs of others; each delay is then a binary search: the next poll is where M grows by one, at most two
per target delay. Past the prior's reach it backs off to `max_interval`. With no history at all it
polls every `interval`, then a tenth of the elapsed time (capped at `max_interval`), and a job younger
than one of its model already seen running L seconds sleeps towards `floor`·L. A Retry-After from the
server is honoured by the caller on top of this delay.

**What a poll teaches** (`finished`): the midpoint of a narrow bracket (the last "running" answer, the
"done" one); from a job found done at its first poll, that time, 10 % less for each such job of the
model in a row (down to half): it is only an upper bound. A speed-up shows as jobs found done at their
first poll more often than the schedule gives them a chance to be (a binomial tail below 0.1 % over the
model's last five jobs, judged once the model is known from 8): then the model is forgotten, learned
afresh from polls at the interval, and `finished` returns True so the caller wakes the model's jobs asleep
until a first poll planned for the old durations (`ProdiaClient.poll`). Replayed on a 4 s -> 2 s speed-up
(`python -m bench.replay --held-out`): 1.8x the fixed policy's mean delay at 0.41x its polls (5.9x with
neither the forgetting nor the wake-up). What is left is the jobs that start before the first faster job
reaches its first poll: only polling earlier than the belief (exploration) would find them sooner, and that
costs every steady model about a poll a job.

Where the numbers come from: the rule and the oracle are derived, not fitted. The choices (target
delay half the interval; prior at least 5 % up to 10x; the shared shape weighing 5 jobs; the upper
bound's 10 % steps) were made by replaying the benchmark's seven workloads offline (`python -m bench.replay
--seeds 3`) and then checked on six shapes not in the benchmark (`--held-out`: a speed-up, a gamma, two modes
per model, a Pareto tail, sub-second and 10-30 s models); so the seven are not independent of them.
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

    def finished(self, model: str, running_at: float | None, done_at: float) -> bool:
        """A poll `done_at` seconds after submit found the job done; the answer before it (at `running_at`,
        None if this was the first poll) said running. True if what it taught may make polls of the model's
        other jobs due earlier than planned (the caller wakes them). A fixed interval has nothing to learn."""
        return False

    def observe(self, model: str, duration: float) -> bool:
        """Learn that a job of `model` took `duration` seconds; True as for `finished`."""
        return False

    def running(self, model: str, elapsed: float) -> None:
        """Learn that a job of `model` was still unfinished `elapsed` seconds after its submit."""


@dataclass(frozen=True)
class Schedule:
    """The learned poll schedule of one model: cumulative polls M at times `at` (a grid), up to `end`."""

    at: list[float]
    polls: list[float]
    survival: list[float]  # the estimated chance that a job still runs at each point of `at`

    @property
    def end(self) -> float:
        return self.at[-1]

    def done_by_first_poll(self) -> float:
        """The estimated chance that a job is already done when its first poll comes."""
        first = self.next_poll(0.0)
        if first is None:
            return 1.0
        i = min(bisect.bisect_left(self.at, first), len(self.at) - 1)
        return 1.0 - self.survival[i]

    def next_poll(self, elapsed: float, step: float = 1.0) -> float | None:
        """When M has grown by `step` after `elapsed`, or None past the end of the grid."""
        i = bisect.bisect_right(self.at, elapsed)
        if i >= len(self.at):
            return None
        if i == 0:
            current = self.polls[0]
        else:  # linear between grid points
            t0, t1 = self.at[i - 1], self.at[i]
            m0, m1 = self.polls[i - 1], self.polls[i]
            current = m0 + (m1 - m0) * (elapsed - t0) / (t1 - t0)
        j = bisect.bisect_left(self.polls, current + step, lo=i)
        if j >= len(self.polls):
            return None
        m0, m1 = self.polls[j - 1], self.polls[j]
        t0, t1 = self.at[j - 1], self.at[j]
        return t0 + (t1 - t0) * (current + step - m0) / (m1 - m0) if m1 > m0 else t1


TAIL_SHARE = 0.05  # the prior's weight: some jobs run far longer than any seen (outliers, a drift up)
TAIL_REACH = 10.0  # the prior spans up to this many times the longest duration seen


def schedule(
    logs: list[float], weights: list[float], bandwidth: float, target_delay: float, tail: float, points: int = 150
) -> Schedule:
    """The sqrt-hazard schedule for a weighted sample of log-durations, scaled to `target_delay`.

    The distribution is a Gaussian kernel estimate in log time (`bandwidth` in log units: a spread
    relative to the duration) mixed with a small log-uniform prior reaching TAIL_REACH times the longest
    duration in the sample, so a job running longer than the sample is still polled at a pace the prior's
    (modest) hazard sets instead of densely or not at all."""
    total = sum(weights)
    shortest, longest = math.exp(min(logs)), math.exp(max(logs))
    low, high = max(0.05, 0.5 * shortest), TAIL_REACH * longest
    kde_end = longest * math.exp(4 * bandwidth)
    step = max(0.01, kde_end / points)
    at = [i * step for i in range(int(kde_end / step) + 1)]
    while at[-1] < high:  # past the sample, geometric steps through the prior's reach
        at.append(at[-1] * 1.05)
    density, survival = [], []
    norm = total * bandwidth * math.sqrt(2 * math.pi)
    for t in at:
        f, s = 0.0, total
        if t > 0:
            log_t = math.log(t)
            s = 0.0
            for w, x in zip(weights, logs, strict=True):
                z = (log_t - x) / bandwidth
                if z < 8:
                    f += w * math.exp(-0.5 * z * z)
                    s += w * 0.5 * math.erfc(z / math.sqrt(2))
            f /= norm * t  # a log-normal kernel's density in t
        prior_f = 1 / (t * math.log(high / low)) if low <= t <= high else 0.0
        prior_s = 1.0 if t < low else max(0.0, math.log(high / t) / math.log(high / low))
        density.append((1 - tail) * f + tail * prior_f)
        survival.append((1 - tail) * s / total + tail * prior_s)
    # n(t) = c·sqrt(h) with h = f/S the mixture's hazard; c from the expected delay of the jobs the sample
    # describes (the prior shapes the tail, it is not a share of jobs): E[delay] = ∫ f_kde/(2n) = target_delay.
    # n(t) = c·sqrt(f/S); c from E[delay] = (1/2c)·∫ sqrt(f·S) = target_delay.
    k = sum(math.sqrt(f * s) * (t1 - t0) for f, s, t0, t1 in zip(density, survival, at, at[1:], strict=False))
    c = k / (2 * target_delay) if k > 0 else 1.0 / target_delay
    polls, acc = [0.0], 0.0
    for i in range(1, len(at)):
        dt = at[i] - at[i - 1]
        if survival[i] < 1e-6:
            return Schedule(at[:i], polls, survival[:i])
        # At most one poll per half target delay: near the end of what was seen the hazard soars.
        acc += min(dt / (0.5 * target_delay), c * math.sqrt(density[i] / survival[i]) * dt)
        polls.append(acc)
    return Schedule(at, polls, survival)


def weighted_median(values: list[float], weights: list[float]) -> float:
    return weighted_quantile(values, weights, 0.5)


def weighted_spread(values: list[float], weights: list[float]) -> float:
    total = sum(weights)
    mean = sum(w * v for w, v in zip(weights, values, strict=True)) / total
    return math.sqrt(sum(w * (v - mean) ** 2 for w, v in zip(weights, values, strict=True)) / total)


def weighted_quantile(values: list[float], weights: list[float], q: float) -> float:
    share, acc = q * sum(weights), 0.0
    for value, weight in sorted(zip(values, weights, strict=True)):
        acc += weight
        if acc >= share:
            return value
    return max(values)


@dataclass
class ModelHistory:
    """One model's recent log-durations, their recency-weighted median (the model's typical duration) and
    each one's residual from it (its shape, shared with the other models)."""

    logs: deque[float]
    centre: float = 0.0
    residuals: tuple[float, ...] = ()

    def add(self, log_duration: float, half_life: float) -> bool:
        """Add one duration; True if it revealed a shift to shorter durations."""
        self.logs.append(log_duration)
        shift = self.shifted()
        if shift:  # the model changed (a new version, a loaded cluster): forget what it was
            for _ in range(len(self.logs) - SHIFT_RUN):
                self.logs.popleft()
        n = len(self.logs)
        self.centre = weighted_median(list(self.logs), recency(n, half_life))
        # Residuals from an in-sample median understate the spread for a few jobs: widened as a variance is.
        widen = math.sqrt(n / (n - 1)) if n > 1 else 0.0
        self.residuals = tuple((x - self.centre) * widen for x in self.logs)
        return shift < 0

    def shifted(self) -> int:
        """1 (longer) or -1 (shorter) if the last SHIFT_RUN durations all lie beyond every earlier one, on the
        same side, by a clear margin: a level shift, not outliers (one in ten makes a run of three about once in
        a thousand); else 0."""
        if len(self.logs) < SHIFT_RUN + 2:
            return 0
        logs = list(self.logs)
        older, newest = logs[:-SHIFT_RUN], logs[-SHIFT_RUN:]
        margin = max(SHIFT_MARGIN, 2 * weighted_spread(older, [1.0] * len(older)))
        if min(newest) > max(older) + margin:
            return 1
        return -1 if max(newest) < min(older) - margin else 0


SHIFT_RUN = 3  # durations in a row that reveal a shift in a model's durations
SHIFT_MARGIN = 0.15  # beyond every earlier duration by this much in log units (16 %) at least


def improbable(first_polls: deque[tuple[bool, float]], level: float = 0.001) -> bool:
    """Were too many of these jobs done by their first poll for the estimated chances (a binomial tail at
    their mean chance below `level`)? Then the model got faster than its schedule assumes."""
    done = sum(found for found, _ in first_polls)
    if done < 2:
        return False
    n, p = len(first_polls), sum(chance for _, chance in first_polls) / len(first_polls)
    tail = sum(math.comb(n, k) * p**k * (1 - p) ** (n - k) for k in range(done, n + 1))
    return tail < level


def effective_size(weights: list[float]) -> float:
    return sum(weights) ** 2 / sum(w * w for w in weights)


def recency(count: int, half_life: float) -> list[float]:
    """Weights of `count` observations in arrival order: the newest 1, halving every `half_life` older."""
    return [0.5 ** (age / half_life) for age in range(count - 1, -1, -1)]


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
        shared_weight: float = 5.0,
        jitter: float = 0.2,
        floor: float = 0.75,
    ) -> None:
        super().__init__(interval)
        self.target_delay = 0.5 * interval if target_delay is None else target_delay
        self.max_interval = max(max_interval, interval)
        self.max_sleep = max_sleep
        self.window = window
        self.half_life = half_life
        self.shared_weight = shared_weight  # the other models' shape counts as this many of a model's own jobs
        self.jitter = jitter  # +- this share on back-off delays, against lockstep bursts of polls
        self.floor = floor
        self._models: dict[str, ModelHistory] = {}
        self._recent: deque[tuple[str, float]] = deque(maxlen=window)  # (model, log duration), every model
        self._schedules: dict[str, tuple[Schedule, int]] = {}  # with the count of observations it was made at
        self._observations = 0
        self._bounded: dict[str, int] = {}  # per model: how many jobs in a row were found done at the first poll
        # per model, its last 5 jobs: (found done at the first poll, the estimated chance of that)
        self._first_polls: dict[str, deque[tuple[bool, float]]] = {}
        self._unfinished: dict[str, float] = {}  # per model without history: the longest a job ran unfinished
        self._forgotten: set[str] = set()  # models forgotten after a speed-up, not yet seen again

    def _estimate(self, model: str) -> tuple[list[float], list[float], float, float] | None:
        """A model's predicted log-durations as a weighted sample and a kernel bandwidth (log units).

        With history: its typical duration plus residuals, its own and (weighing `shared_weight` jobs in
        all) the other models' recent ones, so the shape of durations learned on busy models serves a model
        seen a few times; the bandwidth adds the uncertainty of a typical duration known from n jobs.
        Without: every model's recent durations."""
        own = self._models.get(model)
        if own is None:
            if not self._recent:
                return None
            logs = [x for _, x in self._recent]
            weights = recency(len(logs), self.half_life)
            bandwidth = max(0.05, 1.06 * weighted_spread(logs, weights) * len(logs) ** -0.2)
            return logs, weights, bandwidth, self._tail(effective_size(weights))
        n = len(own.logs)
        residuals = list(own.residuals) if n > 1 else []
        weights = recency(len(residuals), self.half_life)
        shared = [
            (x - other.centre) * math.sqrt(len(other.logs) / (len(other.logs) - 1))
            for name, x in self._recent
            if name != model and len((other := self._models[name]).logs) > 1
        ]
        if shared:
            residuals += shared
            weights += [self.shared_weight / len(shared)] * len(shared)
        if not residuals:
            residuals, weights = [0.0], [1.0]
        tail = self._tail(n + self.shared_weight if shared else effective_size(recency(n, self.half_life)))
        spread = weighted_spread(residuals, weights) or 0.05
        bandwidth = math.hypot(1.06 * spread * effective_size(weights) ** -0.2, 1.25 * spread / math.sqrt(n))
        return [own.centre + r for r in residuals], weights, max(0.02, bandwidth), tail

    def _tail(self, seen: float) -> float:
        """The prior's share: the chance that the next job outlasts the `seen` (the longest of n exchangeable
        jobs is outlasted with chance 1/(n+1)), never below TAIL_SHARE."""
        return max(TAIL_SHARE, 1 / (seen + 1))

    def schedule(self, model: str) -> Schedule | None:
        """The model's schedule, recomputed after a job of its own finished or, for the shared shape, after
        a few of other models' (a tabulation costs milliseconds: not one per job once a model is known)."""
        cached = self._schedules.get(model)
        if cached is not None and self._observations - cached[1] < 4:
            return cached[0]
        estimate = self._estimate(model)
        if estimate is None:
            return None
        logs, weights, bandwidth, tail = estimate
        made = schedule(logs, weights, bandwidth, target_delay=self.target_delay, tail=tail)
        self._schedules[model] = (made, self._observations)
        return made

    def delay(self, model: str, elapsed: float, status: str) -> float:
        younger = self.floor * self._unfinished.get(model, 0.0) - elapsed
        if model not in self._models and younger > self.interval:
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

    def finished(self, model: str, running_at: float | None, done_at: float) -> bool:
        """Learn the bracket's midpoint where it is narrow, nothing from a wide one (a long sleep after
        early polls). A first poll that found the job done gives only an upper bound: taken as is once,
        10 % lower for each further job of the model found so in a row. SHIFT_RUN of the last 5 (rare while
        the schedule fits: it puts few jobs' ends before the first poll) say the model got faster: it is forgotten
        and learned afresh from polls at the interval, and the jobs asleep are woken (True)."""
        # Judged only on a model known from a few jobs: one learned from one or two is often wrong, not changed.
        history = self._models.get(model)
        learned = self.schedule(model) if history is not None and len(history.logs) >= 8 else None
        recent = self._first_polls.setdefault(model, deque(maxlen=5))
        recent.append((running_at is None, learned.done_by_first_poll() if learned else 1.0))
        if running_at is None:
            if improbable(recent):
                self.forget(model)
                return True
            streak = self._bounded[model] = self._bounded.get(model, 0) + 1
            return self.observe(model, max(0.5, 1.1 - 0.1 * streak) * done_at)
        self._bounded.pop(model, None)
        if done_at - running_at <= max(0.5, 0.25 * done_at):
            return self.observe(model, (running_at + done_at) / 2)
        return False

    def forget(self, model: str) -> None:
        """Drop everything learned of `model`: its durations no longer describe it."""
        self._models.pop(model, None)
        self._schedules.pop(model, None)
        self._bounded.pop(model, None)
        self._first_polls.pop(model, None)
        self._unfinished.pop(model, None)
        self._forgotten.add(model)  # its jobs still running began before the change: what they say is stale
        self._recent = deque(((name, x) for name, x in self._recent if name != model), maxlen=self.window)

    def observe(self, model: str, duration: float) -> bool:
        if duration < 0:
            return False
        log_duration = math.log(max(duration, 0.01))
        history = self._models.setdefault(model, ModelHistory(deque(maxlen=self.window)))
        faster = history.add(log_duration, self.half_life)
        self._recent.append((model, log_duration))
        self._observations += 1
        self._schedules.pop(model, None)  # its own history changed: recomputed at the next delay
        self._unfinished.pop(model, None)  # history answers from now on
        self._forgotten.discard(model)
        return faster

    def running(self, model: str, elapsed: float) -> None:
        if model not in self._models and model not in self._forgotten:
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
