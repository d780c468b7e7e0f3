"""The benchmark's report structure (a tiny run, no timing assertions) and LearnedPolling's behaviour."""

from __future__ import annotations

import asyncio
import statistics

import pytest
from aiohttp import web

from bench import delivery, v2modes
from bench.procs import local_server
from bench.report import table, targets
from bench.run import build_report
from bench.server import job_duration, model_durations
from bot.core.prodia.polling import LearnedPolling, PollPolicy

MODEL = "m"


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


async def _ignore(_):
    return None


def test_sampler_classifies_the_innermost_owner():
    import sys

    from bench.sampler import classify

    assert classify(sys._getframe()) == "other"  # a test frame: neither simcord, bench nor the bot side


def test_bench_durations_are_per_model_with_small_jitter():
    base = model_durations(7, 1.0, 6.0)
    assert len(base) == 8 and all(1.0 <= d <= 6.0 for d in base.values())
    name, centre = next(iter(base.items()))
    values = [job_duration({"model": name, "prompt": f"p{i}", "seed": i}, base, 0.1, 3.0) for i in range(50)]
    assert all(0.9 * centre <= v <= 1.1 * centre for v in values)
    assert job_duration({"model": name, "prompt": "p1", "seed": 1}, base, 0.1, 3.0) == values[1]  # deterministic


def test_delivery_phase_report_structure():
    with local_server("--durations", "fixed", "--duration", "0.2", "--image-scale", "0.0625") as url:
        result = asyncio.run(delivery.run(url, count=6, spread=0.5, seed=1))
    assert set(result["policies"]) == {"fixed_2s", "fixed_250ms", "bot"}
    for policy in result["policies"].values():
        assert policy["delivered"] == 6 and not policy["errors"]
        assert {"delay_mean_s", "polls_per_job", "jobs"} <= set(policy["all"])
    report = {
        "mode": "test",
        "machine": {"cpu_count": 2, "python": "3", "platform": "x"},
        "config": {"ack_in_flight": 1},
        "delivery": result,
    }
    report["targets"] = targets(report)
    assert [row["target"] for row in report["targets"]][:2] == [
        "v1 jobs delivered (all policies)",
        "bot mean delay / 2 s policy's",
    ]
    assert all(isinstance(row["pass"], bool) for row in report["targets"])
    assert "fixed_250ms" in table(report)


def test_v2_phase_runs_every_mode_over_the_same_jobs():
    with local_server("--durations", "fixed", "--duration", "0.2", "--image-scale", "0.0625") as url:
        result = asyncio.run(v2modes.run(url, count=4, spread=0.2, seed=1))
    assert list(result["modes"]) == ["sync", "async", "auto"]
    for mode in result["modes"].values():
        assert mode["delivered"] == 4 and not mode["errors"]
    assert result["modes"]["sync"]["all"]["requests_per_job"] == 1
    assert result["modes"]["async"]["all"]["requests_per_job"] >= 5  # submit, >= 1 poll, job.json, list, output
    assert result["modes"]["sync"]["extra_delay_vs_sync_s"] == 0
    report = {"mode": "test", "machine": {"cpu_count": 2, "python": "3", "platform": "x"}, "v2": result, "targets": []}
    assert "v2 modes: 4 flux-fast jobs per mode" in table(report)


def test_bot_phases_report_structure():
    report = build_report(True, {"ack", "capacity"}, log=lambda _: None)
    assert report["machine"]["cpu_count"] >= 1 and report["machine"]["python"]
    assert report["ack"]["measured"] == report["config"]["ack_measure"]
    assert report["ack"]["fill"] == "direct" and report["ack_via_simcord"]["fill"] == "slash"
    assert report["ack"]["direct_jobs_tracked_by_simcord"] == 0  # started outside simcord's bot scope
    assert report["ack"]["direct_jobs_running"] == report["config"]["ack_in_flight"]
    assert report["ack"]["polls_during_measurement"] > 0  # the in-flight jobs kept polling meanwhile
    assert report["ack"]["timed_jobs_refused"] and not report["ack_timed_jobs_kept"]["timed_jobs_refused"]
    capacity = report["capacity"]
    assert capacity["delivered"] == capacity["in_flight_at_once"] == capacity["released_by_server"] == capacity["jobs"]
    assert {"peak_rss_mb", "rss_all_in_flight_mb", "cpu_ms_per_job", "cpu_split"} <= set(capacity)
    assert {"simcord_share", "bot_cpu_ms_per_job_estimate"} <= set(capacity["cpu_split"])
    sequential = report["capacity_sequential"]
    assert sequential["delivered"] == sequential["jobs"]
    assert {"peak_rss_mb", "cpu_ms_per_job", "edits", "cpu_split"} <= set(sequential)
    names = [row["target"] for row in report["targets"]]
    assert any(name.startswith("ack p99") for name in names)
    assert any(name.startswith("(context) ack p99") for name in names)
    assert "bot CPU per job, simcord excluded (ms, sampled estimate)" in names
    assert "INFO" in table(report)
    assert "peak RSS of the bot process (MB)" in names


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
