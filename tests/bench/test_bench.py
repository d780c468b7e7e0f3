"""The benchmark: its report structure over tiny runs (no timing assertions), its workloads and sampler."""

from __future__ import annotations

import asyncio

import pytest

from bench import delivery, v2modes, workloads
from bench.procs import local_server
from bench.report import table, targets
from bench.run import build_report
from bench.server import job_duration, model_durations

MODEL = "m"


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


def test_delivery_phase_runs_every_workload_with_every_policy_and_an_oracle():
    with local_server("--durations", "prompt", "--image-scale", "0.0625") as url:
        result = asyncio.run(delivery.run(url, count=4, spread=0.3, seed=1, scale=0.05))
    assert list(result["workloads"]) == [w.name for w in workloads.WORKLOADS]
    for spec, workload in zip(workloads.WORKLOADS, result["workloads"].values(), strict=True):
        assert set(workload["policies"]) == {"fixed_2s", "fixed_250ms", "bot"}
        planned = [round(seconds * 0.05, 4) for _, seconds in workloads.jobs(spec, 4, 1)]
        for policy in workload["policies"].values():
            assert policy["delivered"] == 4 and not policy["errors"]
            ran = [row["duration"] for row in sorted(policy["per_job"], key=lambda row: row["index"])]
            assert ran == pytest.approx(planned, abs=1e-4)  # the server ran the jobs the oracle is computed for
        assert workload["oracle_polls_at_bot_delay"] >= 1  # at least the poll that finds the job done
    report = {"mode": "test", "machine": {"cpu_count": 2, "python": "3", "platform": "x"}, "delivery": result}
    report["targets"] = targets(report)
    names = [row["target"] for row in report["targets"]]
    assert "narrow: bot polls / oracle's at the bot's delay" in names and "drift: bot delay / 2 s policy's" in names
    assert all(isinstance(row["pass"], bool) for row in report["targets"] if not row["target"].startswith("(context)"))
    assert "(context) narrow: bot polls / oracle's, after warm-up" in names or not any(
        row["warm_up"] is False for row in result["workloads"]["narrow"]["policies"]["bot"]["per_job"]
    )
    assert "many_models  fixed_250ms" in table(report)


def test_the_oracle_needs_fewer_polls_where_durations_are_predictable():
    narrow, uniform = workloads.WORKLOADS[0], workloads.WORKLOADS[2]
    at = 0.125
    narrow_polls = workloads.oracle_polls(narrow, workloads.jobs(narrow, 50, 1), at)
    uniform_polls = workloads.oracle_polls(uniform, workloads.jobs(uniform, 50, 1), at)
    assert 1 < narrow_polls < 0.35 * uniform_polls
    # uniform 1-6 s in closed form: K = (1/5)·(2/3)·5^1.5 = 1.49, so 1 + K²/(2·0.125) = 9.9
    assert uniform_polls == pytest.approx(9.9, rel=0.05)


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
    capacity, jobs = report["capacity"], report["config"]["capacity_jobs"]
    assert capacity["delivered_exactly_once"] == capacity["in_flight_at_once"] == capacity["released_by_server"] == jobs
    assert capacity["probe_jobs_delivered_exactly_once"] == capacity["ack_measured"] == capacity["probes"]
    assert capacity["virtual_clock_moved_s"] == 0 and capacity["polls"]["ceiling_per_second"] == 100  # the default
    assert {u["count"] for u in capacity["uploads"].values()} == {(jobs + capacity["probes"]) // 2}  # PNG, JPEG
    assert {s["setting"] for s in capacity["settings"]} >= {"MAX_CONCURRENT_JOBS", "QUEUE_SIZE"}
    assert all(s["why"] for s in capacity["settings"])
    assert {"peak_rss_mb", "rss_all_in_flight_mb", "cpu_ms_per_job", "cpu_split", "delivery_delay_s"} <= set(capacity)
    assert {"simcord_share", "bot_cpu_ms_per_job_estimate"} <= set(capacity["cpu_split"])
    sequential = report["capacity_sequential"]
    assert sequential["delivered"] == sequential["jobs"]
    assert {"peak_rss_mb", "cpu_ms_per_job", "edits", "cpu_split"} <= set(sequential)
    names = [row["target"] for row in report["targets"]]
    assert any(name.startswith("ack p99") for name in names)
    assert any(name.startswith("(context) ack p99") for name in names)
    assert "bot CPU per job, image checks included, simcord excluded (ms, sampled estimate)" in names
    assert any(name.startswith("ack p99 while those results are delivered") for name in names)
    assert "INFO" in table(report)
    assert "peak RSS of the bot process (MB)" in names


def test_edit_gaps_are_judged_on_the_real_clock():
    report = build_report(True, {"edits"}, log=lambda _: None)
    edits = report["edits"]
    assert edits["delivered"] == edits["jobs"] and edits["progress_interval_s"] == 2.0
    rows = {row["target"]: row for row in report["targets"]}
    row = rows["min real-clock gap between any two edits of one message, result edit included (s)"]
    assert row["measured"] == edits["edits"]["min_gap_any_real_s"] and row["limit"].startswith(">= 1.95")
    # No message may get two edits in a tiny run on a loaded machine: then the target cannot pass.
    assert row["pass"] is (row["measured"] is not None and row["measured"] >= 1.95)


def test_delivery_jobs_arrive_over_the_spread_with_the_planned_durations():
    workload = workloads.WORKLOADS[0]
    jobs = delivery.job_list(workload, 120, 16.0, 7)
    planned = workloads.jobs(workload, 120, 7)
    assert [f"d={seconds:.4f}" in job.prompt for job, (_, seconds) in zip(jobs, planned, strict=True)] == [True] * 120
    assert 12.0 < jobs[-1].arrival < 20.0  # Poisson arrivals over about 16 s
