"""Duration workloads for the delivery phase, and the best poll schedule physically possible on each.

Each workload draws every job's model and duration from a seeded generator; the duration travels to
the bench server in the prompt (`d=…`), so every policy meets the same jobs. None of them is tuned to
the bot's policy: they are the shapes durations take in practice (one per model, spread within a
model, skewed, with outliers, drifting, many rarely-used models).

The oracle: with the true distribution of a job's duration (f, S) the fewest polls that buy a mean
delay d come from polling at density n ∝ sqrt(f/S), and then E[polls] = 1 + K²/(2d) with
K = ∫ sqrt(f·S) dt (the 1 is the poll that finds the job done). `oracle_polls` computes K per model
from many draws of the workload's own generator.
"""

from __future__ import annotations

import math
import random
import zlib
from collections.abc import Callable
from dataclasses import dataclass

Draw = Callable[[random.Random, int, int], tuple[str, float]]  # (rng, job index, job count) -> (model, seconds)


@dataclass(frozen=True)
class Workload:
    name: str
    about: str
    draw: Draw
    narrow: bool  # the polls target is tighter where durations are predictable


def _per_model(models: int, spread: Callable[[random.Random, float], float], seed: int = 11) -> Draw:
    bases = [random.Random(seed + k).uniform(1.0, 6.0) for k in range(models)]

    def draw(rng: random.Random, index: int, count: int) -> tuple[str, float]:
        k = rng.randrange(models)
        return f"m{k}", spread(rng, bases[k])

    return draw


def _one_model(duration: Callable[[random.Random, int, int], float]) -> Draw:
    return lambda rng, index, count: ("m0", duration(rng, index, count))


def _jitter(rng: random.Random, base: float) -> float:
    return base * rng.uniform(0.9, 1.1)


def _wide(rng: random.Random, base: float) -> float:
    return base * rng.uniform(1.0, 2.5)


def _outlier(rng: random.Random, base: float) -> float:
    return _jitter(rng, base) * (rng.uniform(3, 10) if rng.random() < 0.1 else 1.0)


def _uniform(rng: random.Random, index: int, count: int) -> float:
    return rng.uniform(1.0, 6.0)


def _lognormal(rng: random.Random, index: int, count: int) -> float:
    return min(40.0, rng.lognormvariate(math.log(2.5), 0.6))


def _drift(rng: random.Random, index: int, count: int) -> float:
    return _jitter(rng, 2.0 if index < count // 2 else 4.0)


WORKLOADS = (
    Workload("narrow", "8 models, each a duration 1-6 s, +-10 % per job", _per_model(8, _jitter), True),
    Workload("wide", "8 models, each spread over 1x-2.5x its base", _per_model(8, _wide), False),
    Workload("uniform", "one model, uniform 1-6 s", _one_model(_uniform), False),
    Workload("lognormal", "one model, lognormal (median 2.5 s, sigma 0.6), a long tail", _one_model(_lognormal), False),
    Workload("outliers", "8 models +-10 %, 10 % of jobs 3-10x longer", _per_model(8, _outlier), True),
    Workload("drift", "one model, 2 s +-10 %, doubling halfway", _one_model(_drift), False),
    Workload("many_models", "40 models, each 1-6 s +-10 %, few jobs each", _per_model(40, _jitter), True),
)

# Shapes kept out of the choices above and of the policy's tuning, to check a claim on workloads nobody tuned for
# (`python -m bench.replay --held-out`). Once tuned against, they stop being held out: add new ones instead.
HELD_OUT = (
    Workload(
        "speed-up",
        "one model, 4 s +-10 %, halving halfway",
        _one_model(lambda r, i, n: _jitter(r, 4.0 if i < n // 2 else 2.0)),
        False,
    ),
    Workload(
        "gamma", "one model, 0.5 s + gamma(3, 1 s)", _one_model(lambda r, i, n: 0.5 + r.gammavariate(3.0, 1.0)), False
    ),
    Workload(
        "bimodal",
        "8 models, each its base or 3x it, half and half",
        _per_model(8, lambda r, b: _jitter(r, b) * (3.0 if r.random() < 0.5 else 1.0)),
        False,
    ),
    Workload(
        "pareto",
        "one model, 1.5 s x Pareto(2.5), capped at 40 s",
        _one_model(lambda r, i, n: min(40.0, 1.5 * r.paretovariate(2.5))),
        False,
    ),
    Workload(
        "subsecond",
        "8 models, each 0.2-0.9 s +-10 %",
        _per_model(8, lambda r, b: _jitter(r, 0.2 + 0.14 * (b - 1.0))),
        True,
    ),
    Workload(
        "long", "8 models, each 10-30 s +-10 %", _per_model(8, lambda r, b: _jitter(r, 10.0 + 4.0 * (b - 1.0))), True
    ),
)


def jobs(workload: Workload, count: int, seed: int) -> list[tuple[str, float]]:
    rng = random.Random(seed)
    return [workload.draw(rng, index, count) for index in range(count)]


def oracle_polls(
    workload: Workload,
    planned: list[tuple[str, float]],
    delay: float,
    draws: int = 4000,
    scale: float = 1.0,
    only: set[int] | None = None,
) -> float:
    """Mean polls per job of the best schedule with this mean delay, knowing each job's true distribution
    (over the jobs whose index is in `only`, if given).

    The distribution of a job is its generator's for that job's model (and, for the drift, its half):
    estimated from `draws` fresh draws with the same model and position."""
    if delay <= 0:
        return float("inf")
    k_cache: dict[tuple[str, bool], float] = {}
    count = len(planned)
    total, counted = 0.0, 0
    for index, (model, _) in enumerate(planned):
        if only is not None and index not in only:
            continue
        counted += 1
        key = (model, index >= count // 2)
        if key not in k_cache:
            k_cache[key] = _model_k(workload, key, count, draws)
        total += 1 + scale * k_cache[key] ** 2 / (2 * delay)  # time scaled by a: K² scales by a
    return total / counted if counted else float("nan")


def _model_k(workload: Workload, key: tuple[str, bool], count: int, draws: int) -> float:
    """K of one model's durations (in the second half of the jobs if key[1]), from `draws` fresh draws."""
    model, second_half = key
    index = count - 1 if second_half else 0
    rng = random.Random(zlib.crc32(repr(key).encode()))
    sample: list[float] = []
    while len(sample) < draws:
        drawn_model, seconds = workload.draw(rng, index, count)
        if drawn_model == model:
            sample.append(seconds)
    return _k(sample)


def _k(sample: list[float], bins: int = 400) -> float:
    """K = ∫ sqrt(f·S) dt from a sample, on a histogram."""
    sample.sort()
    low, high = sample[0], sample[-1]
    width = (high - low) / bins or 1e-3
    counts = [0] * (bins + 1)
    for value in sample:
        counts[min(bins, int((value - low) / width))] += 1
    n, above, k = len(sample), len(sample), 0.0
    for c in counts:
        f = c / (n * width)
        s = (above - c / 2) / n  # survival at the bin's middle
        k += math.sqrt(max(0.0, f * s)) * width
        above -= c
    return k


def learner_polls(
    workload: Workload,
    planned: list[tuple[str, float]],
    starts: list[float],
    delay: float,
    draws: int = 4000,
    scale: float = 1.0,
) -> float:
    """Mean polls per job of the best schedule with this mean delay for a policy that learns: a job knows its
    model's true distribution (for the drift, its half's) once a job of that model (and half) submitted before
    it has finished; until then it knows only the workload's distribution over every model (both halves).

    Still generous to a learner: one finished job teaches the exact distribution, and the distribution of
    unseen models is known exactly. So no policy that learns from finished jobs can poll less; the oracle
    (`oracle_polls`) also knows every model before its first job, which none can."""
    if delay <= 0:
        return float("inf")
    count = len(planned)
    finished_at: dict[tuple[str, bool], float] = {}  # the earliest finish of a job of each (model, half)
    for index, (model, seconds) in enumerate(planned):
        key = (model, index >= count // 2)
        finished_at[key] = min(finished_at.get(key, math.inf), starts[index] + seconds * scale)
    known_k: dict[tuple[str, bool], float] = {}
    rng = random.Random(zlib.crc32(repr(workload.name).encode()))
    pooled = _k([workload.draw(rng, rng.randrange(count), count)[1] for _ in range(draws)])
    total = 0.0
    for index, (model, _) in enumerate(planned):
        key = (model, index >= count // 2)
        if finished_at[key] <= starts[index]:
            if key not in known_k:
                known_k[key] = _model_k(workload, key, count, draws)
            k = known_k[key]
        else:
            k = pooled
        total += 1 + scale * k**2 / (2 * delay)
    return total / count if count else float("nan")
