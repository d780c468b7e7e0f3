"""The offline replay (`python -m bench.replay`): simulated polls land where the policy says."""

from __future__ import annotations

import math
import random

from bench.replay import ROUND_TRIP, replay
from bot.core.prodia.polling import HazardPolling, PollPolicy


def test_a_fixed_interval_polls_until_the_first_poll_after_the_finish():
    jobs = [("m", 1.1), ("m", 0.3), ("m", 2.0)]
    result = replay(PollPolicy(0.25), jobs, [0.0, 0.5, 1.0])
    assert result["per_job"] == {i: math.ceil(d / 0.25) for i, (_, d) in enumerate(jobs)}
    assert 0 <= result["delay"] - ROUND_TRIP < 0.25


def test_what_finished_jobs_teach_reaches_jobs_submitted_after_them():
    random.seed(1)  # the cold start's back-off is jittered
    jobs = [("m", 3.0)] * 30
    result = replay(HazardPolling(0.25), jobs, [i * 4.0 for i in range(30)])  # one after another
    assert result["per_job"][0] >= 12  # nothing learned: every 250 ms
    assert max(result["per_job"][i] for i in range(20, 30)) <= 3  # learned: a sleep, then a poll or two
