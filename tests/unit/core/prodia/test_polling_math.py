"""The arithmetic the learned poll schedule stands on (`bot.core.prodia.polling`), each against values worked out
by hand: weighted quantiles, recency weights, the effective sample size, the binomial tail that says a model got
faster, and the level-shift test on a model's recent durations. test_polling judges the schedule as a whole."""

from __future__ import annotations

import math
from collections import deque

import pytest

from bot.core.prodia.polling import (
    SHIFT_MARGIN,
    SHIFT_RUN,
    ModelHistory,
    Schedule,
    effective_size,
    improbable,
    recency,
    weighted_median,
    weighted_quantile,
)


def test_a_weighted_quantile_is_the_first_value_whose_cumulative_weight_reaches_the_share() -> None:
    values, weights = [3.0, 1.0, 2.0], [1.0, 1.0, 2.0]  # sorted: 1 (1), 2 (2), 3 (1); total 4
    assert weighted_quantile(values, weights, 0.25) == 1.0  # cumulative 1 reaches 1 exactly
    assert weighted_quantile(values, weights, 0.26) == 2.0
    assert weighted_quantile(values, weights, 0.75) == 2.0  # cumulative 3 reaches 3 exactly
    assert weighted_quantile(values, weights, 0.76) == 3.0
    assert weighted_quantile(values, weights, 0.0) == 1.0
    assert weighted_quantile(values, weights, 1.0) == 3.0
    assert weighted_quantile([5.0, 7.0], [1.0, 1.0], 1.5) == 7.0  # past every weight: the largest


def test_a_weighted_median_follows_the_weight() -> None:
    assert weighted_median([1.0, 10.0], [1.0, 3.0]) == 10.0
    assert weighted_median([1.0, 10.0], [3.0, 1.0]) == 1.0
    assert weighted_median([1.0, 2.0, 3.0], [1.0, 1.0, 1.0]) == 2.0


def test_recency_weighs_the_newest_one_and_halves_each_half_life_back() -> None:
    assert recency(3, 1.0) == [0.25, 0.5, 1.0]
    assert recency(3, 2.0) == pytest.approx([0.5, 2**-0.5, 1.0])
    assert recency(0, 1.0) == []


def test_the_effective_size_of_equal_weights_is_their_count_and_less_when_unequal() -> None:
    assert effective_size([1.0, 1.0, 1.0, 1.0]) == 4.0
    assert effective_size([2.0, 2.0]) == 2.0
    assert effective_size([1.0, 0.0]) == 1.0
    assert effective_size([1.0, 0.5]) == pytest.approx(2.25 / 1.25)


def first_polls(done: int, total: int, chance: float) -> deque[tuple[bool, float]]:
    return deque([(True, chance)] * done + [(False, chance)] * (total - done))


def test_improbable_compares_the_binomial_tail_of_jobs_done_by_their_first_poll() -> None:
    # 5 of 10 done at a chance of 0.05: P(X >= 5) ~ 6.4e-5, below 0.001.
    tail = sum(math.comb(10, k) * 0.05**k * 0.95 ** (10 - k) for k in range(5, 11))
    assert tail == pytest.approx(6.4e-5, rel=0.05)
    assert improbable(first_polls(5, 10, 0.05))
    # 3 of 10: P(X >= 3) ~ 0.0115, not below 0.001; but below a level of 0.02.
    assert not improbable(first_polls(3, 10, 0.05))
    assert improbable(first_polls(3, 10, 0.05), level=0.02)
    # Fewer than two done proves nothing, however unlikely one alone was.
    assert not improbable(first_polls(1, 10, 0.0001))
    # The mean chance counts: the same 5 of 10 are likely when each had an even chance.
    assert not improbable(first_polls(5, 10, 0.5))


def test_the_tail_includes_the_count_seen() -> None:
    # 2 of 2 at a chance of 0.03: P(X >= 2) = 0.0009 < 0.001; leaving out k = 2 would make it 0.
    assert improbable(first_polls(2, 2, 0.03))
    # 2 of 2 at 0.032: 0.001024, not below 0.001.
    assert not improbable(first_polls(2, 2, 0.032))


def history(*durations: float) -> ModelHistory:
    model = ModelHistory(deque(maxlen=50))
    for duration in durations:
        model.add(math.log(duration), half_life=10.0)
    return model


def test_a_run_of_shorter_durations_beyond_every_earlier_one_is_a_shift_down() -> None:
    model = ModelHistory(deque([1.0, 1.02, 0.98, 1.01, 0.99], maxlen=50))
    assert model.shifted() == 0
    model.logs.extend([0.5] * SHIFT_RUN)
    assert model.shifted() == -1
    up = ModelHistory(deque([1.0, 1.02, 0.98, 1.01, 0.99, *[1.5] * SHIFT_RUN], maxlen=50))
    assert up.shifted() == 1


def test_a_shift_needs_the_whole_run_and_a_clear_margin() -> None:
    base = [1.0, 1.0, 1.0, 1.0]
    assert ModelHistory(deque([*base, 0.5, 0.5, 1.0])).shifted() == 0  # the run is broken
    close = 1.0 - SHIFT_MARGIN * 0.9
    assert ModelHistory(deque([*base, *[close] * SHIFT_RUN])).shifted() == 0  # within the margin
    beyond = 1.0 - SHIFT_MARGIN * 1.1
    assert ModelHistory(deque([*base, *[beyond] * SHIFT_RUN])).shifted() == -1
    assert ModelHistory(deque([1.0, *[0.5] * SHIFT_RUN])).shifted() == 0  # too few earlier durations to judge
    assert ModelHistory(deque([1.0, 1.0, *[0.5] * SHIFT_RUN])).shifted() == -1  # just enough


def test_a_spread_out_history_needs_a_wider_margin() -> None:
    spread = [0.0, 2.0, 0.0, 2.0]  # spread 1: the margin is 2, not SHIFT_MARGIN
    assert ModelHistory(deque([*spread, *[-1.5] * SHIFT_RUN])).shifted() == 0
    assert ModelHistory(deque([*spread, *[-2.5] * SHIFT_RUN])).shifted() == -1


def test_a_shift_down_forgets_the_earlier_durations_and_says_so() -> None:
    model = history(10, 10, 10, 10, 10)
    assert model.centre == pytest.approx(math.log(10))
    revealed = [model.add(math.log(2), half_life=10.0) for _ in range(SHIFT_RUN)]
    assert revealed == [False] * (SHIFT_RUN - 1) + [True]
    assert list(model.logs) == pytest.approx([math.log(2)] * SHIFT_RUN)  # only the new run is kept
    assert model.centre == pytest.approx(math.log(2))
    longer = history(2, 2, 2, 2, 2)
    assert [longer.add(math.log(10), half_life=10.0) for _ in range(SHIFT_RUN)][-1] is False  # longer: not said
    assert len(longer.logs) == SHIFT_RUN  # but forgotten all the same


def test_residuals_are_widened_for_a_few_durations() -> None:
    model = history(1.0, math.e**2)  # logs 0 and 2; the recency-weighted median is the newer, 2
    assert model.centre == pytest.approx(2.0)
    assert model.residuals == pytest.approx((-2 * math.sqrt(2), 0.0))
    assert history(5.0).residuals == (0.0,)


def test_a_tail_equal_to_the_level_is_not_improbable() -> None:
    assert not improbable(first_polls(2, 2, 0.5), level=0.25)  # P(X >= 2) = 0.25 exactly


def test_a_shift_must_pass_the_margin_not_just_reach_it() -> None:
    assert ModelHistory(deque([0.0] * 4 + [SHIFT_MARGIN] * SHIFT_RUN)).shifted() == 0
    assert ModelHistory(deque([0.0] * 4 + [-SHIFT_MARGIN] * SHIFT_RUN)).shifted() == 0


# A hand-made schedule: cumulative polls M at times `at`, and the chance a job still runs at each.
HAND = Schedule(at=[0.0, 1.0, 2.0, 3.0], polls=[0.0, 0.5, 1.5, 3.0], survival=[1.0, 0.8, 0.4, 0.1])


def test_the_next_poll_is_where_the_cumulative_count_has_grown_by_one() -> None:
    assert HAND.next_poll(0.0) == pytest.approx(1.5)  # M: 0 -> 1, between 1 s (0.5) and 2 s (1.5)
    assert HAND.next_poll(0.5) == pytest.approx(1.75)  # from M(0.5) = 0.25 to 1.25
    assert HAND.next_poll(1.0, step=2.0) == pytest.approx(2 + (2.5 - 1.5) / 1.5)
    assert HAND.next_poll(2.5) is None  # M(2.5) = 2.25: it never reaches 3.25 on the grid
    assert HAND.next_poll(3.0) is None  # past the grid


def test_the_chance_of_being_done_by_the_first_poll_reads_the_survival_there() -> None:
    assert HAND.done_by_first_poll() == pytest.approx(1 - 0.4)  # the first poll at 1.5 s: the 2 s point
    late = Schedule(at=[0.0, 1.0], polls=[0.0, 0.5], survival=[1.0, 0.5])  # no first poll on the grid
    assert late.done_by_first_poll() == 1.0
    edge = Schedule(at=[0.0, 1.0, 2.0], polls=[0.0, 1.0, 1.5], survival=[1.0, 0.7, 0.2])  # first poll at 1 s
    assert edge.done_by_first_poll() == pytest.approx(0.3)


# -- the learning policy, through what it decides ---------------------------------------------------

from bot.core.prodia.polling import HazardPolling  # noqa: E402


def test_a_negative_duration_teaches_nothing_and_a_short_one_teaches() -> None:
    policy = HazardPolling(0.25, jitter=0)
    assert policy.observe("m", -1.0) is False
    assert policy.schedule("m") is None and policy.delay("m", 0.0, "queued") == 0.25  # nothing learned
    for _ in range(4):
        for duration in (0.35, 0.45, 0.4, 0.38, 0.42):  # under a second: learned all the same
            policy.observe("m", duration)
    assert 0.25 < policy.delay("m", 0.0, "queued") < 0.6  # its first poll comes as such jobs end
    zero = HazardPolling(0.25, jitter=0)
    assert zero.observe("z", 0.0) is False  # done at once: taken as 10 ms, learned
    assert zero.schedule("z") is not None


def test_a_model_running_unseen_makes_younger_jobs_wait_for_three_quarters_of_its_longest_run() -> None:
    policy = HazardPolling(0.25, jitter=0, max_interval=100)
    policy.running("m", 10.0)
    policy.running("m", 5.0)  # shorter than the longest seen: kept at 10
    assert policy.delay("m", 0.0, "queued") == pytest.approx(7.5)
    small = HazardPolling(0.25, jitter=0, max_interval=100)
    small.running("s", 0.5)
    assert small.delay("s", 0.0, "queued") == pytest.approx(0.375)


def test_forgetting_a_model_drops_its_unfinished_runs_and_ignores_them_until_it_is_seen_again() -> None:
    policy = HazardPolling(0.25, jitter=0, max_interval=100)
    policy.running("m", 100.0)
    policy.forget("m")
    assert policy.delay("m", 0.0, "queued") == 0.25  # not 75 s: what it ran before the change is stale
    policy.running("m", 100.0)  # a job that began before the change
    assert policy.delay("m", 0.0, "queued") == 0.25
    policy.observe("m", 1.0)  # seen again: learned afresh
    policy.running("other", 40.0)
    assert policy.delay("other", 0.0, "queued") == pytest.approx(30.0)


def test_forgetting_one_model_keeps_what_the_others_taught() -> None:
    policy = HazardPolling(0.25, jitter=0)
    for _ in range(10):
        policy.observe("a", 5.0)
        policy.observe("b", 5.0)
    policy.forget("a")
    assert policy.delay("new", 0.0, "queued") > 1.0  # a model never seen borrows b's 5 s, not the interval


def test_past_every_job_seen_it_backs_off_with_the_overrun_capped() -> None:
    policy = HazardPolling(0.1, jitter=0, max_interval=5)
    for _ in range(10):
        policy.observe("m", 1.0)
    end = policy.schedule("m").end
    assert policy.delay("m", end + 0.2, "generating") == pytest.approx(0.1)  # the interval, at least
    assert policy.delay("m", end + 4.0, "generating") == pytest.approx(1.0)  # a quarter of the overrun
    assert policy.delay("m", end + 100.0, "generating") == 5  # capped


def test_a_schedule_is_recomputed_after_four_jobs_of_other_models() -> None:
    policy = HazardPolling(0.25, jitter=0)
    for _ in range(5):
        policy.observe("a", 2.0)
    first = policy.schedule("a")
    for _ in range(3):
        policy.observe("b", 3.0)
        assert policy.schedule("a") is first  # cached: a tabulation costs milliseconds
    policy.observe("b", 3.0)
    assert policy.schedule("a") is not first  # the shared shape has moved on


def test_the_tail_share_is_one_in_n_plus_one_at_least_the_floor() -> None:
    policy = HazardPolling(0.25)
    assert policy._tail(1) == 0.5
    assert policy._tail(3) == 0.25
    assert policy._tail(1000) == 0.05  # TAIL_SHARE


def test_a_target_delay_given_is_kept() -> None:
    assert HazardPolling(0.25, target_delay=0.05).target_delay == 0.05
    assert HazardPolling(0.25).target_delay == 0.125


def test_only_the_last_window_of_durations_is_remembered() -> None:
    policy = HazardPolling(0.25, jitter=0, window=40)
    policy.observe("m", 1000.0)  # one far outlier, then a window's worth of ordinary jobs
    for n in range(40):
        policy.observe("m", 2.0 + 0.01 * (n % 5))
    assert policy.schedule("m").end < 100  # the outlier has left the model's window
    assert policy.schedule("new").end < 100  # and the window every model shares


def test_the_shared_window_stays_bounded_after_a_model_is_forgotten() -> None:
    policy = HazardPolling(0.25, jitter=0, window=40)
    policy.observe("m", 1000.0)
    policy.forget("gone")  # rebuilds the shared window
    for n in range(40):
        policy.observe("m", 2.0 + 0.01 * (n % 5))
    assert policy.schedule("new").end < 100


def test_forgetting_a_model_resets_its_streak_of_jobs_done_by_the_first_poll() -> None:
    policy = HazardPolling(0.25, jitter=0)
    policy.finished("m", None, 1.0)
    policy.finished("m", None, 1.0)  # a streak of two: the second taken 10 % lower
    policy.forget("m")
    policy.finished("m", None, 1.0)  # the first of a new streak: taken as it is
    assert list(policy._models["m"].logs) == [pytest.approx(0.0)]  # log(1.0)


def test_the_default_interval_is_the_official_clients_quarter_second() -> None:
    from bot.core.prodia.polling import PollPolicy

    assert PollPolicy().interval == 0.25 and PollPolicy().delay("m", 0.0, "queued") == 0.25
    assert HazardPolling().interval == 0.25
