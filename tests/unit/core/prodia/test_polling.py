"""When to poll: LearnedPolling's rules, the process-wide poll ceiling, and Retry-After on a poll answer."""

from __future__ import annotations

import asyncio
import statistics

import pytest
from aiohttp import web

from bot.core.prodia.polling import LearnedPolling, PollPolicy

MODEL = "m"


async def _ignore(_):
    return None


def test_no_history_polls_at_the_interval_then_backs_off_capped():
    policy = LearnedPolling(0.25, jitter=0)
    assert [policy.delay(MODEL, t, "queued") for t in (0, 1, 2.5, 10, 30, 300)] == [0.25, 0.25, 0.25, 1.0, 2.0, 2.0]


def test_back_off_delays_are_jittered_so_jobs_do_not_poll_in_lockstep():
    policy = LearnedPolling(0.25)
    delays = {policy.delay(MODEL, 30, "queued") for _ in range(50)}
    assert len(delays) > 10 and min(delays) >= 1.6 and max(delays) <= 2.4
    assert PollPolicy(2.0).delay(MODEL, 3, "generating") == 2.0


def test_after_learning_the_first_poll_waits_about_the_learned_duration_minus_a_margin():
    policy = LearnedPolling(0.25, jitter=0)
    for duration in (4.0, 4.1, 3.9, 4.05, 3.95):
        policy.observe(MODEL, duration)
    first = policy.delay(MODEL, 0.0, "submitted")
    assert 3.5 < first < 3.9  # before the shortest seen (3.9), by a margin
    assert policy.delay(MODEL, first, "generating") == pytest.approx(policy.dense)  # dense around the finish
    assert policy.delay("other-model", 0.0, "submitted") == 0.25  # learned per model


def test_a_long_running_job_backs_off_capped():
    policy = LearnedPolling(0.25, max_interval=2.0, jitter=0)
    for duration in (2.0, 2.1, 1.9):
        policy.observe(MODEL, duration)
    delays = [policy.delay(MODEL, t, "generating") for t in (2.5, 4, 8, 20, 300)]
    assert delays == sorted(delays) and delays[0] < delays[-1]
    assert delays[-1] == 2.0


def test_a_single_observation_is_used_with_a_wide_margin():
    policy = LearnedPolling(0.25)
    policy.observe(MODEL, 10.0)
    assert 7.5 < policy.delay(MODEL, 0.0, "submitted") < 9.0


def test_without_history_a_job_younger_than_a_running_one_polls_less():
    policy = LearnedPolling(0.25, max_interval=2.0, jitter=0)
    policy.running(MODEL, 4.0)  # another job of the model is still unfinished after 4 s
    assert policy.delay(MODEL, 0.0, "submitted") == 2.0  # towards 0.75 x 4 s, 2 s at most at a time
    assert policy.delay(MODEL, 2.0, "queued") == pytest.approx(1.0)
    assert policy.delay(MODEL, 2.9, "queued") == pytest.approx(0.29)  # near that age: the usual cold schedule
    assert policy.delay("other-model", 0.0, "submitted") == 0.25  # per model
    policy.observe(MODEL, 5.0)  # once a job finished, its duration answers instead
    policy.running(MODEL, 60.0)
    assert 4.0 < policy.delay(MODEL, 0.0, "submitted") < 5.0


def test_a_job_that_never_finishes_costs_later_jobs_at_most_the_cap():
    policy = LearnedPolling(0.25, max_interval=2.0, jitter=0)
    policy.running(MODEL, 3600.0)  # stuck
    assert max(policy.delay(MODEL, t, "queued") for t in (0, 0.5, 1, 5, 30)) == 2.0


def test_with_many_observations_the_window_starts_half_a_deviation_below_the_shortest():
    policy = LearnedPolling(0.25, jitter=0)
    durations = [5.4 + 0.06 * i for i in range(21)]  # 5.4 .. 6.6 s
    for duration in durations:
        policy.observe(MODEL, duration)
    start, end = policy.expected(MODEL)
    deviation = statistics.pstdev(durations[-20:])
    assert start == pytest.approx(min(durations[-20:]) - 0.5 * deviation)
    assert end == pytest.approx(max(durations[-20:]) + 0.5 * deviation)


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
            assert isinstance(client.poll_policy, LearnedPolling)  # the default
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
