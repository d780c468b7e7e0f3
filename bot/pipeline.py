"""The one pipeline every job goes through: admit -> journal -> run -> deliver (recovery re-enters at run).

Built once at start-up from the resources the entry point opened; the slash command, the 🔄 reaction
and recovery after a restart each describe their job with an `Origin` and call it. A job counts as
delivered only once Discord accepted the result; a failing store is logged and never stops an accepted job
(a new one whose limits it cannot check is refused: see `admit`).
"""

from __future__ import annotations

import asyncio
import io
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import asdict
from typing import Any, TypeVar

import discord

from .core.catalog import DEFAULT_STRENGTH, UPSCALE_FACTOR, Catalog, PreparedJob, can_upscale
from .core.config import Settings
from .core.content import EXPLICIT_TERMS, ExplicitPrompt, Unchecked, Withheld, flagged, policy_for
from .core.errors import AuthError, BadResponse, ImagineError, InvalidInput, ProdiaError, QuotaError
from .core.images import SHRINK_SCALES, fit_to_limit, inspect_image, upscale_fits
from .core.jobs import (
    BlockedWord,
    JobQueue,
    LimitsUnavailable,
    Place,
    Restarting,
    UserLimits,
    find_blocked,
)
from .core.limits import DailyLimit, Limits, LocalLimits, Reservation, SharedLimits, SharedProdiaSlots, start_of_day
from .core.messages import error_text, text
from .core.origin import JobKind, JobState, Origin
from .core.prodia import GenerationResult, ProdiaClient, Progress, Sends
from .core.request import GenerationRequest
from .core.store import CapScope, Claim, Defaults, GuildSettings, JobRecord, ResultRecord, Store, StoreError
from .delivery import ProgressReporter, Reply, add_reroll
from .metrics import Metrics
from .render import (
    DESCRIPTION_MAX,
    NAME_MAX,
    STATE_PROGRESS,
    cancel_button,
    gallery,
    result_actions,
    result_buttons,
    result_embed,
    shown,
    truncate,
)

log = logging.getLogger(__name__)

T = TypeVar("T")
Made = list[GenerationResult | Exception]  # each image of a job: made, or why not
Shown = list[tuple[GenerationResult, str | None] | Exception]  # each image: shown (its spoiler note), or why not
PRE_DEFER_BUDGET = 1.0  # seconds the database may take before the defer; Discord allows 3 in all
# A job is leased to the process running it and renewed while it runs; a process that dies lets its
# leases lapse, and a live one takes the jobs over. The default of JOB_LEASE_SECONDS.
LEASE_SECONDS = Settings.job_lease_seconds
# Rounds (the first run, then recovery passes) Discord may refuse a job's reply (5xx, 429, 403: no access, maybe
# for now) before the job is given up; a 404 (the channel is gone) gives it up at once.
MAX_DELIVERY_ROUNDS = 3


class Journal:
    """One job's row in the journal. Writes that fail are logged: the image matters more."""

    def __init__(self, store: Store, job_id: str, *, prodia_job_id: str | None = None, attempts: int = 0) -> None:
        self.store = store
        self.job_id = job_id
        self.prodia_job_id = prodia_job_id  # where Prodia knows the job by (resumption picks it up by this)
        self.attempts = attempts  # sends to Prodia so far, every run and retry included (`jobs.attempts`)

    def sends(self) -> Sends:
        """This run's count of sends to Prodia, from the journal's, journaling each before it leaves."""
        return Sends(earlier=self.attempts, record=self._sent)

    def image_sends(self, count: int) -> list[Sends]:
        """`sends()` for each image of a job of `count` images, all journaled as one total. The journal does not
        keep an earlier run's sends apart per image: each image is taken to have had all of them but one per other
        image (exact when each was sent once; never fewer than it may have had, so no image is sent more often
        than the retry policy allows)."""
        if count == 1:
            return [self.sends()]
        earlier = self.attempts
        each: list[Sends] = []

        async def record(_: int) -> None:
            await self._sent(earlier + sum(sends.sent for sends in each))

        each += [Sends(earlier=max(0, earlier - (count - 1)), record=record) for _ in range(count)]
        return each

    async def _sent(self, total: int) -> None:
        self.attempts = total
        await self.update(attempts=total)

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
        self.running: dict[asyncio.Task[Any], str] = {}  # task -> journal id: no recovery sweep takes these
        self.instance_id = uuid.uuid4().hex  # names this process in job leases
        self.lease = settings.job_lease_seconds
        self.user_limits = UserLimits(settings.user_max_jobs, settings.user_cooldown)
        self.limits: Limits
        self.prodia_slots: SharedProdiaSlots | None = None
        if store.backend == "postgresql":  # processes may share the database: so do the limits, and Prodia's slots
            self.limits = SharedLimits(
                store,
                max_jobs=settings.user_max_jobs,
                cooldown=settings.user_cooldown,
                owner=self.instance_id,
                lease=self.lease,
            )
            key = settings.prodia_api_key.reveal() if settings.prodia_api_key else ""
            self.prodia_slots = SharedProdiaSlots(
                store, api_key=key, size=settings.max_concurrent_jobs, owner=self.instance_id, lease=self.lease
            )
        else:  # one process: in memory, no database round trip unless a daily cap applies
            self.limits = LocalLimits(store, self.user_limits)
        self.queue = JobQueue(settings.max_concurrent_jobs, settings.queue_size, self.prodia_slots)
        # What a job Discord refused (5xx, 429) had to show, its image or its failure, by journal id: the next
        # recovery pass delivers that instead of asking Prodia again. Dropped once delivered or given up.
        self.undelivered: dict[str, Made | Exception] = {}
        self.cancelled: dict[str, int] = {}  # journal id -> who cancelled it (✖️), until its task has stopped
        self.delivery_rounds: dict[str, int] = {}
        # The content check's verdict on a result Discord refused (`_check_content`): kept with it, so the next pass
        # does not pay for a second check of the same image.
        self.checked: dict[str, Shown] = {}
        self.metrics = metrics or Metrics()
        self.metrics.watch_queue(self.queue)
        self.closing = False  # set when the bot stops: no new job is taken, none is leased
        # What a job's seconds are measured with; None: time.monotonic. The playground sets a real clock,
        # since simcord swaps time.monotonic for its virtual one, which a single HTTP request never moves.
        self.clock: Callable[[], float] | None = None

    # -- admission (before the defer: refusals are private, and Discord's 3 s deadline holds) --------

    async def guild_settings(self, guild_id: int | None) -> GuildSettings:
        """The guild's defaults and policies within the pre-defer budget: the cached copy, even an expired one (the
        store logs a failed refresh), else the store's. LimitsUnavailable if neither answers: a server's blocked
        words and daily cap are never skipped."""
        if guild_id is None:
            return GuildSettings()
        try:
            return await bounded(self.store.guild_settings(guild_id, allow_stale=True))
        except StoreError as exc:
            log.error("Could not read the settings of guild %s (%s); refusing the job", guild_id, exc)
            raise LimitsUnavailable("guild settings unavailable") from exc

    async def personal_defaults(self, user_id: int, channel_id: int | None) -> list[Defaults]:
        """The user's preferences and, in a server (`channel_id`), the channel's defaults, in that order, within the
        pre-defer budget. Conveniences, not limits: if they cannot be read, the job goes on without them (logged)."""
        reads = [self.store.preferences(user_id)]
        if channel_id is not None:
            reads.append(self.store.channel_defaults(channel_id))
        try:
            return list(await bounded(asyncio.gather(*reads)))
        except (StoreError, LimitsUnavailable) as exc:
            log.warning("Could not read the personal or channel defaults (%s); using the server's", exc)
            return []

    async def admit(
        self, origin: Origin, texts: Iterable[str], settings: GuildSettings, *, images: int = 1
    ) -> Reservation:
        """Raise the ImagineError that refuses this job now, or take all its places at once (the queue's, the
        user's, the cooldown, today's under each cap) and return them; the caller releases them when the job ends,
        or at once if it never starts. `texts`: every text of the job that goes to Prodia (its prompt and negative
        prompt), checked against the server's blocked words as they are now. `images`: how many it makes (its
        `count:`), each taking a place in the queue and counting under the daily caps; in flight and for the
        cooldown the request is one job."""
        if self.closing:
            raise Restarting("the bot is stopping")
        for value in texts:
            if word := find_blocked(value, settings.blocked_words):
                raise BlockedWord("blocked word", word=shown(word, NAME_MAX))
            if origin.content_policy != "allow" and (word := find_blocked(value, EXPLICIT_TERMS)):
                raise ExplicitPrompt("explicit prompt", word=word)
        place = self.queue.reserve(images)  # QueueFull
        caps = self.daily_caps(origin.user_id, origin.guild_id, settings)
        claim = Claim(uuid.uuid4().hex, origin.user_id, origin.guild_id, tuple(cap.scope for cap in caps), images)
        try:
            reservation = await bounded(self.limits.reserve(claim, caps))
        except BaseException:
            place.release()
            raise
        reservation.place = place
        return reservation

    async def renew_places(self) -> None:
        """Keep the places this process's jobs hold in the database (PostgreSQL) leased while they run."""
        await self.limits.renew()
        if self.prodia_slots is not None:
            await self.prodia_slots.renew()

    def daily_caps(self, user_id: int, guild_id: int | None, settings: GuildSettings) -> tuple[DailyLimit, ...]:
        """The server's cap (`/settings`), or DM_DAILY_CAP in a DM; USER_DAILY_CAP everywhere. 0 or None: none."""
        caps = []
        if guild_id is not None and settings.daily_cap:
            caps.append(DailyLimit(CapScope("guild", guild_id), settings.daily_cap))
        if guild_id is None and self.settings.dm_daily_cap:
            caps.append(DailyLimit(CapScope("dm", user_id), self.settings.dm_daily_cap))
        if self.settings.user_daily_cap:
            caps.append(DailyLimit(CapScope("user", user_id), self.settings.user_daily_cap))
        return tuple(caps)

    async def images_left(
        self, user_id: int, guild_id: int | None, settings: GuildSettings
    ) -> list[tuple[str, int, int]]:
        """(scope kind, cap, images left today) for each daily cap on `user_id` there, as the journal counts them now
        (jobs being admitted at this moment aside): for /help. LimitsUnavailable if it cannot be read in time."""
        caps = self.daily_caps(user_id, guild_id, settings)
        if not caps:
            return []
        try:
            made = await bounded(self.store.count_images([cap.scope for cap in caps], start_of_day(time.time())))
        except StoreError as exc:
            raise LimitsUnavailable("cannot count today's images") from exc
        return [(cap.scope.kind, cap.limit, max(0, cap.limit - n)) for cap, n in zip(caps, made, strict=True)]

    # -- one job -------------------------------------------------------------------------------------

    async def start(
        self, job: PreparedJob, reply: Reply, origin: Origin, reservation: Reservation | None = None
    ) -> discord.Message | discord.PartialMessage | None:
        """Journal an admitted job (its reply already shown) and run it to the end, in the places it reserved."""
        message_id = reply.message.id if reply.message else None
        journal = await self.journal(job, origin, message_id=message_id, reservation=reservation)
        return await self.run(job, reply, origin, journal, place=reservation.place if reservation else None)

    async def journal(
        self, job: PreparedJob, origin: Origin, *, message_id: int | None, reservation: Reservation | None = None
    ) -> Journal:
        """Record an accepted job (seed fixed) before it is submitted, leased to this process."""
        now = time.time()
        if reservation is not None:
            reservation.started = True  # from now on its journal row counts, and its cooldown stays
        record = JobRecord(
            id=reservation.job_id if reservation else uuid.uuid4().hex,
            kind=origin.kind,
            guild_id=origin.guild_id,
            channel_id=origin.channel_id,
            user_id=origin.user_id,
            request=journaled_request(job, origin),
            state=JobState.ACCEPTED,
            interaction_token=origin.interaction_token,
            input_url=origin.input_url,
            application_id=origin.application_id,
            interaction_created_at=origin.interaction_created_at,
            message_id=message_id,
            reply_to=origin.reply_to,
            prodia_job_id=None,
            error=None,
            created_at=now,
            updated_at=now,
            locale=origin.locale,
            images=job.request.count,
        )
        task = asyncio.current_task()
        if task is not None:
            self.running[task] = record.id  # so no recovery sweep resumes it too
        try:
            await self.store.add_job(record)
            if not self.closing:  # a job journaled while the bot stops is left unleased: the next start takes it
                await self.store.claim_job(record.id, self.instance_id, lease=self.lease)
        except Exception:  # the user still gets the image; only a restart would lose it
            log.exception("Could not journal a new job")
        return Journal(self.store, record.id)

    async def run(
        self, job: PreparedJob, reply: Reply, origin: Origin, journal: Journal, *, place: Place | None = None
    ) -> discord.Message | discord.PartialMessage | None:
        """Generate `job` and deliver it to `reply`. Every path ends in an edit: the image, or what went wrong.

        If the bot stops (cancellation) the journal keeps the job unfinished, to be resumed at the next start."""
        if self.closing:  # admitted just before the bot began to stop: the journal keeps it for the next start
            return None
        task = asyncio.current_task()
        assert task is not None
        self.running[task] = journal.job_id
        progress = ProgressReporter(
            reply,
            locale=origin.locale,
            interval=self.settings.progress_interval,
            started_at=origin.started_at,
            buttons=cancel_button(journal.job_id, origin.locale),
        )
        reply.on_message = lambda message_id: journal.update(message_id=message_id)
        outcome = Outcome(self, job, journal, progress)
        pending: Made | Exception | None = self.undelivered.pop(journal.job_id, None)
        try:
            try:
                if isinstance(pending, Exception):
                    raise pending  # its sentence was refused by Discord before: shown now, Prodia not asked again
                made = pending or await self._generate(job, journal, progress, place)
                pending = made
                if journal.job_id not in self.checked:
                    self.checked[journal.job_id] = await self._check_all(made, origin)
                images = self.checked[journal.job_id]
                files, embeds = await result_message(job, images, origin, outcome.elapsed())
                price = total_price(made)
            except Exception as exc:
                logged, pending = pending is exc, exc
                await progress.final_turn()
                await self._report_failure(exc, reply, origin, outcome, logged=logged)
                return None
            await progress.final_turn()
            try:
                actions = result_actions(job, can_upscale=can_upscale(self.settings.prodia_api))
                buttons = result_buttons(origin.locale, actions, images=len(files))
                message = await reply.edit(content=None, embeds=embeds, files=files, view=buttons)
            except discord.Forbidden:
                # No Attach Files / Embed Links here: say so in text instead of failing silently.
                await reply.edit(content=text("error.missing_permissions", origin.locale))
                outcome.log("error.missing_permissions", price)
                await journal.update(state=JobState.FAILED, error="error.missing_permissions")
                return None
            finally:
                for file in files:
                    release(file)
            await journal.update(state=JobState.DELIVERED, message_id=message.id)
            self.delivery_rounds.pop(journal.job_id, None)
            self.checked.pop(journal.job_id, None)
        except discord.HTTPException as exc:
            await self._not_delivered(exc, journal, pending, outcome)
            return None
        except asyncio.CancelledError:
            by = self.cancelled.pop(journal.job_id, None)
            if by is None:
                raise  # the bot is stopping: the journal keeps the job for the next start
            task.uncancel()
            await progress.stop()
            await self._cancelled(reply, origin, journal, outcome, by)
            return None
        finally:
            await progress.stop()
            self.running.pop(task, None)
        outcome.log("delivered", price)
        await add_reroll(message, origin.locale)
        first = next(result for result in made if isinstance(result, GenerationResult))
        await remember(self.store, job, message, first.seed, origin)
        return message

    async def _generate(
        self, job: PreparedJob, journal: Journal, progress: ProgressReporter, place: Place | None = None
    ) -> Made:
        """Each image of `job` (one, or its `count:`) from Prodia, all at once, each a Prodia job in a queue slot of
        its own; an image that could not be made is its exception. If none could, the first one's is raised."""
        images = job.images()
        ids = batch_ids(journal.prodia_job_id, len(images))  # where Prodia knows each by: resumed by these
        sends = journal.image_sends(len(images))
        states: list[str | None] = [None] * len(images)

        async def make(n: int, image: PreparedJob) -> GenerationResult:
            async def on_progress(step: Progress) -> None:
                if step.state == "submitted" and step.job_id:  # from now on a restart resumes it by this id
                    ids[n] = step.job_id
                    await journal.update(state=JobState.SUBMITTED, prodia_job_id=",".join(ids))
                states[n] = step.state
                await progress.update(least_advanced(states))  # a batch shows its slowest image's state

            async def waiting(position: int) -> None:
                if n == 0:  # a batch's first image speaks for its place in the queue: the others are right behind
                    await progress.update("waiting", position)

            async with self.queue.slot(waiting, place=place):
                return await self.prodia.generate(image, on_progress, job_id=ids[n] or None, sends=sends[n])

        if len(images) == 1:
            made: Made = [await make(0, images[0])]
        else:
            outcomes = await asyncio.gather(*(make(n, image) for n, image in enumerate(images)), return_exceptions=True)
            made = []
            for n, outcome in enumerate(outcomes):
                if not isinstance(outcome, GenerationResult | Exception):
                    raise outcome  # a BaseException (cancelled): not one image's failure
                if isinstance(outcome, Exception):
                    log.warning("Image %d of %d of job %s failed: %r", n + 1, len(images), journal.job_id, outcome)
                made.append(outcome)
        results = [result for result in made if isinstance(result, GenerationResult)]
        if not results:
            raise next(exc for exc in made if isinstance(exc, Exception))  # reported (and counted) as one job's
        for outcome in made:
            if isinstance(outcome, ProdiaError):  # an image lost in a batch that is delivered: counted here
                self.metrics.job_failed_at_prodia(outcome)
            elif isinstance(outcome, GenerationResult):
                self.metrics.spent(outcome.price)
        await journal.update(state=JobState.GENERATED, price=total_price(made))
        return made

    async def _check_all(self, made: Made, origin: Origin) -> Shown:
        """`_check_content` of each image made: what may be shown (with its spoiler note), and what may not (its
        exception: withheld, or not made). Raises the first image's exception if none may be shown."""
        checked: Shown = []
        for result in made:
            if isinstance(result, Exception):
                checked.append(result)
                continue
            try:
                checked.append((result, await self._check_content(result, origin)))
            except (Withheld, Unchecked) as exc:
                checked.append(exc)
        if not any(isinstance(image, tuple) for image in checked):
            raise next(exc for exc in checked if isinstance(exc, Exception))
        return checked

    async def _check_content(self, result: GenerationResult, origin: Origin) -> str | None:
        """Apply the channel's content policy to a result (`bot.core.content`): Withheld (or Unchecked, if the
        classifier gave no label) where it is `block` and the result is flagged; where it is `spoiler`, the key of
        the note that goes with a spoilered result; None where it may be posted plainly. v1 has no classifier."""
        if origin.content_policy == "allow":
            return None
        try:
            verdict = await self.prodia.classify(result.image)
        except ProdiaError as exc:  # fail safe: an image that could not be checked counts as flagged
            log.warning("The content check failed (%r); the result is treated as flagged", exc)
            self.metrics.content_checked("failed")
            checked = False
        else:
            if verdict is None:
                return None  # no classifier on this API: the prompt check at admission is all there is
            label, price = verdict
            self.metrics.spent(price)
            self.metrics.content_checked(label)
            if not flagged(label, self.settings.nsfw_threshold):
                return None
            checked = True
        if origin.content_policy == "spoiler":
            return "content.spoilered" if checked else "content.spoilered_unchecked"
        raise Withheld("flagged by the content check") if checked else Unchecked("content check failed")

    async def _report_failure(
        self, exc: Exception, reply: Reply, origin: Origin, outcome: Outcome, *, logged: bool = False
    ) -> None:
        """Show the user what went wrong; `logged`: a failure logged and counted already, whose sentence Discord
        refused then."""
        key = exc.key if isinstance(exc, ImagineError) else "error.unexpected"
        if logged:
            pass
        elif isinstance(exc, AuthError | QuotaError):  # the owner's to fix: say so where the owner looks
            log.error("Prodia refused the bot's key (%s): check PRODIA_API_KEY and the account", exc)
        elif not isinstance(exc, ImagineError):
            log.exception("Job %s crashed", outcome.journal.job_id, exc_info=exc)
        if not logged:
            if isinstance(exc, ProdiaError):
                self.metrics.job_failed_at_prodia(exc)
            outcome.log(key, None)
        await reply.edit(content=error_text(exc, origin.locale))
        await outcome.journal.update(state=JobState.FAILED, error=key)
        self.delivery_rounds.pop(outcome.journal.job_id, None)
        self.checked.pop(outcome.journal.job_id, None)

    async def _not_delivered(
        self,
        exc: discord.HTTPException,
        journal: Journal,
        pending: Made | Exception | None,
        outcome: Outcome,
    ) -> None:
        """Discord refused a job's reply (its image or its sentence). Until now the job stayed unfinished and the
        next pass made it again: billed once more each time (four times in all for a v2 sync job whose reply was
        deleted in a channel the bot may not post in). Now what it had to show is kept for the next pass, and a
        channel gone (404: the reply's own 404 posts a new message instead), or a refusal repeated
        MAX_DELIVERY_ROUNDS times, ends the job."""
        job_id = journal.job_id
        rounds = self.delivery_rounds[job_id] = self.delivery_rounds.get(job_id, 0) + 1
        if isinstance(exc, discord.NotFound) or rounds >= MAX_DELIVERY_ROUNDS or pending is None:
            log.warning("Job %s given up: Discord refused its reply %d times (%s)", job_id, rounds, exc)
            self.delivery_rounds.pop(job_id, None)
            self.checked.pop(job_id, None)
            if isinstance(pending, list):
                outcome.log("error.undeliverable", total_price(pending))
            await journal.update(state=JobState.FAILED, error="error.undeliverable")
            return
        log.warning("Job %s could not be delivered now (%s); the next pass tries again", job_id, exc)
        self.undelivered[job_id] = pending

    def cancel(self, job_id: str, by: int) -> bool:
        """Stop the job `job_id` if this process runs it (✖️ by user `by`): it leaves the queue at once or stops
        being polled, and its reply says so. False if it is not running here (ended, or another process's)."""
        for task, running in self.running.items():
            if running == job_id and not task.done():
                self.cancelled[job_id] = by
                task.cancel()
                return True
        return False

    async def _cancelled(self, reply: Reply, origin: Origin, journal: Journal, outcome: Outcome, by: int) -> None:
        # Once sent, a job cannot be recalled (Prodia has no cancel): its reply says so rather than pretend.
        key = "job.cancelled_sent" if journal.attempts else "job.cancelled"
        outcome.log("cancelled", None)
        try:
            await reply.edit(content=text(key, origin.locale, user=f"<@{by}>"))
        except discord.HTTPException as exc:
            log.warning("Could not say job %s was cancelled: %s", journal.job_id, exc)
        await journal.update(state=JobState.FAILED, error="cancelled")

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
        self.undelivered.clear()  # the next start makes them again (by Prodia's id where there is one)
        self.checked.clear()
        try:
            await self.store.release_jobs(self.instance_id)
        except Exception:
            log.exception("Could not release job leases; they expire on their own")
        await self.limits.close()  # this process's reservations and Prodia slots, should any be left


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
    job: PreparedJob, images: Shown, origin: Origin, elapsed: float
) -> tuple[list[discord.File], list[discord.Embed]]:
    """The result's files and embeds: one image, or a batch's (`count:`) as a gallery (embeds sharing one URL show
    as one grid), each file within its share of the upload limit. A spoiler note (`_check_content`) makes every file
    a SPOILER_ attachment outside the embed (an embed's image is never hidden), the note in the embed. The images
    that may not be shown (withheld, not made) are counted in a note, with the first one's reason."""
    visible = [image for image in images if isinstance(image, tuple)]
    missing = [image for image in images if isinstance(image, Exception)]
    spoiler = next((note for _, note in visible if note), None)
    limit = origin.upload_limit // len(visible)
    files: list[discord.File] = []
    for result, _ in visible:
        image, info = result.image, result.info
        if len(image) > limit:
            # An upscale is re-encoded, never shrunk: shrunk, it would be no upscale.
            scales = (1.0,) if job.kind == "upscale" else SHRINK_SCALES
            try:
                image, info = await asyncio.to_thread(fit_to_limit, image, info, limit, scales)
            except BadResponse:
                if job.kind != "upscale":
                    raise
                raise InvalidInput(
                    "upscale over the upload limit", problem="upscale_too_large", limit=megabytes(limit)
                ) from None
        filename = f"{'SPOILER_' if spoiler else ''}imagine-{result.seed}.{info.extension}"
        files.append(discord.File(io.BytesIO(image), filename))
    results = [result for result, _ in visible]
    embed = result_embed(
        job, results[0], files[0].filename, requester=origin.user_name, elapsed=elapsed, locale=origin.locale,
        input_url=origin.input_url, seeds=[result.seed for result in results] if job.request.count > 1 else None,
    )  # fmt: skip
    notes = [embed.description]
    if missing:
        reason = error_text(missing[0], origin.locale)
        notes.append(text("result.missing", origin.locale, missing=len(missing), count=len(images), reason=reason))
    if spoiler:
        embed.set_image(url=None)
        notes.append(text(spoiler, origin.locale))
        return files, [describe(embed, notes)]
    return files, gallery(describe(embed, notes), [file.filename for file in files[1:]])


def describe(embed: discord.Embed, notes: list[str | None]) -> discord.Embed:
    embed.description = truncate("\n".join(filter(None, notes)), DESCRIPTION_MAX) or None
    return embed


def total_price(made: Made) -> float | None:
    """What the images made cost, where Prodia said (None if it said for none)."""
    prices = [result.price for result in made if isinstance(result, GenerationResult) and result.price is not None]
    return sum(prices) if prices else None


def batch_ids(journaled: str | None, count: int) -> list[str]:
    """Prodia's id of each image of a job ("" where it has none yet), from the journal's `prodia_job_id`: one id, or
    a batch's joined by commas in image order."""
    known = (journaled or "").split(",") if count > 1 else [journaled or ""]
    return [known[n] if n < len(known) else "" for n in range(count)]


def least_advanced(states: list[str | None]) -> str:
    """The state of the image furthest behind among those at Prodia (a batch's progress is its slowest image's)."""
    return min((state for state in states if state is not None), key=lambda state: STATE_PROGRESS[state])


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


def content_policy(settings: GuildSettings, channel: object) -> str:
    """The policy for possibly sexual results in `channel` (`bot.core.content`): the server's for age-restricted
    channels where Discord says it is one, else its ordinary one (DMs and channels the bot cannot see included)."""
    is_nsfw = getattr(channel, "is_nsfw", None)
    age_restricted = bool(is_nsfw()) if callable(is_nsfw) else False
    return policy_for(settings.nsfw, settings.nsfw_age_restricted, age_restricted=age_restricted)


def megabytes(size: int) -> str:
    """`size` bytes in MB as Discord counts upload limits (MiB), to three figures: "10", "25", "0.01"."""
    return f"{size / 2**20:.3g}"


def journaled_request(job: PreparedJob, origin: Origin | None = None) -> dict[str, Any]:
    """What the journal keeps of a job's request: the request, an image-to-image job's strength, and which image of
    the result it replies to a vary or upscale works on (`Origin.reply_image`), where that is not the first."""
    request = asdict(job.request)
    if job.strength is not None:
        request["strength"] = job.strength
    if origin is not None and origin.reply_image:
        request["reply_image"] = origin.reply_image
    return request


def prepare_job(catalog: Catalog, kind: JobKind, request: dict[str, Any], image: bytes | None = None) -> PreparedJob:
    """The job a journaled request of `kind` makes (`image`: what a vary, upscale or /imagine image: works on).
    ImagineError if the request no longer fits its model, or the model cannot start from an image."""
    request = dict(request)
    strength = request.pop("strength", None)
    request.pop("reply_image", None)  # where its image came from: `bot.recovery` reads it
    generation = GenerationRequest(**request)
    if kind == JobKind.UPSCALE:
        return catalog.prepare_upscale(generation, image or b"")
    if kind == JobKind.VARY or image is not None:
        return catalog.prepare_variation(generation, image or b"", DEFAULT_STRENGTH if strength is None else strength)
    return catalog.prepare(generation)


async def checked_input(image: bytes, kind: JobKind, upload_limit: int) -> bytes:
    """`image` if a vary or upscale may be sent with it; else the InvalidInput that says why (nothing is sent):
    not a whole PNG, JPEG or WebP of sane size, or an upscale that could not be posted within `upload_limit`."""
    try:
        inspect_image(image)
    except BadResponse as exc:
        raise InvalidInput(f"input image: {exc}", problem="bad_image", reason=str(exc)) from None
    if kind == JobKind.UPSCALE and not await asyncio.to_thread(upscale_fits, image, UPSCALE_FACTOR, upload_limit):
        raise InvalidInput("upscale over the upload limit", problem="upscale_too_large", limit=megabytes(upload_limit))
    return image


async def bounded(work: Awaitable[T]) -> T:
    """`work` within the pre-defer budget, else LimitsUnavailable (logged): the defer must not wait on the
    database, and a job whose limits could not be checked is not started."""
    try:
        # asyncio.timeout, not wait_for: the check runs in this task, so a cache hit costs no loop turn
        # (wait_for wraps it in a new task, two turns of a loop that may be busy with hundreds of jobs).
        async with asyncio.timeout(PRE_DEFER_BUDGET):
            return await work
    except TimeoutError:
        log.warning("A pre-defer check took over %.1f s; refusing the job", PRE_DEFER_BUDGET)
        raise LimitsUnavailable("limits check over budget") from None
