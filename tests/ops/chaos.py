"""`python -m tests.ops.chaos [--jobs 200] [--seed 14] [--api v2-sync|v2-async|v1|all]`: the bot under random
faults, and what came of it.

The real bot (under simcord, on its virtual clock) takes `--jobs` /imagine from 20 members, one every half second,
against the local Prodia server, while both sides misbehave at random from `--seed`:

- Prodia, on any request (API calls, polls, image downloads): 429 with Retry-After, 500/502/503, a dropped
  connection, a slow answer; and some jobs fail at Prodia (`job_fails`). Each request's fault is drawn from the seed,
  the job's prompt (a job without one, such as a content check, by its body), the request's kind and how many of that
  kind the job sent before, so the plan does not depend on the order requests happen to arrive in.
- Discord: 5xx and 429 on the bot's edits, new messages and reactions (drawn the same way from the method, path and
  occurrence); some replies are deleted while their job runs (a moderator deletes them); and the bot restarts twice
  (a clean stop: its jobs are cancelled and resumed by the next start).

Then the clock moves on past three recovery passes, and every job is checked (`VIOLATIONS`): it ended (no unfinished
journal row); its message shows its image (an attachment that is a PNG, JPEG or WebP), once, or one sentence saying
what went wrong (or, if Discord refused every way to show anything, it was given up with a logged reason); it was
delivered at most once (one `outcome=delivered` log line, one result message, no message in the channel that belongs
to no job); and it was sent to Prodia no more often than the retry policy allows (`bot.core.prodia.base`:
1 + PRODIA_MAX_RETRIES sends in all; for v2 at most 1 + POST_RESENDS that may have run, i.e. not answered 429), with
`jobs.attempts` equal to the sends the server saw. `run()` returns the summary; `tests/ops/test_chaos.py` asserts on it.

One clock for all (see `Simulation`, `settling_quickly`, `unsettled`, `restart`): the local server's jobs run on the
virtual clock too, and nothing waits on the real one but HTTP and database round trips, so 200 jobs take seconds
(v2 sync) to half a minute (v2 async) of real time.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import hashlib
import json
import logging
import random
import re
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import simcord
import simcord.http.router as simcord_router
from simcord.backend.errors import BackendError

from bot import create_bot
from bot.core.jobs import JobQueue
from bot.core.messages import EN
from bot.core.prodia.v2 import POST_RESENDS
from devtools.local_prodia import Fault, LocalProdia
from devtools.local_prodia.faults import REQUEST_FAULTS
from tests.plugins.discord_world import bot_settings

MEMBERS = 20
SUBMIT_PATHS = frozenset({"/v1/sd/generate", "/v2/job", "/v2/job/async"})
SYNC_PATHS = frozenset({"/v2/job"})
# What `judge` finds wrong, by the guarantee broken: a job not ended; one whose message shows neither its image nor
# its sentence; one shown twice (or a message of no job); one sent to Prodia more often than the retry policy allows;
# one whose journal (`jobs.attempts`) does not count the sends the server saw; an error raised.
VIOLATIONS = ("unfinished", "not shown", "twice", "over the retry policy", "journal", "errors")
IMAGE_MAGIC = (b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"RIFF")  # PNG, JPEG, WebP
# Chances per request (Prodia) or per eligible REST call (Discord); the rest go through untouched.
PRODIA_FAULTS = {"429": 0.08, "5xx": 0.08, "disconnect": 0.05, "slow": 0.03}
JOB_FAILS = 0.05  # chance a job fails at Prodia
DISCORD_FAULTS = {"5xx": 0.08, "429": 0.05}
REPLY_DELETED = 0.1  # chance a job's reply is deleted before the bot first edits it
RESTARTS_AFTER = (70, 140)  # the bot restarts after these many jobs were asked for
SLOW_SECONDS = 0.2  # a slow answer's delay (real seconds: the local server sleeps on the real clock)
SETTLE_TIMEOUT = 2.0  # real seconds an actor call waits for the bot to settle
SETTLE_POLL = 0.002  # real seconds between two looks at the bot's tasks while settling (simcord's `idle`)
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
    """The local Prodia server, misbehaving by plan. `answered` keeps the fault each recorded request got."""

    def __init__(self, seed: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.seed = seed
        self.answered: dict[int, str] = {}  # index in `requests` -> the fault kind it got
        self.seen: Counter[tuple[str, str, str]] = Counter()
        self.injected: Counter[str] = Counter()
        self.failing: set[str] = set()  # prompts of the jobs that fail at Prodia

    def prompt_of(self, method: str, path: str, body: Any) -> str:
        if method == "POST" and isinstance(body, dict):
            config = body.get("config")
            return str((config if isinstance(config, dict) else body).get("prompt"))
        match = re.search(r"/(?:job/|job/async/|images/)([0-9a-f-]{36})", path)  # a poll, an output, a v1 image
        job = self.jobs.get(match.group(1)) if match else None
        return str(job.params.get("prompt")) if job else "?"

    def subject_of(self, request: Any) -> str:
        """What a request's faults are drawn for: its job's prompt; for a job without one (a content check), its body
        less the multipart boundary (random per send), so that the same check sent again draws the same way."""
        prompt = self.prompt_of(request.method, request.path, request.json)
        if prompt not in ("None", "?") or request.method != "POST":
            return prompt
        boundary = request.headers.get("Content-Type", "").partition("boundary=")[2].strip('"').encode()
        body = request.body.replace(boundary, b"") if boundary else request.body
        return "body " + hashlib.sha256(body).hexdigest()[:16]

    def take_fault(self, path: str, kinds: Any) -> Fault | None:
        fault = super().take_fault(path, kinds)
        if fault is not None or kinds != REQUEST_FAULTS:
            return fault
        request = self.requests[-1]  # `_record` appended it just now, with no await in between
        prompt = self.subject_of(request)
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

    def new_job(self, request: Any, api: str, params: dict, width: int, height: int, *args: Any, **kwargs: Any) -> Any:
        job = super().new_job(request, api, params, width, height, *args, **kwargs)
        if request.path in SYNC_PATHS:
            job.duration = 0  # a sync answer waits with `asyncio.sleep`, on the real clock: it comes at once
        prompt = params.get("prompt")
        if prompt is not None and draw(self.seed, "job fails", prompt).random() < JOB_FAILS:
            job.fail = True  # each time it is sent: a job that failed once fails again
            self.failing.add(prompt)
            self.injected["job_fails"] = len(self.failing)
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
    simcord_router._check_faults = chaos.check  # `dispatch` looks it up by name
    try:
        yield
    finally:
        simcord_router._check_faults = ORIGINAL_CHECK


@dataclass
class Simulation:
    """What the run patches so that the bot, the local Prodia server and simcord keep one clock, the virtual one, and
    a run costs little real time (`env` is set once simcord runs; the first bot is made before):

    - the local Prodia server reads `time.monotonic()` outside the bot's scope, where simcord leaves it real: its
      jobs ran for real seconds while the bot polled them on the virtual clock (a run of 200 v2 async jobs could
      not take less real time than their durations, 8 at a time). `server_clock` gives the server's modules a
      `time` whose `monotonic()` is the virtual clock;
    - a job waiting in the bot's queue (`JobQueue`) waits on other jobs, not on anything simcord knows; undeclared,
      its wait kept the bot from ever settling while jobs queued, so each `advance_time` moved one timer on and
      then waited out the settle timeout in real time (a v1 run of 200 jobs took over 6 minutes).
      `queue_waits_declared` declares it (`external_wait`)."""

    env: Any = None

    def monotonic(self) -> float:
        return self.env.now().timestamp() if self.env is not None else time.monotonic()

    @contextlib.contextmanager
    def server_clock(self) -> Iterator[None]:
        clock = SimulatedTime(self)
        modules = [
            module
            for name, module in list(sys.modules.items())
            if name.startswith("devtools.local_prodia.") and getattr(module, "time", None) is time
        ]
        for module in modules:
            module.time = clock  # type: ignore[attr-defined]
        try:
            yield
        finally:
            for module in modules:
                module.time = time  # type: ignore[attr-defined]

    @contextlib.contextmanager
    def queue_waits_declared(self) -> Iterator[None]:
        init, notify = JobQueue.__init__, JobQueue._notify

        def declared_init(queue: JobQueue, *args: Any, **kwargs: Any) -> None:
            init(queue, *args, **kwargs)
            queue._changed = DeclaredTurn(self)

        def declared_notify(queue: JobQueue) -> None:
            notify(queue)
            queue._changed = DeclaredTurn(self)

        JobQueue.__init__, JobQueue._notify = declared_init, declared_notify  # type: ignore[method-assign, assignment]
        try:
            yield
        finally:
            JobQueue.__init__, JobQueue._notify = init, notify  # type: ignore[method-assign]


class SimulatedTime:
    """The `time` module as the local Prodia server sees it during a run: `monotonic()` is simcord's clock."""

    def __init__(self, simulation: Simulation) -> None:
        self.monotonic = simulation.monotonic

    def __getattr__(self, name: str) -> Any:
        return getattr(time, name)


class DeclaredTurn(asyncio.Event):
    """`JobQueue`'s wake-up (a fresh one after each change), its waits declared to simcord (`external_wait`)."""

    def __init__(self, simulation: Simulation) -> None:
        super().__init__()
        self.simulation = simulation

    async def wait(self) -> Any:
        if self.simulation.env is None:
            return await super().wait()
        return await self.simulation.env.external_wait(super().wait(), reason="a queued job waits for a running slot")


class JobLines(logging.Handler):
    """The one INFO line per job (`bot.pipeline`): how often each job was logged delivered."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.delivered: Counter[str] = Counter()

    def emit(self, record: logging.LogRecord) -> None:
        job = getattr(record, "job", None)
        if isinstance(job, dict) and job.get("outcome") == "delivered":
            self.delivered[str(job.get("id"))] += 1


class ServerErrors(logging.Handler):
    """What the local Prodia server logged as errors (a handler that raised: the bot then sees a bare 500). A run
    where the harness and the server disagree (a changed signature) would otherwise pass with every job failed."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.errors: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        error = record.exc_info[1] if record.exc_info else None
        self.errors.append(f"{record.getMessage()}: {error!r}" if error else record.getMessage())


def shows(content: str | None, key: str) -> bool:
    """The message shows the catalogue's sentence for `key` (its English text up to the first parameter)."""
    return bool(content) and content.startswith(EN[key].split("{", 1)[0])  # type: ignore[union-attr]


@contextlib.contextmanager
def settling_quickly(env: Any) -> Iterator[None]:
    """simcord settles by looking at the bot's tasks every `idle` seconds (50 ms) until none is runnable; a task that
    waits for an HTTP answer or a database write is looked at again only then. A run makes thousands of those, one
    after another on the virtual clock: at 50 ms each, a 200-job v2 async run took 90 s, at 2 ms 12 s for 100 (the
    CPU time barely moves). `_settle_internal` is simcord's internal wait, as
    `tests.plugins.discord_world.arriving_together` replaces it too."""
    env._settle_internal = functools.partial(type(env)._settle_internal, env, idle=SETTLE_POLL)
    try:
        yield
    finally:
        del env._settle_internal  # simcord's own again


@contextlib.contextmanager
def unsettled(env: Any) -> Iterator[None]:
    """An actor call that returns once its interaction reached the bot, without settling: the `advance_time` that
    follows settles it with the rest on the virtual clock. (A settling call lets every timer due within the settle
    timeout fire on the real clock: with jobs polling, that made each arrival cost up to 2 real seconds.)"""

    async def not_yet(**_options: Any) -> None:
        return None

    settling = env._settle_internal
    env._settle_internal = not_yet
    try:
        yield
    finally:
        env._settle_internal = settling


async def restart(env: Any, new: Any) -> None:
    """Stop the bot as a process stop does and start `new` in its place. `close()` cancels the jobs in flight (the
    journal keeps them); whatever else the old bot still had going (a reroll reaction, a progress edit, a store call
    on a store it closed) ends with its process, so it is cancelled here too. simcord drains the old bot and brings
    the new one to READY within a fixed 5 s of real time: the clock stands still meanwhile (`_advancing`, as during
    `advance_time`), or the resumed jobs' polls, due within those 5 s, would keep it from ever settling. A restart
    that fails anyway ends the run: simcord has stopped then."""
    old = env.bot
    await old.close()
    leftovers = [task for task in env._work.tasks if not task.done()]
    for task in leftovers:
        task.cancel()
    await asyncio.gather(*leftovers, return_exceptions=True)
    env._advancing = True
    try:
        await env.restart_bot(new)
    finally:
        env._advancing = False


async def settle(call: Any) -> bool:
    """Run an actor call; False if the bot did not settle (a job waiting on Prodia's HTTP answer)."""
    try:
        await call
    except TimeoutError:
        return False
    return True


async def run(jobs: int = 200, seed: int = 14, api: str = "v2-sync", workdir: Path | None = None) -> dict[str, Any]:
    """One chaos run; returns its summary (see the module's docstring) with `violations` by kind (`VIOLATIONS`), each
    empty when all held, and the real `seconds` it took."""
    prodia_api, mode = APIS[api]
    started = time.perf_counter()  # real time (simcord moves `time.monotonic`, not this)
    state = random.getstate()
    random.seed(seed)  # the bot's jitter (retry back-off, polls) from the seed too, so a run can be repeated
    try:
        with contextlib.ExitStack() as stack:
            if workdir is None:
                workdir = Path(stack.enter_context(tempfile.TemporaryDirectory()))
            summary = await _run(jobs, seed, prodia_api, mode, workdir)
    finally:
        random.setstate(state)
    summary["seconds"] = time.perf_counter() - started
    return summary


async def _run(jobs: int, seed: int, prodia_api: str, mode: str, workdir: Path) -> dict[str, Any]:
    prodia = ChaosProdia(
        seed,
        image_scale=0.0625,
        job_duration=lambda params: draw(seed, "duration", params.get("prompt")).uniform(0.5, 6),
    )
    chaos = DiscordChaos(seed)
    lines = JobLines()
    pipeline_log = logging.getLogger("bot.pipeline")
    pipeline_log.addHandler(lines)
    level, propagate = pipeline_log.level, pipeline_log.propagate
    pipeline_log.setLevel(logging.INFO)
    server_log = ServerErrors()
    logging.getLogger("aiohttp.server").addHandler(server_log)
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
    simulation = Simulation()
    bots: list[Any] = []

    def new_bot() -> Any:
        bots.append(create_bot(settings))
        return bots[-1]

    try:
        with discord_chaos(chaos), simulation.queue_waits_declared(), simulation.server_clock():
            async with simcord.run(new_bot(), settle_timeout=SETTLE_TIMEOUT, check_errors=False) as env:
                simulation.env = env
                with settling_quickly(env):
                    channel, restarts = await drive(env, jobs, new_bot)
                    summary = await judge(
                        env.bot, channel, prodia, chaos, lines, jobs, seed, prodia_api, mode, server_log.errors
                    )
                summary["faults"] = dict(sorted({**summary["faults"], "bot restart": restarts}.items()))
                summary["violations"]["errors"] += [f"the bot raised {error!r}" for error in env.errors]
                return summary
    finally:
        pipeline_log.removeHandler(lines)
        pipeline_log.setLevel(level)
        pipeline_log.propagate = propagate
        logging.getLogger("aiohttp.server").removeHandler(server_log)
        for made in bots:
            await made.close()
        await prodia.close()


async def drive(env: Any, jobs: int, new_bot: Callable[[], Any]) -> tuple[Any, int]:
    """`jobs` /imagine from `MEMBERS` members, one every half second (virtual), the bot restarted after
    `RESTARTS_AFTER` of them; then the clock moves on until the journal is finished, and past three recovery passes
    more. Returns the channel and how many restarts there were."""
    guild = env.create_guild("Chaos")
    channel = guild.create_text_channel("gen")
    members = [guild.add_member(env.create_user(f"user{i}")) for i in range(MEMBERS)]
    restarts = 0
    for i in range(jobs):
        with unsettled(env):
            await members[i % MEMBERS].slash(channel, "imagine", prompt=f"chaos job {i}", seed=i)
        await settle(env.advance_time(0.5))
        if i + 1 in RESTARTS_AFTER:
            await restart(env, new_bot())
            restarts += 1
    for _ in range(60):
        if not await unfinished(env.bot):
            break
        await settle(env.advance_time(10))
    for _ in range(3):
        await settle(env.advance_time(45))
    return channel, restarts


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
    server_errors: list[str],
) -> dict[str, Any]:
    store = bot.pipeline.store
    rows = await store._query("SELECT id, state, error, attempts, message_id, request FROM jobs")
    history = channel.history()
    by_id = {m.id: m for m in history}
    results = Counter(m.embeds[0].title for m in history if m.embeds and m.attachments)
    sends: Counter[str] = Counter()  # by prompt: each job has its own
    billable: Counter[str] = Counter()
    prompts = {json.loads(row["request"])["prompt"] for row in rows}
    other_sends = 0  # jobs that are no /imagine of the run (a result's content check, where the bot makes one)
    for index, request in enumerate(prodia.requests):
        if request.method == "POST" and request.path in SUBMIT_PATHS:
            prompt = prodia.prompt_of("POST", request.path, request.json)
            if prompt not in prompts:
                other_sends += 1
                continue
            sends[prompt] += 1
            if prodia.answered.get(index) != "429":
                billable[prompt] += 1
    max_retries = bot.settings.prodia_max_retries
    most_billable = 1 + (POST_RESENDS if prodia_api == "v2" else max_retries)
    outcomes: Counter[str] = Counter()
    violations: dict[str, list[str]] = {kind: [] for kind in VIOLATIONS}
    violations["errors"] += [f"the local Prodia server failed: {error}" for error in server_errors]
    for row in rows:
        prompt = json.loads(row["request"])["prompt"]
        message = by_id.get(row["message_id"])
        if row["state"] == "delivered":
            outcome = "image"
            if results[prompt] > 1:
                violations["twice"].append(f"{prompt}: delivered, and {results[prompt]} results in the channel")
            if message is None or not message.attachments or not results[prompt]:
                violations["not shown"].append(f"{prompt}: delivered, but its message shows no result")
            elif not (await message.attachments[0].read()).startswith(IMAGE_MAGIC):
                violations["not shown"].append(f"{prompt}: delivered, but its attachment is not an image")
            if lines.delivered[row["id"]] != 1:
                violations["twice"].append(f"{prompt}: logged delivered {lines.delivered[row['id']]} times")
        elif row["state"] == "failed":
            outcome = row["error"]
            if results[prompt]:
                violations["twice"].append(f"{prompt}: failed ({row['error']}), yet its image is in the channel")
            if row["error"] != "error.undeliverable" and not (
                message is not None and shows(message.content, row["error"])
            ):
                violations["not shown"].append(f"{prompt}: failed ({row['error']}), but its message does not say so")
        else:
            outcome = "stuck"
            violations["unfinished"].append(f"{prompt}: unfinished ({row['state']})")
        outcomes[outcome] += 1
        if sends[prompt] != row["attempts"]:
            violations["journal"].append(f"{prompt}: sent {sends[prompt]} times, journaled {row['attempts']}")
        if sends[prompt] > 1 + max_retries or billable[prompt] > most_billable:
            violations["over the retry policy"].append(
                f"{prompt}: sent {sends[prompt]} times, {billable[prompt]} of them maybe billed"
            )
    if len(rows) != jobs:
        violations["unfinished"].append(f"{len(rows)} jobs journaled of {jobs} asked for")
    shown_by_jobs = {row["message_id"] for row in rows}
    for message in history:  # a second message of one job (its result or its sentence posted twice) belongs to none
        if message.id not in shown_by_jobs:
            shown = message.content or (message.embeds[0].title if message.embeds else "")
            violations["twice"].append(f"message {message.id} belongs to no job: {shown!r:.80}")
    injected = Counter({f"prodia {k}": v for k, v in prodia.injected.items()}) + chaos.injected
    return {
        "api": prodia_api if prodia_api == "v1" else f"v2 {mode}",
        "seed": seed,
        "jobs": len(rows),
        "outcomes": dict(sorted(outcomes.items(), key=lambda item: -item[1])),
        "faults": dict(sorted(injected.items())),
        "prodia_requests": len(prodia.requests),
        "other_sends": other_sends,
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
            f"requests to Prodia: {summary['prodia_requests']} (other jobs sent, such as content checks: "
            f"{summary['other_sends']})",
            f"most sends to Prodia for one job: {summary['max_sends_per_job']} (policy: {allowed['in_all']}); "
            f"most that may have been billed: {summary['max_maybe_billed_per_job']} "
            f"(policy: {allowed['maybe_billed']})",
            f"took {summary['seconds']:.0f} s",
            f"violations: {sum(map(len, summary['violations'].values()))}",
            *(f"  {kind}: {v}" for kind, found in summary["violations"].items() for v in found),
        ]
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.ops.chaos", description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=200)
    parser.add_argument("--seed", type=int, default=14)
    parser.add_argument("--api", choices=[*APIS, "all"], default="v2-sync")
    args = parser.parse_args(argv)
    logging.getLogger().addHandler(logging.NullHandler())  # the figures only: the bot's own lines stay quiet
    failed = False
    for api in APIS if args.api == "all" else [args.api]:
        summary = asyncio.run(run(args.jobs, args.seed, api))
        print(describe(summary), flush=True)
        failed |= any(summary["violations"].values())
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
