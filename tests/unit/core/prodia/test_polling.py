"""When to poll: HazardPolling's rules, the process-wide poll ceiling, and Retry-After on a poll answer."""

from __future__ import annotations

import asyncio
import random

import pytest
from aiohttp import web

from bot.core.prodia.polling import HazardPolling, PollPolicy

MODEL = "m"


async def _ignore(_):
    return None


def simulate(policy: PollPolicy, durations: list[float], model: str = MODEL) -> tuple[float, float]:
    """(polls per job, mean delay) of a policy over jobs of these durations, one after another, learning."""
    polls = delay = 0.0
    for duration in durations:
        elapsed = 0.0
        while True:
            elapsed += policy.delay(model, elapsed, "generating")
            polls += 1
            if elapsed >= duration:
                break
        delay += elapsed - duration
        policy.observe(model, duration)
    return polls / len(durations), delay / len(durations)


WORKLOADS = {
    "narrow": lambda rng: rng.uniform(2.7, 3.3),
    "uniform 1-6 s": lambda rng: rng.uniform(1, 6),
    "lognormal tail": lambda rng: min(30.0, rng.lognormvariate(0.9, 0.6)),
    "10 % outliers": lambda rng: rng.uniform(2.7, 3.3) * (rng.uniform(3, 10) if rng.random() < 0.1 else 1),
}


@pytest.mark.parametrize("workload", WORKLOADS)
def test_on_any_distribution_it_polls_less_than_the_fixed_policy_at_no_more_delay(workload):
    rng = random.Random(7)
    durations = [WORKLOADS[workload](rng) for _ in range(400)]
    fixed_polls, fixed_delay = simulate(PollPolicy(0.25), durations)
    polls, delay = simulate(HazardPolling(0.25), durations)
    assert polls < fixed_polls
    assert delay <= 1.1 * fixed_delay


def test_narrow_durations_cost_a_fraction_of_the_fixed_policys_polls():
    rng = random.Random(3)
    durations = [rng.uniform(2.7, 3.3) for _ in range(200)]
    fixed_polls, _ = simulate(PollPolicy(0.25), durations)
    polls, _ = simulate(HazardPolling(0.25), durations)
    assert polls < 0.35 * fixed_polls


def test_no_history_polls_at_the_interval_then_backs_off_capped():
    policy = HazardPolling(0.25, jitter=0)
    assert [policy.delay(MODEL, t, "queued") for t in (0, 1, 2.5, 10, 30, 300)] == [0.25, 0.25, 0.25, 1.0, 2.0, 2.0]


def test_back_off_delays_are_jittered_so_jobs_do_not_poll_in_lockstep():
    policy = HazardPolling(0.25)
    delays = {policy.delay(MODEL, 30, "queued") for _ in range(50)}
    assert len(delays) > 10 and min(delays) >= 1.6 and max(delays) <= 2.4
    assert PollPolicy(2.0).delay(MODEL, 3, "generating") == 2.0


def test_after_learning_it_sleeps_to_just_before_the_earliest_finish_then_polls_densely():
    policy = HazardPolling(0.25, jitter=0)
    for duration in (4.0, 4.1, 3.9, 4.05, 3.95):
        policy.observe(MODEL, duration)
    few = policy.delay(MODEL, 0.0, "submitted")
    for duration in (4.0, 4.1, 3.9, 4.05, 3.95) * 8:
        policy.observe(MODEL, duration)
    first = policy.delay(MODEL, 0.0, "submitted")
    assert 2.0 < few < first  # five jobs say less about how early the next may end: a wider margin
    assert 3.3 < first < 3.9  # one sleep to shortly before the shortest seen (3.9 s)
    gaps = []
    elapsed = first
    while elapsed < 4.1:
        gaps.append(policy.delay(MODEL, elapsed, "generating"))
        elapsed += gaps[-1]
    assert gaps == sorted(gaps, reverse=True) and gaps[-1] < 0.2  # denser as the finish grows likelier
    assert policy.delay("other-model", 0.0, "submitted") > 3.0  # a new model starts from every model's jobs
    policy.observe("other-model", 1.0)
    assert policy.delay("other-model", 0.0, "submitted") < 1.1  # then from its own (and the shared shape)


def test_a_job_running_longer_than_any_seen_is_still_polled_then_backs_off_capped():
    policy = HazardPolling(0.25, max_interval=2.0, jitter=0)
    for duration in (2.0, 2.1, 1.9):
        policy.observe(MODEL, duration)
    delays = [policy.delay(MODEL, t, "generating") for t in (2.5, 4, 8, 20, 300)]
    assert all(0.05 <= d <= 2.0 for d in delays[:-1])  # outliers still get found, at a moderate pace
    assert delays[-1] == 2.0  # far past anything plausible: the cap


def test_after_a_drift_it_never_polls_more_than_the_fixed_policy_and_settles_within_its_window():
    fixed_polls, _ = simulate(PollPolicy(0.25), [4.0])
    steady = HazardPolling(0.25, jitter=0)
    simulate(steady, [4.0] * 40)
    steady_polls, _ = simulate(steady, [4.0])
    for new_jobs, most in ((5, fixed_polls), (20, fixed_polls), (40, steady_polls + 1)):
        drifted = HazardPolling(0.25, jitter=0)
        simulate(drifted, [2.0] * 30 + [4.0] * new_jobs)  # durations double
        assert simulate(drifted, [4.0])[0] <= most, new_jobs


def test_without_history_a_job_younger_than_a_running_one_polls_less():
    policy = HazardPolling(0.25, max_interval=2.0, jitter=0)
    policy.running(MODEL, 4.0)  # another job of the model is still unfinished after 4 s
    assert policy.delay(MODEL, 0.0, "submitted") == 2.0  # towards 0.75 x 4 s, 2 s at most at a time
    assert policy.delay(MODEL, 2.0, "queued") == pytest.approx(1.0)
    assert policy.delay(MODEL, 2.9, "queued") == pytest.approx(0.29)  # near that age: the usual cold schedule
    assert policy.delay("other-model", 0.0, "submitted") == 0.25  # per model
    policy.observe(MODEL, 5.0)  # once a job finished, its duration answers instead
    policy.running(MODEL, 60.0)
    assert 0.5 < policy.delay(MODEL, 0.0, "submitted") < 5.0


def test_a_job_that_never_finishes_costs_later_jobs_at_most_the_cap():
    policy = HazardPolling(0.25, max_interval=2.0, jitter=0)
    policy.running(MODEL, 3600.0)  # stuck
    assert max(policy.delay(MODEL, t, "queued") for t in (0, 0.5, 1, 5, 30)) == 2.0


async def test_v1_wait_honours_retry_after_on_a_poll_answer(tmp_path):
    from bot.core.catalog import Catalog
    from bot.core.config import Settings
    from bot.core.prodia import ProdiaV1
    from bot.core.request import GenerationRequest

    polls: list[float] = []
    loop = asyncio.get_running_loop()

    async def job(request: web.Request) -> web.Response:
        polls.append(loop.time())
        if len(polls) == 1:
            return web.json_response({"status": "generating"}, headers={"Retry-After": "0.4"})
        return web.json_response({"status": "succeeded", "imageUrl": f"{base}/img.png"})

    async def submit(request: web.Request) -> web.Response:
        return web.json_response({"job": "j1"})

    app = web.Application()
    app.add_routes([web.post("/v1/sd/generate", submit), web.get("/v1/job/j1", job)])
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    base = f"http://127.0.0.1:{runner.addresses[0][1]}"
    settings = Settings.from_env(
        {"PRODIA_API": "v1", "PRODIA_BASE_URL": base + "/v1", "PRODIA_API_KEY": "k", "PRODIA_POLL_INTERVAL": "0.05"}
    )
    import aiohttp

    try:
        async with aiohttp.ClientSession() as session:
            client = ProdiaV1(session, settings)
            assert isinstance(client.poll_policy, HazardPolling)  # the default
            prepared = Catalog.for_api("v1").prepare(GenerationRequest(prompt="fox"))
            url = await client.wait(await client.submit(prepared), prepared.model.name, _ignore)
    finally:
        await runner.cleanup()
    assert url.endswith("/img.png")
    assert polls[1] - polls[0] >= 0.38  # waited the Retry-After, not the 50 ms interval


async def test_poll_rate_spaces_polls_across_jobs_in_order(monkeypatch):
    import bot.core.prodia.polling as polling

    waits: list[float] = []

    async def record(delay: float) -> None:
        waits.append(delay)

    monkeypatch.setattr(polling.asyncio, "sleep", record)
    rate = polling.PollRate(per_second=10)
    for _ in range(5):
        await rate.turn()
    assert waits == pytest.approx([0.1, 0.2, 0.3, 0.4], abs=0.01)  # the first poll goes at once


def polls_for(policy: HazardPolling, model: str, duration: float) -> int:
    """Polls one job of `duration` takes, the policy learning from what the polls found."""
    elapsed, running_at, polls = 0.0, None, 0
    while True:
        elapsed += policy.delay(model, elapsed, "generating")
        polls += 1
        if elapsed >= duration:
            policy.finished(model, running_at, elapsed)
            return polls
        running_at = elapsed


def test_a_model_seen_once_borrows_the_shape_other_models_taught():
    alone = HazardPolling(0.25, jitter=0)
    shared = HazardPolling(0.25, jitter=0)
    rng = random.Random(5)
    for other, base in (("a", 2.0), ("b", 5.0), ("c", 3.0)):  # three models, each +-5 %
        for _ in range(20):
            shared.observe(other, base * rng.uniform(0.95, 1.05))
    alone.observe(MODEL, 4.0)
    shared.observe(MODEL, 4.0)
    jobs = [4.0 * rng.uniform(0.95, 1.05) for _ in range(20)]
    cost_alone = sum(polls_for(alone, MODEL, d) for d in jobs[:1])
    cost_shared = sum(polls_for(shared, MODEL, d) for d in jobs[:1])
    assert cost_shared < cost_alone  # the others say durations are tight: one job of its own is enough


def test_a_model_that_got_faster_is_found_at_the_first_poll_then_learned():
    policy = HazardPolling(0.25, jitter=0)
    for _ in range(40):
        polls_for(policy, MODEL, 4.0)
    late = []
    for _ in range(15):  # now 2 s: the first poll (about 3.7 s) finds each done, until it moves earlier
        policy_delay = policy.delay(MODEL, 0.0, "submitted")
        late.append(policy_delay - 2.0)
        polls_for(policy, MODEL, 2.0)
    assert late[0] > 1.0
    assert late[-1] < 0.3  # within a window's worth of jobs, the first poll is back near 2 s


def test_a_level_shift_is_learned_from_three_jobs_while_a_lone_outlier_is_not_taken_for_one():
    rng = random.Random(9)

    def around(base: float, count: int) -> list[float]:
        return [base * rng.uniform(0.95, 1.05) for _ in range(count)]

    shifted = HazardPolling(0.25, jitter=0)
    simulate(shifted, around(2.0, 30) + around(4.0, 3))  # durations double
    fresh = HazardPolling(0.25, jitter=0)
    simulate(fresh, around(4.0, 3))  # as if the model had always taken 4 s
    assert polls_for(shifted, MODEL, 4.0) <= polls_for(fresh, MODEL, 4.0)

    steady = HazardPolling(0.25, jitter=0)
    simulate(steady, [*around(3.0, 30), 15.0, *around(3.0, 2)])  # one job 5x longer, then as before
    assert steady.delay(MODEL, 0.0, "submitted") < 3.0  # still first polled before 3 s, not towards 15 s


def test_a_model_whose_jobs_keep_ending_before_the_first_poll_is_forgotten_and_said_so():
    policy = HazardPolling(0.25, jitter=0)
    for _ in range(40):
        polls_for(policy, MODEL, 4.0)
    jobs = 0
    while jobs < 10:  # now 2 s: each found done at a first poll planned near 3.7 s
        jobs += 1
        if policy.finished(MODEL, None, policy.delay(MODEL, 0.0, "submitted")):
            break
    assert jobs <= 5  # said within the last five jobs' window, not after a window's worth of them
    assert policy.delay(MODEL, 0.0, "submitted") == 0.25  # forgotten: learned afresh from the fixed interval


async def test_pollers_asleep_on_a_relearned_model_wake_and_plan_again():
    import aiohttp

    from bot.core.config import Settings
    from bot.core.prodia import ProdiaV1

    class Relearning(PollPolicy):
        """The first delay asked is an hour; once a job's answer relearns the model, delays are short."""

        def __init__(self) -> None:
            super().__init__(0.25)
            self.asked = 0
            self.first_asked = asyncio.Event()
            self.relearned = False

        def delay(self, model: str, elapsed: float, status: str) -> float:
            self.asked += 1
            self.first_asked.set()
            return 0.001 if self.relearned or self.asked > 1 else 3600.0

        def finished(self, model: str, running_at: float | None, done_at: float) -> bool:
            self.relearned = True
            return True

    async def done():
        from bot.core.prodia.base import PollAnswer

        return PollAnswer("done", "image")

    policy = Relearning()
    settings = Settings.from_env({"PRODIA_API": "v1", "PRODIA_API_KEY": "k"})
    async with aiohttp.ClientSession() as session:
        client = ProdiaV1(session, settings, poll_policy=policy)
        asleep = asyncio.create_task(client.poll("a", MODEL, _ignore, done))
        await policy.first_asked.wait()
        assert await client.poll("b", MODEL, _ignore, done) == "image"  # its answer relearns the model
        assert await asyncio.wait_for(asleep, 10) == "image"  # woken: not left asleep for the hour
    assert policy.asked == 3  # the sleeper asked again after waking
