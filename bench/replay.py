"""Replay poll policies over the delivery workloads offline, on simulated time: seconds, not minutes.

`python -m bench.replay` runs every workload of bench/workloads.py (the same jobs, arrivals and seed as
the delivery phase) through each policy exactly as `ProdiaClient.poll` drives it (delay, poll, learn),
with no network and no server: a poll at time t finds the job done when t - submit >= its duration.
It prints mean delay and polls per job for each policy, the oracle's polls at the bot's delay, and the best
a policy that learns each model from its finished jobs could do (`workloads.learner_polls`).
The delivery phase (`python -m bench --phases delivery`) is the measurement; this is for trying ideas.
"""

from __future__ import annotations

import argparse
import heapq
import random
import statistics
from collections.abc import Callable

from bot.core.prodia.polling import HazardPolling, PollPolicy

from . import delivery, workloads
from .run import FULL, SEED

ROUND_TRIP = 0.002  # seconds from a poll's send to its answer, about the loopback's


def replay(policy: PollPolicy, jobs: list[tuple[str, float]], starts: list[float]) -> dict:
    """Every job polled by `policy` on one simulated clock; what each learns reaches the jobs still running,
    and a finished job that says so wakes the sleeping jobs of its model to ask the policy again."""
    events: list[tuple[float, int, int]] = []  # (time of the next poll, job, version): older versions are stale
    state = {}
    for index, start in enumerate(starts):
        heapq.heappush(events, (start, index, 0))
        state[index] = {"not_done_at": None, "polls": 0, "status": "submitted", "first": True, "version": 0}
    sleeping: dict[str, set[int]] = {}
    delays, polls, per_job = [], [], {}

    def sleep(index: int, now: float, elapsed: float, status: str) -> None:
        job = state[index]
        job["version"] += 1
        heapq.heappush(events, (now + policy.delay(jobs[index][0], elapsed, status), index, job["version"]))
        sleeping.setdefault(jobs[index][0], set()).add(index)

    while events:
        now, index, version = heapq.heappop(events)
        model, duration = jobs[index]
        start, job = starts[index], state[index]
        if version != job["version"]:
            continue
        sleeping.get(model, set()).discard(index)
        if job.pop("first", False):  # submitted now: the first wait
            sleep(index, now, 0.0, "submitted")
            continue
        sent_at = now - start
        job["polls"] += 1
        if sent_at >= duration:
            if policy.finished(model, job["not_done_at"], sent_at):
                for other in list(sleeping.get(model, ())):  # woken: the delay asked again from now
                    sleep(other, now, now - starts[other], "generating" if state[other]["polls"] else "submitted")
            delays.append(now + ROUND_TRIP - (start + duration))
            polls.append(job["polls"])
            per_job[index] = job["polls"]
            continue
        job["not_done_at"] = sent_at + ROUND_TRIP
        policy.running(model, sent_at)
        sleep(index, start + sent_at + ROUND_TRIP, sent_at + ROUND_TRIP, "generating")
    ordered = sorted(delays)
    return {
        "delay": statistics.fmean(delays),
        "p95": ordered[int(0.95 * (len(ordered) - 1))],
        "polls": statistics.fmean(polls),
        "per_job": per_job,
    }


POLICIES: dict[str, Callable[[], PollPolicy]] = {
    "every 2 s": lambda: PollPolicy(2.0),
    "every 250 ms": lambda: PollPolicy(0.25),
    "bot": HazardPolling,
}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.replay")
    parser.add_argument("--jobs", type=int, default=FULL["delivery_jobs"])
    parser.add_argument("--spread", type=float, default=FULL["delivery_spread"])
    parser.add_argument("--seeds", type=int, default=1, help="average over this many seeds (the first is the bench's)")
    parser.add_argument("--held-out", action="store_true", help="the shapes kept out of tuning (workloads.HELD_OUT)")
    args = parser.parse_args(argv)
    columns = "   oracle  bot/oracle  learner  bot/learner  bot/250ms"
    print(f"{'workload':<12} " + " ".join(f"{name:>20}" for name in POLICIES) + columns)
    for workload in workloads.HELD_OUT if args.held_out else workloads.WORKLOADS:
        rows: dict[str, list[dict]] = {name: [] for name in POLICIES}
        oracle, learner = [], []
        for seed in range(SEED, SEED + args.seeds):
            random.seed(seed)
            planned = workloads.jobs(workload, args.jobs, seed)
            starts = [job.arrival for job in delivery.job_list(workload, args.jobs, args.spread, seed)]
            for name, make in POLICIES.items():
                rows[name].append(replay(make(), planned, starts))
            oracle.append(workloads.oracle_polls(workload, planned, rows["bot"][-1]["delay"]))
            learner.append(workloads.learner_polls(workload, planned, starts, rows["bot"][-1]["delay"]))
        mean = {name: {k: statistics.fmean(r[k] for r in rs) for k in ("delay", "polls")} for name, rs in rows.items()}
        cells = " ".join(f"{m['delay'] * 1000:7.0f} ms / {m['polls']:5.2f}" for m in mean.values())
        bot, fixed, best = mean["bot"], mean["every 250 ms"], statistics.fmean(oracle)
        learnt = statistics.fmean(learner)
        print(
            f"{workload.name:<12} {cells}   {best:6.2f}  {bot['polls'] / best:9.2f}x"
            f"  {learnt:7.2f}  {bot['polls'] / learnt:10.2f}x"
            f"  {bot['polls'] / fixed['polls']:.2f}x polls {bot['delay'] / fixed['delay']:.2f}x delay"
        )


if __name__ == "__main__":
    main()
