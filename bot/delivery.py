"""Running one job for Discord: queue, progress edits, the result message, and its reroll record.

The only module that ties the Discord-free core to messages; /imagine, reroll and resumed jobs share it.
"""

from __future__ import annotations

import asyncio
import io
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

import discord

from .catalog import PreparedJob
from .errors import AuthError, ImagineError, QuotaError
from .images import fit_to_limit
from .messages import error_text, text
from .prodia import Progress
from .render import REROLL_EMOJI, ProgressState, progress_text, result_embed
from .store import ResultRecord

if TYPE_CHECKING:
    from .client import ImagineBot

log = logging.getLogger(__name__)

DEFAULT_UPLOAD_LIMIT = 10 * 1024 * 1024
TOKEN_LIFETIME = 15 * 60  # seconds an interaction token may edit its reply


class Reply:
    """The message a job reports to. It edits through the interaction token while it lives, then
    through the channel with the bot token, and posts a new message (replying where it can) if the
    old one is gone. `on_message` hears the message id whenever it changes, for the journal."""

    def __init__(
        self,
        channel: discord.abc.Messageable,
        *,
        interaction: discord.Interaction | None = None,
        webhook: discord.Webhook | None = None,
        token_created_at: float | None = None,
        message: discord.Message | discord.PartialMessage | None = None,
        reference: discord.Message | discord.PartialMessage | None = None,
    ) -> None:
        self.channel = channel
        self.interaction = interaction
        self.webhook = webhook or (interaction.followup if interaction else None)
        if token_created_at is None and interaction is not None:
            token_created_at = interaction.created_at.timestamp()
        self.token_created_at = token_created_at
        self.message = message
        self.reference = reference
        self.on_message: Callable[[int], Awaitable[None]] | None = None
        self._lock = asyncio.Lock()

    def _token_alive(self) -> bool:
        if self.webhook is None or self.token_created_at is None:
            return False
        age = discord.utils.utcnow().timestamp() - self.token_created_at
        return age < TOKEN_LIFETIME - 30  # a margin for the request itself

    async def edit(
        self, *, content: str | None, embed: discord.Embed | None = None, file: discord.File | None = None
    ) -> discord.Message | discord.PartialMessage:
        async with self._lock:
            known = self.message.id if self.message else None
            message = await self._edit(content, embed, file)
            self.message = message
            if message.id != known and self.on_message is not None:
                await self.on_message(message.id)
            return message

    async def _edit(
        self, content: str | None, embed: discord.Embed | None, file: discord.File | None
    ) -> discord.Message | discord.PartialMessage:
        attachments = [file] if file else []
        if self._token_alive():
            try:
                if self.interaction is not None:
                    return await self.interaction.edit_original_response(
                        content=content, embed=embed, attachments=attachments
                    )
                if self.message is not None:
                    return await self.webhook.edit_message(  # type: ignore[union-attr]
                        self.message.id, content=content, embed=embed, attachments=attachments
                    )
            except discord.NotFound:
                log.info("The interaction reply is gone; falling back to the channel")
            self.interaction = self.webhook = None
            if file:
                file.reset()
        if self.message is not None:
            try:
                # Through the channel with the bot token (an InteractionMessage would use the dead token).
                target = self.channel.get_partial_message(self.message.id)  # type: ignore[attr-defined]
                return await target.edit(content=content, embed=embed, attachments=attachments)
            except discord.NotFound:
                log.info("Reply message %s was deleted; posting a new one", self.message.id)
                self.message = None
                if file:
                    file.reset()
        return await self.channel.send(
            content=content,
            embed=embed,  # type: ignore[arg-type]
            file=file,  # type: ignore[arg-type]
            reference=self.reference.to_reference(fail_if_not_exists=False) if self.reference else None,  # type: ignore[arg-type]
        )


class ProgressReporter:
    """Paces every edit of one reply: progress edits happen only when the text changes, at most once
    per `interval` seconds (later changes fold into one edit at the end of the interval), and the
    final edit keeps the same distance from the last progress edit. The first progress edit also
    waits `interval` after the reply appeared, so a job done by then shows no progress at all and
    its result replaces "thinking" at once."""

    def __init__(self, reply: Reply, *, locale: str | None, interval: float, started_at: float) -> None:
        self.reply = reply
        self.locale = locale
        self.interval = interval
        self.started_at = started_at
        self.edits = 0
        self._shown: str | None = None
        self._pending: str | None = None
        self._last_edit = time.monotonic()
        self._timer: asyncio.Task[None] | None = None

    async def update(self, state: str, position: int | None = None) -> None:
        self._pending = progress_text(ProgressState(state, self.started_at, position), self.locale)
        if self._pending == self._shown or self._timer is not None:
            return
        wait = self._last_edit + self.interval - time.monotonic()
        if wait <= 0:
            await self._flush()
        else:
            self._timer = asyncio.create_task(self._flush_later(wait))

    async def _flush_later(self, wait: float) -> None:
        await asyncio.sleep(wait)
        self._timer = None
        await self._flush()

    async def _flush(self) -> None:
        pending = self._pending
        if pending is None or pending == self._shown:
            return
        self._shown = pending
        self._last_edit = time.monotonic()
        self.edits += 1
        try:
            await self.reply.edit(content=pending)
        except discord.HTTPException as exc:  # progress is best effort; the result edit reports for real
            log.warning("Progress edit failed: %s", exc)

    async def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    async def final_turn(self) -> None:
        """Stop progress and wait until the final edit may follow the last one."""
        await self.stop()
        wait = self._last_edit + self.interval - time.monotonic()
        if self.edits and wait > 0:
            await asyncio.sleep(wait)


class Journal:
    """Writes a job's progress to the store. A failing store is logged and never stops the job."""

    def __init__(self, bot: ImagineBot, job_id: str) -> None:
        self.store = bot.store
        self.job_id = job_id

    async def update(self, **changes: Any) -> None:
        try:
            await self.store.update_job(self.job_id, **changes)
        except Exception:
            log.exception("Could not journal job %s (%s)", self.job_id, ", ".join(changes))


async def run_job(
    bot: ImagineBot,
    job: PreparedJob,
    reply: Reply,
    *,
    journal: Journal,
    requester: discord.abc.User,
    guild_id: int | None,
    locale: str | None,
    started_at: float,
    upload_limit: int = DEFAULT_UPLOAD_LIMIT,
    prodia_job_id: str | None = None,
) -> discord.Message | discord.PartialMessage | None:
    """Generate `job` and deliver it to `reply`. Every path ends in an edit: the image, or what went wrong.

    The journal follows each step; a job is "delivered" only once Discord accepted the result. If the
    bot stops (cancellation) the journal keeps the job unfinished, to be resumed at the next start."""
    task = asyncio.current_task()
    bot.running_jobs[task] = journal.job_id  # type: ignore[index]
    progress = ProgressReporter(reply, locale=locale, interval=bot.settings.progress_interval, started_at=started_at)
    reply.on_message = lambda message_id: journal.update(message_id=message_id)
    began = time.monotonic()

    async def on_progress(step: Progress) -> None:
        if step.state == "submitted" and step.job_id:  # from now on a restart resumes it by this id
            await journal.update(state="submitted", prodia_job_id=step.job_id)
        await progress.update(step.state)

    try:
        try:
            async with bot.queue.slot(on_position=lambda position: progress.update("waiting", position)):
                result = await bot.prodia.generate(job, on_progress, job_id=prodia_job_id)
            await journal.update(state="generated", price=result.price)
            image, info = result.image, result.info
            if len(image) > upload_limit:
                image, info = await asyncio.to_thread(fit_to_limit, image, info, upload_limit)
            filename = f"imagine-{result.seed}.{info.extension}"
            elapsed = time.monotonic() - began
            embed = result_embed(
                job, result, filename, requester=getattr(requester, "display_name", ""), elapsed=elapsed, locale=locale
            )
        except Exception as exc:
            await progress.final_turn()
            if isinstance(exc, AuthError | QuotaError):  # the owner's to fix: say so where the owner looks
                log.error("Prodia refused the bot's key (%s): check PRODIA_API_KEY and the account", exc)
            elif not isinstance(exc, ImagineError):
                log.exception("Job %s crashed", journal.job_id)
            _log_outcome(bot, journal, job, getattr(exc, "key", "error.unexpected"), began, progress, None)
            await reply.edit(content=error_text(exc, locale))
            await journal.update(state="failed", error=getattr(exc, "key", "error.unexpected"))
            return None
        await progress.final_turn()
        try:
            message = await reply.edit(content=None, embed=embed, file=discord.File(io.BytesIO(image), filename))
        except discord.Forbidden:
            # No Attach Files / Embed Links here: say so in text instead of failing silently.
            _log_outcome(bot, journal, job, "error.missing_permissions", began, progress, result.price)
            await reply.edit(content=text("error.missing_permissions", locale))
            await journal.update(state="failed", error="error.missing_permissions")
            return None
        await journal.update(state="delivered", message_id=message.id)
    except discord.HTTPException as exc:
        # Discord is failing: keep the job unfinished so the next start delivers it.
        log.warning("Job %s could not be delivered now: %s", journal.job_id, exc)
        return None
    finally:
        await progress.stop()
        bot.running_jobs.pop(task, None)  # type: ignore[arg-type]
    _log_outcome(bot, journal, job, "delivered", began, progress, result.price)
    await _add_reroll(message, locale)
    await _remember(bot, job, message, seed=result.seed, user_id=requester.id, guild_id=guild_id)
    return message


def _log_outcome(
    bot: ImagineBot,
    journal: Journal,
    job: PreparedJob,
    outcome: str,
    began: float,
    progress: ProgressReporter,
    price: float | None,
) -> None:
    """The one INFO line per job: its outcome, timings and price (and the prompt, unless the owner turned
    that off)."""
    prompt = f" prompt={job.request.prompt!r}" if bot.settings.log_prompts else ""
    log.info(
        "job=%s outcome=%s model=%s seconds=%.2f progress_edits=%d price=%s%s",
        journal.job_id,
        outcome,
        job.model.name,
        time.monotonic() - began,
        progress.edits,
        "unknown" if price is None else f"${price:.4f}",
        prompt,
    )


async def _add_reroll(message: discord.Message | discord.PartialMessage, locale: str | None) -> None:
    try:
        await message.add_reaction(REROLL_EMOJI)
    except discord.HTTPException as exc:  # no Add Reactions permission: say how to reroll instead
        log.info("Could not add the reroll reaction: %s", exc)
        embed = message.embeds[0] if isinstance(message, discord.Message) and message.embeds else None
        if embed is not None:
            await message.edit(content=text("result.no_reaction", locale), embed=embed)


async def _remember(
    bot: ImagineBot, job: PreparedJob, message: Any, *, seed: int, user_id: int, guild_id: int | None
) -> None:
    """Store what the result was made from, so 🔄 works after a restart. A failing store loses only that."""
    request = {**asdict(job.request), "seed": seed}
    record = ResultRecord(message.id, guild_id, message.channel.id, user_id, request, time.time())
    try:
        await bot.store.save_result(record)
    except Exception:
        log.exception("Could not store result %s; its reroll will not work", message.id)
