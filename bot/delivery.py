"""A job's reply in Discord: the message it reports to, paced progress edits, the reroll reaction.

`bot.pipeline` drives these; they know nothing of Prodia or the journal.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

import discord

from .core.errors import ImageGone
from .core.messages import text
from .render import REROLL_EMOJI, ProgressState, progress_text

log = logging.getLogger(__name__)

TOKEN_LIFETIME = 15 * 60  # seconds an interaction token may edit its reply
INVALID_WEBHOOK_TOKEN = 50027  # what Discord answers (401) a request on an expired interaction token


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
        self,
        *,
        content: str | None,
        embed: discord.Embed | None = None,
        file: discord.File | None = None,
        view: discord.ui.View | None = None,
        embeds: list[discord.Embed] | None = None,
        files: list[discord.File] | None = None,
    ) -> discord.Message | discord.PartialMessage:
        """Show `content` (and `embed` or `embeds`, `file` or `files`, buttons `view`; each None: none) as the
        reply."""
        embeds = embeds or ([embed] if embed else None)
        files = files or ([file] if file else None)
        async with self._lock:
            known = self.message.id if self.message else None
            message = await self._edit(content, embeds, files, view)
            self.message = message
            if message.id != known and self.on_message is not None:
                await self.on_message(message.id)
            return message

    async def _edit(
        self,
        content: str | None,
        embeds: list[discord.Embed] | None,
        files: list[discord.File] | None,
        view: discord.ui.View | None,
    ) -> discord.Message | discord.PartialMessage:
        embeds, files = embeds or [], files or []
        if self._token_alive():
            try:
                if self.interaction is not None:
                    return await self.interaction.edit_original_response(
                        content=content, embeds=embeds, attachments=files, view=view
                    )
                if self.message is not None:
                    return await self.webhook.edit_message(  # type: ignore[union-attr]
                        self.message.id, content=content, embeds=embeds, attachments=files, view=view
                    )
            except discord.HTTPException as exc:
                if not isinstance(exc, discord.NotFound) and exc.code != INVALID_WEBHOOK_TOKEN:
                    raise
                log.info("The interaction reply is gone or its token expired; falling back to the channel")
            self.interaction = self.webhook = None
            for file in files:
                file.reset()
        if self.message is not None:
            try:
                # Through the channel with the bot token (an InteractionMessage would use the dead token).
                target = self.channel.get_partial_message(self.message.id)  # type: ignore[attr-defined]
                return await target.edit(content=content, embeds=embeds, attachments=files, view=view)
            except discord.NotFound:
                log.info("Reply message %s was deleted; posting a new one", self.message.id)
                self.message = None
                for file in files:
                    file.reset()
        # Only what there is: `send` takes no None for a view, nor an empty list of files.
        extra: dict[str, Any] = {"embeds": embeds or None, "files": files or None, "view": view}
        if self.reference:
            extra["reference"] = self.reference.to_reference(fail_if_not_exists=False)
        return await self.channel.send(content=content, **{k: v for k, v in extra.items() if v is not None})


class ProgressReporter:
    """Paces every edit of one reply: progress edits happen only when the text changes, at most once
    per `interval` seconds (later changes fold into one edit at the end of the interval), and the
    final edit keeps the same distance from the last progress edit. The first progress edit also
    waits `interval` after the reply appeared, so a job done by then shows no progress at all and
    its result replaces "thinking" at once."""

    def __init__(
        self,
        reply: Reply,
        *,
        locale: str | None,
        interval: float,
        started_at: float,
        buttons: discord.ui.View | None = None,
    ) -> None:
        self.reply = reply
        self.buttons = buttons  # shown under the progress (✖️ Cancel)
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
            await self.reply.edit(content=pending, view=self.buttons)
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


async def add_reroll(message: discord.Message | discord.PartialMessage, locale: str | None) -> None:
    """React 🔄 on a delivered result. Never raises: the image is delivered already, and an error raised from here
    reached the command's error handler, which replaced the image with "Something went wrong" (found by the
    chaos run: a 5xx on the reaction, then on this fallback edit)."""
    try:
        await message.add_reaction(REROLL_EMOJI)
    except discord.Forbidden as exc:  # no Add Reactions permission: say how to reroll instead
        log.info("Could not add the reroll reaction: %s", exc)
        embeds = message.embeds if isinstance(message, discord.Message) else []
        if embeds:  # all of them: a batch's gallery is several
            try:
                await message.edit(content=text("result.no_reaction", locale), embeds=embeds)
            except discord.HTTPException as exc:
                log.warning("Could not say how to reroll: %s", exc)
    except discord.HTTPException as exc:  # Discord failing: the reaction is a convenience, not worth a retry
        log.warning("Could not add the reroll reaction: %s", exc)


IMAGE_READ_SECONDS = 10.0  # a result's image read back from Discord's CDN


async def uploaded_image(client: discord.Client, url: str) -> bytes:
    """An upload read back from Discord's CDN by its URL (a job's input after a restart); ImageGone if it fails."""
    try:
        async with asyncio.timeout(IMAGE_READ_SECONDS):
            return await client.http.get_from_cdn(url)
    except (discord.HTTPException, TimeoutError) as exc:
        raise ImageGone(f"upload: {type(exc).__name__}") from None


async def result_image(message: discord.Message | discord.PartialMessage, image: int = 0) -> bytes:
    """The image of a posted result (a batch's: its `image`th, from 0), read back from Discord (a partial message is
    fetched first); ImageGone if the message, its attachment or the CDN fails."""
    try:
        async with asyncio.timeout(IMAGE_READ_SECONDS):
            if not isinstance(message, discord.Message):  # (a Message is a PartialMessage too)
                message = await message.fetch()
            images = [a for a in message.attachments if (a.content_type or "").startswith("image/")]
            return await (images or message.attachments)[image].read()
    except (discord.HTTPException, IndexError, TimeoutError) as exc:
        raise ImageGone(f"result {message.id}: {type(exc).__name__}") from None
