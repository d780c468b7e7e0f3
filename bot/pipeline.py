"""The one pipeline every job goes through: admit -> journal -> run -> deliver (recovery re-enters at run).

Built once at start-up from the resources the entry point opened; the slash command, the 🔄 reaction
and recovery after a restart each describe their job with an `Origin` and call it. A job counts as
delivered only once Discord accepted the result; a failing store is logged and never stops a job.
"""

from __future__ import annotations

import asyncio
import io
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import asdict
from typing import Any, TypeVar

import discord

from .core.catalog import Catalog, PreparedJob
from .core.config import Settings
from .core.errors import AuthError, ImagineError, ProdiaError, QuotaError
from .core.images import fit_to_limit
from .core.jobs import JobQueue, Restarting, UserLimits, check_guild_limits
from .core.messages import error_text, text
from .core.origin import JobState, Origin
from .core.prodia import GenerationResult, ProdiaClient, Progress
from .core.store import GuildSettings, JobRecord, ResultRecord, Store, StoreError
from .delivery import ProgressReporter, Reply, add_reroll
from .metrics import Metrics
from .render import result_embed

log = logging.getLogger(__name__)

T = TypeVar("T")
PRE_DEFER_BUDGET = 1.0  # seconds the database may take before the defer; Discord allows 3 in all
# A job is leased to the process running it and renewed while it runs; a process that dies lets its
# leases lapse, and a live one takes the jobs over.
LEASE_SECONDS = 120.0


class Journal:
    """One job's row in the journal. Writes that fail are logged: the image matters more."""

    def __init__(self, store: Store, job_id: str, *, prodia_job_id: str | None = None) -> None:
        self.store = store
        self.job_id = job_id
        self.prodia_job_id = prodia_job_id  # where Prodia knows the job by (resumption picks it up by this)

    async def update(self, **changes: Any) -> None:
        try:
            await self.store.update_job(self.job_id, **changes)
        except Exception:
            log.exception("Could not journal job %s (%s)", self.job_id, ", ".join(changes))


class JobPipeline:
    def __init__(
        self,
        client: discord.Client,
        settings: Settings,
        store: Store,
        prodia: ProdiaClient,
        catalog: Catalog,
        *,
        metrics: Metrics | None = None,
    ) -> None:
        self.client = client  # channels, users and guilds for delivery; nothing else of the bot
        self.settings = settings
        self.store = store
        self.prodia = prodia
        self.catalog = catalog  # replaced when v1's live model list is refreshed
        self.queue = JobQueue(settings.max_concurrent_jobs, settings.queue_size)
        self.user_limits = UserLimits(settings.user_max_jobs, settings.user_cooldown)
        self.running: dict[asyncio.Task[Any], str] = {}  # task -> journal id: no recovery sweep takes these
        self.instance_id = uuid.uuid4().hex  # names this process in job leases
        self.metrics = metrics or Metrics()
        self.metrics.watch_queue(self.queue)
        self.closing = False  # set when the bot stops: no new job is taken, none is leased
        # What a job's seconds are measured with; None: time.monotonic. The playground sets a real clock,
        # since simcord swaps time.monotonic for its virtual one, which a single HTTP request never moves.
        self.clock: Callable[[], float] | None = None

    # -- admission (before the defer: refusals are private, and Discord's 3 s deadline holds) --------

    async def guild_settings(self, guild_id: int | None) -> GuildSettings:
        """The guild's defaults and policies, within the pre-defer budget; built-in ones if the store fails."""
        if guild_id is None:
            return GuildSettings()
        try:
            settings = await bounded(self.store.guild_settings(guild_id, allow_stale=True))
        except StoreError:  # the image matters more than the defaults: go on with the built-in ones
            log.exception("Could not read the defaults of guild %s", guild_id)
            settings = None
        return settings or GuildSettings()

    async def admit(self, origin: Origin, prompt: str, settings: GuildSettings) -> Callable[[], None]:
        """Raise the ImagineError that refuses this job now, or take the user's place and return its release."""
        if self.closing:
            raise Restarting("the bot is stopping")
        self.queue.check_room()
        if origin.guild_id is not None:
            await bounded(check_guild_limits(self.store, origin.guild_id, settings, prompt))
        return self.user_limits.admit(origin.user_id)

    # -- one job -------------------------------------------------------------------------------------

    async def start(
        self, job: PreparedJob, reply: Reply, origin: Origin
    ) -> discord.Message | discord.PartialMessage | None:
        """Journal an admitted job (its reply already shown) and run it to the end."""
        journal = await self.journal(job, origin, message_id=reply.message.id if reply.message else None)
        return await self.run(job, reply, origin, journal)

    async def journal(self, job: PreparedJob, origin: Origin, *, message_id: int | None) -> Journal:
        """Record an accepted job (seed fixed) before it is submitted, leased to this process."""
        now = time.time()
        record = JobRecord(
            id=uuid.uuid4().hex,
            kind=origin.kind,
            guild_id=origin.guild_id,
            channel_id=origin.channel_id,
            user_id=origin.user_id,
            request=asdict(job.request),
            state=JobState.ACCEPTED,
            interaction_token=origin.interaction_token,
            application_id=origin.application_id,
            interaction_created_at=origin.interaction_created_at,
            message_id=message_id,
            reply_to=origin.reply_to,
            prodia_job_id=None,
            error=None,
            created_at=now,
            updated_at=now,
            locale=origin.locale,
        )
        task = asyncio.current_task()
        if task is not None:
            self.running[task] = record.id  # so no recovery sweep resumes it too
        try:
            await self.store.add_job(record)
            if not self.closing:  # a job journaled while the bot stops is left unleased: the next start takes it
                await self.store.claim_job(record.id, self.instance_id, lease=LEASE_SECONDS)
        except Exception:  # the user still gets the image; only a restart would lose it
            log.exception("Could not journal a new job")
        return Journal(self.store, record.id)

    async def run(
        self, job: PreparedJob, reply: Reply, origin: Origin, journal: Journal
    ) -> discord.Message | discord.PartialMessage | None:
        """Generate `job` and deliver it to `reply`. Every path ends in an edit: the image, or what went wrong.

        If the bot stops (cancellation) the journal keeps the job unfinished, to be resumed at the next start."""
        if self.closing:  # admitted just before the bot began to stop: the journal keeps it for the next start
            return None
        task = asyncio.current_task()
        assert task is not None
        self.running[task] = journal.job_id
        progress = ProgressReporter(
            reply, locale=origin.locale, interval=self.settings.progress_interval, started_at=origin.started_at
        )
        reply.on_message = lambda message_id: journal.update(message_id=message_id)
        outcome = Outcome(self, job, journal, progress)
        try:
            try:
                result = await self._generate(job, journal, progress)
                file, embed = await result_message(job, result, origin, outcome.elapsed())
            except Exception as exc:
                await progress.final_turn()
                await self._report_failure(exc, reply, origin, outcome)
                return None
            await progress.final_turn()
            try:
                message = await reply.edit(content=None, embed=embed, file=file)
            except discord.Forbidden:
                # No Attach Files / Embed Links here: say so in text instead of failing silently.
                outcome.log("error.missing_permissions", result.price)
                await reply.edit(content=text("error.missing_permissions", origin.locale))
                await journal.update(state=JobState.FAILED, error="error.missing_permissions")
                return None
            finally:
                release(file)
            await journal.update(state=JobState.DELIVERED, message_id=message.id)
        except discord.HTTPException as exc:
            # Discord is failing: keep the job unfinished so the next pass or start delivers it.
            log.warning("Job %s could not be delivered now: %s", journal.job_id, exc)
            return None
        finally:
            await progress.stop()
            self.running.pop(task, None)
        outcome.log("delivered", result.price)
        await add_reroll(message, origin.locale)
        await remember(self.store, job, message, result.seed, origin)
        return message

    async def _generate(self, job: PreparedJob, journal: Journal, progress: ProgressReporter) -> GenerationResult:
        async def on_progress(step: Progress) -> None:
            if step.state == "submitted" and step.job_id:  # from now on a restart resumes it by this id
                await journal.update(state=JobState.SUBMITTED, prodia_job_id=step.job_id)
            await progress.update(step.state)

        async with self.queue.slot(on_position=lambda position: progress.update("waiting", position)):
            result = await self.prodia.generate(job, on_progress, job_id=journal.prodia_job_id)
        self.metrics.spent(result.price)
        await journal.update(state=JobState.GENERATED, price=result.price)
        return result

    async def _report_failure(self, exc: Exception, reply: Reply, origin: Origin, outcome: Outcome) -> None:
        key = exc.key if isinstance(exc, ImagineError) else "error.unexpected"
        if isinstance(exc, AuthError | QuotaError):  # the owner's to fix: say so where the owner looks
            log.error("Prodia refused the bot's key (%s): check PRODIA_API_KEY and the account", exc)
        elif not isinstance(exc, ImagineError):
            log.exception("Job %s crashed", outcome.journal.job_id, exc_info=exc)
        if isinstance(exc, ProdiaError):
            self.metrics.job_failed_at_prodia(exc)
        outcome.log(key, None)
        await reply.edit(content=error_text(exc, origin.locale))
        await outcome.journal.update(state=JobState.FAILED, error=key)

    def stop_accepting(self) -> None:
        """From now on refuse new jobs (`Restarting`); those in flight go on until `close`."""
        self.closing = True

    async def close(self) -> None:
        """Stop every job in flight (the journal keeps them unfinished) and hand their leases back."""
        self.stop_accepting()
        tasks = list(self.running)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        try:
            await self.store.release_jobs(self.instance_id)
        except Exception:
            log.exception("Could not release job leases; they expire on their own")


class Outcome:
    """The one INFO line per job: its outcome, timings and price (the prompt unless the owner said no)."""

    def __init__(self, pipeline: JobPipeline, job: PreparedJob, journal: Journal, progress: ProgressReporter) -> None:
        self.log_prompts = pipeline.settings.log_prompts
        self.metrics = pipeline.metrics  # the same outcome and time, counted
        self.job = job
        self.journal = journal
        self.progress = progress
        self.clock = pipeline.clock or time.monotonic
        self.began = self.clock()

    def elapsed(self) -> float:
        return self.clock() - self.began

    def log(self, outcome: str, price: float | None) -> None:
        seconds = round(self.elapsed(), 2)
        self.metrics.job_ended(outcome, seconds)
        fields: dict[str, Any] = {  # the same, as fields of a JSON log line (LOG_JSON)
            "id": self.journal.job_id,
            "outcome": outcome,
            "model": self.job.model.name,
            "seconds": seconds,
            "progress_edits": self.progress.edits,
            "price": price,
        }
        if self.log_prompts:
            fields["prompt"] = self.job.request.prompt
        prompt = f" prompt={self.job.request.prompt!r}" if self.log_prompts else ""
        log.info(
            "job=%s outcome=%s model=%s seconds=%.2f progress_edits=%d price=%s%s",
            self.journal.job_id,
            outcome,
            self.job.model.name,
            seconds,
            self.progress.edits,
            "unknown" if price is None else f"${price:.4f}",
            prompt,
            extra={"job": fields},
        )


async def result_message(
    job: PreparedJob, result: GenerationResult, origin: Origin, elapsed: float
) -> tuple[discord.File, discord.Embed]:
    image, info = result.image, result.info
    if len(image) > origin.upload_limit:
        image, info = await asyncio.to_thread(fit_to_limit, image, info, origin.upload_limit)
    filename = f"imagine-{result.seed}.{info.extension}"
    embed = result_embed(job, result, filename, requester=origin.user_name, elapsed=elapsed, locale=origin.locale)
    return discord.File(io.BytesIO(image), filename), embed


def release(file: discord.File) -> None:
    """Free a result's bytes now. discord.py never closes a file object it is handed, and the stub it puts on
    the object's close() ties it into a reference cycle: the image would wait for a full garbage collection
    (after a burst of 1,000 results of 1-2 MB, most of a gigabyte)."""
    file.close()  # puts the file object's own close() back
    file.fp.close()


async def remember(store: Store, job: PreparedJob, message: Any, seed: int, origin: Origin) -> None:
    """Store what the result was made from, so 🔄 works after a restart. A failing store loses only that."""
    request = {**asdict(job.request), "seed": seed}
    record = ResultRecord(
        message.id, origin.guild_id, message.channel.id, origin.user_id, request, time.time(), locale=origin.locale
    )
    try:
        await store.save_result(record)
    except Exception:
        log.exception("Could not store result %s; its reroll will not work", message.id)


async def bounded(work: Awaitable[T]) -> T | None:
    """`work` within the pre-defer budget, else None (logged): the defer must not wait on the database."""
    try:
        # asyncio.timeout, not wait_for: the check runs in this task, so a cache hit costs no loop turn
        # (wait_for wraps it in a new task, two turns of a loop that may be busy with hundreds of jobs).
        async with asyncio.timeout(PRE_DEFER_BUDGET):
            return await work
    except TimeoutError:
        log.warning("A pre-defer check took over %.1f s; skipped", PRE_DEFER_BUDGET)
        return None
