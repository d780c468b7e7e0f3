"""`python -m tests.ops.chaos [--jobs 200] [--seed 14] [--api v2-sync]`: the bot under random faults, and what
came of it.

The real bot (under simcord, on its virtual clock) takes `--jobs` /imagine from 20 members, one every half second,
against the local Prodia server, while both sides misbehave at random from `--seed`:

- Prodia, on any API request: 429 with Retry-After, 500/502/503, a dropped connection, a slow answer; and some jobs
  fail at Prodia (`job_fails`). Each request's fault is drawn from the seed, the job's prompt, the request's kind and
  how many of that kind the job sent before, so the plan does not depend on the order requests happen to arrive in.
- Discord: 5xx and 429 on the bot's edits, new messages and reactions (drawn the same way from the method, path and
  occurrence); some replies are deleted while their job runs (a moderator deletes them); and the bot restarts twice
  (a clean stop: its jobs are cancelled and resumed by the next start).

Then the clock moves on past three recovery passes, and every job is checked: it ended (no unfinished journal row);
its message shows its image, once, or one sentence saying what went wrong (or, if Discord refused every way to show
anything, it was given up with a logged reason); it was delivered at most once (one `outcome=delivered` log line, one
result message); and it was sent to Prodia no more often than the retry policy allows (`bot.core.prodia.base`:
1 + PRODIA_MAX_RETRIES sends in all; for v2 at most 1 + POST_RESENDS that may have run, i.e. not answered 429), with
`jobs.attempts` equal to the sends the server saw. `run()` returns the summary; `tests/ops/test_chaos.py` asserts on it.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import json
import logging
import random
import re
import sys
import tempfile
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import simcord
import simcord.http.router as simcord_router
from simcord.backend.errors import BackendError

from bot import create_bot
from bot.core.messages import EN
from bot.core.prodia.v2 import POST_RESENDS
from devtools.local_prodia import Fault, LocalProdia
from devtools.local_prodia.faults import REQUEST_FAULTS
from tests.plugins.discord_world import bot_settings

MEMBERS = 20
SUBMIT_PATHS = frozenset({"/v1/sd/generate", "/v2/job", "/v2/job/async"})
# Chances per request (Prodia) or per eligible REST call (Discord); the rest go through untouched.
PRODIA_FAULTS = {"429": 0.08, "5xx": 0.08, "disconnect": 0.05, "slow": 0.03}
JOB_FAILS = 0.05  # chance a job fails at Prodia
DISCORD_FAULTS = {"5xx": 0.08, "429": 0.05}
REPLY_DELETED = 0.1  # chance a job's reply is deleted before the bot first edits it
RESTARTS_AFTER = (70, 140)  # the bot restarts after these many jobs were asked for
SLOW_SECONDS = 0.2  # a slow answer's delay (real seconds: the local server is outside simcord's clock)
APIS = {  # --api: PRODIA_API and PRODIA_V2_MODE
    "v1": ("v1", "auto"),
    "v2-sync": ("v2", "sync"),
    "v2-async": ("v2", "async"),
}


def draw(seed: int, *key: object) -> random.Random:
    """A random stream for one decision, from the seed and what the decision is about (not from arrival order)."""
    digest = hashlib.sha256(repr((seed, *key)).encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


def pick(rng: random.Random, chances: dict[str, float]) -> str | None:
    roll = rng.random()
    for kind, chance in chances.items():
        if roll < chance:
            return kind
        roll -= chance
    return None


class ChaosProdia(LocalProdia):
    """The local Prodia server, misbehaving by plan. `answers` keeps what each recorded request got."""

    def __init__(self, seed: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.seed = seed
        self.answered: dict[int, str] = {}  # index in `requests` -> the fault kind it got
        self.seen: Counter[tuple[str, str, str]] = Counter()
        self.injected: Counter[str] = Counter()

    def prompt_of(self, method: str, path: str, body: Any) -> str:
        if method == "POST" and isinstance(body, dict):
            config = body.get("config")
            return str((config if isinstance(config, dict) else body).get("prompt"))
        match = re.search(r"/job/(?:async/)?([0-9a-f-]{36})", path)
        job = self.jobs.get(match.group(1)) if match else None
        return str(job.params.get("prompt")) if job else "?"

    def take_fault(self, path: str, kinds: Any) -> Fault | None:
        fault = super().take_fault(path, kinds)
        if fault is not None or kinds != REQUEST_FAULTS:
            return fault
        request = self.requests[-1]  # `_record` appended it just now, with no await in between
        prompt = self.prompt_of(request.method, path, request.json)
        kind_of_path = re.sub(r"[0-9a-f-]{36}", "{id}", path)
        nth = self.seen[prompt, request.method, kind_of_path]
        self.seen[prompt, request.method, kind_of_path] += 1
        rng = draw(self.seed, "prodia", prompt, request.method, kind_of_path, nth)
        kind = pick(rng, PRODIA_FAULTS)
        if kind is None:
            return None
        self.injected[kind] += 1
        self.answered[len(self.requests) - 1] = kind
        if kind == "429":
            return Fault("status", status=429, retry_after=1)
        if kind == "5xx":
            return Fault("status", status=rng.choice([500, 502, 503]))
        if kind == "disconnect":
            return Fault("disconnect")
        return Fault("slow", delay=SLOW_SECONDS)

    def new_job(self, request: Any, api: str, params: dict, width: int, height: int) -> Any:
        job = super().new_job(request, api, params, width, height)
        if draw(self.seed, "job fails", params.get("prompt")).random() < JOB_FAILS:
            job.fail = True
            self.injected["job_fails"] += 1
        return job


@dataclass
class DiscordChaos:
    """5xx and 429 on the bot's edits, posts and reactions, and replies deleted just before the bot first edits them
    (while their job runs), by plan (simcord's own injected faults still apply)."""

    seed: int
    seen: Counter[tuple[str, str]] = field(default_factory=Counter)
    injected: Counter[str] = field(default_factory=Counter)
    edited: set[str] = field(default_factory=set)  # interaction tokens whose reply the bot edited already

    ELIGIBLE = re.compile(
        r"^(PATCH /webhooks/|PATCH /channels/\d+/messages/|POST /channels/\d+/messages$|PUT .*/reactions/)"
    )

    def check(self, backend: Any, method: str, path: str) -> None:
        if match := self.FIRST_EDIT.match(f"{method} {path}"):
            self.delete_reply(backend, match.group(1))
        if self.ELIGIBLE.match(f"{method} {path}"):
            # Ids and tokens are left out of the key: simcord's snowflakes follow its clock, which real-time waits
            # move too, so they differ from run to run.
            kind_of_path = re.sub(r"simcord_interaction_\d+|\d{6,}", "{id}", path)
            nth = self.seen[method, kind_of_path]
            self.seen[method, kind_of_path] += 1
            rng = draw(self.seed, "discord", method, kind_of_path, nth)
            kind = pick(rng, DISCORD_FAULTS)
            if kind == "5xx":
                self.injected["discord 5xx"] += 1
                raise BackendError(rng.choice([500, 502, 503]), 0, "Server Error (chaos)")
            if kind == "429":
                self.injected["discord 429"] += 1
                raise BackendError(429, 0, "You are being rate limited. (chaos)")
        ORIGINAL_CHECK(backend, method, path)

    FIRST_EDIT = re.compile(r"^PATCH /webhooks/\d+/([^/]+)/messages/@original$")

    def delete_reply(self, backend: Any, token: str) -> None:
        """Before the bot's first edit of a reply: maybe a moderator deleted it meanwhile."""
        if token in self.edited:
            return
        self.edited.add(token)
        if draw(self.seed, "delete", len(self.edited)).random() < REPLY_DELETED:
            record = backend.interaction_by_token(token)
            backend.delete_message(record.channel_id, record.message_id)
            self.injected["reply deleted"] += 1


ORIGINAL_CHECK = simcord_router._check_faults


@contextlib.contextmanager
def discord_chaos(chaos: DiscordChaos) -> Iterator[None]:
    simcord_router._check_faults = chaos.check  # type: ignore[assignment]  # `dispatch` looks it up by name
    try:
        yield
    finally:
        simcord_router._check_faults = ORIGINAL_CHECK


class JobLines(logging.Handler):
    """The one INFO line per job (`bot.pipeline`): how often each job was logged delivered."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.delivered: Counter[str] = Counter()

    def emit(self, record: logging.LogRecord) -> None:
        job = getattr(record, "job", None)
        if isinstance(job, dict) and job.get("outcome") == "delivered":
            self.delivered[str(job.get("id"))] += 1


def shows(content: str | None, key: str) -> bool:
    """The message shows the catalogue's sentence for `key` (its English text up to the first parameter)."""
    return bool(content) and content.startswith(EN[key].split("{", 1)[0])  # type: ignore[union-attr]


async def settle(call: Any) -> bool:
    """Run an actor call; False if the bot did not settle (a job waiting on Prodia's HTTP answer)."""
    try:
        await call
    except TimeoutError:
        return False
    return True


async def run(jobs: int = 200, seed: int = 14, api: str = "v2-sync", workdir: Path | None = None) -> dict[str, Any]:
    """One chaos run; returns its summary (see the module's docstring) with `violations`, empty when all held."""
    prodia_api, mode = APIS[api]
    with contextlib.ExitStack() as stack:
        if workdir is None:
            workdir = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        return await _run(jobs, seed, prodia_api, mode, workdir)


async def _run(jobs: int, seed: int, prodia_api: str, mode: str, workdir: Path) -> dict[str, Any]:
    prodia = ChaosProdia(
        seed,
        image_scale=0.0625,
        job_duration=lambda params: draw(seed, "duration", params.get("prompt")).uniform(0.5, 6),
    )
    if mode == "sync":
        prodia.job_duration = 0  # a sync answer waits on the server's (real) clock: keep it instant
    chaos = DiscordChaos(seed)
    lines = JobLines()
    pipeline_log = logging.getLogger("bot.pipeline")
    pipeline_log.addHandler(lines)
    level, propagate = pipeline_log.level, pipeline_log.propagate
    pipeline_log.setLevel(logging.INFO)
    await prodia.start()
    settings = bot_settings(
        prodia,
        prodia_api,
        f"sqlite:///{workdir / 'chaos.sqlite3'}",
        PRODIA_V2_MODE=mode,
        PRODIA_POLL_INTERVAL="0.5",
        PRODIA_RETRY_DELAY="0.5",
        PRODIA_TIMEOUT="600",
        MAX_CONCURRENT_JOBS="8",
        QUEUE_SIZE="1000",
        USER_MAX_JOBS="100",
        PROGRESS_INTERVAL="2",
    )
    bots = [create_bot(settings)]
    try:
        with discord_chaos(chaos):
            async with simcord.run(bots[0], settle_timeout=2, check_errors=False) as env:
                guild = env.create_guild("Chaos")
                channel = guild.create_text_channel("gen")
                members = [guild.add_member(env.create_user(f"user{i}")) for i in range(MEMBERS)]
                for i in range(jobs):
                    prompt = f"chaos job {i}"
                    await settle(members[i % MEMBERS].slash(channel, "imagine", prompt=prompt, seed=i))
                    if i + 1 in RESTARTS_AFTER:
                        old = env.bot
                        await old.close()
                        bots.append(create_bot(settings))
                        await settle(env.restart_bot(bots[-1]))
                    await settle(env.advance_time(0.5))
                for _ in range(60):  # until the journal is finished, then three recovery passes more
                    if not await unfinished(env.bot):
                        break
                    await settle(env.advance_time(10))
                for _ in range(3):
                    await settle(env.advance_time(45))
                summary = await judge(env.bot, channel, prodia, chaos, lines, jobs, seed, prodia_api, mode)
                summary["violations"] += [f"the bot raised {error!r}" for error in env.errors]
                return summary
    finally:
        pipeline_log.removeHandler(lines)
        pipeline_log.setLevel(level)
        pipeline_log.propagate = propagate
        for made in bots:
            await made.close()
        await prodia.close()


async def unfinished(bot: Any) -> int:
    rows = await bot.pipeline.store._query("SELECT COUNT(*) AS n FROM jobs WHERE state NOT IN ('delivered', 'failed')")
    return int(rows[0]["n"])


async def judge(
    bot: Any,
    channel: Any,
    prodia: ChaosProdia,
    chaos: DiscordChaos,
    lines: JobLines,
    jobs: int,
    seed: int,
    prodia_api: str,
    mode: str,
) -> dict[str, Any]:
    store = bot.pipeline.store
    rows = await store._query("SELECT id, state, error, attempts, message_id, request FROM jobs")
    history = channel.history()
    by_id = {m.id: m for m in history}
    results = Counter(m.embeds[0].title for m in history if m.embeds and m.attachments)
    sends: Counter[str] = Counter()
    billable: Counter[str] = Counter()
    for index, request in enumerate(prodia.requests):
        if request.method == "POST" and request.path in SUBMIT_PATHS:
            prompt = prodia.prompt_of("POST", request.path, request.json)
            sends[prompt] += 1
            if prodia.answered.get(index) != "429":
                billable[prompt] += 1
    max_retries = bot.settings.prodia_max_retries
    most_billable = 1 + (POST_RESENDS if prodia_api == "v2" else max_retries)
    outcomes: Counter[str] = Counter()
    violations: list[str] = []
    for row in rows:
        prompt = json.loads(row["request"])["prompt"]
        message = by_id.get(row["message_id"])
        if row["state"] == "delivered":
            outcome = "image"
            if results[prompt] != 1 or message is None or not message.attachments:
                violations.append(f"{prompt}: delivered, but {results[prompt]} results in the channel")
            if lines.delivered[row["id"]] != 1:
                violations.append(f"{prompt}: logged delivered {lines.delivered[row['id']]} times")
        elif row["state"] == "failed":
            outcome = row["error"]
            if results[prompt]:
                violations.append(f"{prompt}: failed ({row['error']}), yet its image is in the channel")
            if row["error"] != "error.undeliverable" and not (
                message is not None and shows(message.content, row["error"])
            ):
                violations.append(f"{prompt}: failed ({row['error']}), but its message does not say so")
        else:
            outcome = "stuck"
            violations.append(f"{prompt}: unfinished ({row['state']})")
        outcomes[outcome] += 1
        if sends[prompt] != row["attempts"]:
            violations.append(f"{prompt}: sent {sends[prompt]} times, journaled {row['attempts']}")
        if sends[prompt] > 1 + max_retries or billable[prompt] > most_billable:
            violations.append(f"{prompt}: sent {sends[prompt]} times, {billable[prompt]} maybe billed")
    if len(rows) != jobs:
        violations.append(f"{len(rows)} jobs journaled of {jobs} asked for")
    injected = Counter({f"prodia {k}": v for k, v in prodia.injected.items()}) + chaos.injected
    injected["bot restart"] = len(RESTARTS_AFTER)
    return {
        "api": prodia_api if prodia_api == "v1" else f"v2 {mode}",
        "seed": seed,
        "jobs": len(rows),
        "outcomes": dict(sorted(outcomes.items(), key=lambda item: -item[1])),
        "faults": dict(sorted(injected.items())),
        "max_sends_per_job": max(sends.values(), default=0),
        "max_maybe_billed_per_job": max(billable.values(), default=0),
        "sends_allowed": {"in_all": 1 + max_retries, "maybe_billed": most_billable},
        "violations": violations,
    }


def describe(summary: dict[str, Any]) -> str:
    outcomes = ", ".join(f"{kind} {n}" for kind, n in summary["outcomes"].items())
    faults = ", ".join(f"{kind} {n}" for kind, n in summary["faults"].items())
    allowed = summary["sends_allowed"]
    return "\n".join(
        [
            f"chaos run: {summary['jobs']} jobs, {summary['api']}, seed {summary['seed']}",
            f"outcomes: {outcomes}",
            f"faults injected: {faults}",
            f"most sends to Prodia for one job: {summary['max_sends_per_job']} (policy: {allowed['in_all']}); "
            f"most that may have been billed: {summary['max_maybe_billed_per_job']} "
            f"(policy: {allowed['maybe_billed']})",
            f"violations: {len(summary['violations'])}",
            *(f"  {v}" for v in summary["violations"]),
        ]
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.ops.chaos", description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=200)
    parser.add_argument("--seed", type=int, default=14)
    parser.add_argument("--api", choices=sorted(APIS), default="v2-sync")
    args = parser.parse_args(argv)
    logging.getLogger().addHandler(logging.NullHandler())  # the figures only: the bot's own lines stay quiet
    summary = asyncio.run(run(args.jobs, args.seed, args.api))
    print(describe(summary))
    return 1 if summary["violations"] else 0


if __name__ == "__main__":
    sys.exit(main())
