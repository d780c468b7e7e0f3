"""🔄 on a result: the same request with a new seed, posted as a reply to the original."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import discord
from discord.ext import commands

from bot.core.errors import ImagineError
from bot.core.messages import language_of, server_language, text
from bot.core.origin import DEFAULT_UPLOAD_LIMIT, JobKind, Origin
from bot.core.request import GenerationRequest, random_seed
from bot.core.store import GuildSettings, ResultRecord, StoreError
from bot.delivery import Reply
from bot.render import REROLL_EMOJI

if TYPE_CHECKING:
    from bot.client import ImagineBot

log = logging.getLogger(__name__)


class Reroll(commands.Cog):
    def __init__(self, bot: ImagineBot) -> None:
        self.bot = bot

    @commands.Cog.listener()
    async def on_raw_reaction_add(self, payload: discord.RawReactionActionEvent) -> None:
        # Raw events: results posted before a restart are not in the message cache.
        if str(payload.emoji) != REROLL_EMOJI or payload.user_id == self.bot.user.id:  # type: ignore[union-attr]
            return
        pipeline = self.bot.pipeline
        try:
            record = await pipeline.store.get_result(payload.message_id)
        except StoreError:
            log.exception("Could not look up message %s for a reroll", payload.message_id)
            return
        if record is None:
            return  # not one of our results
        if not await self._may_reroll(payload, record.user_id):
            log.info("User %s may not reroll message %s", payload.user_id, payload.message_id)
            return
        try:
            settings = await pipeline.guild_settings(payload.guild_id)
            origin = await self._origin(payload, settings, record)
            reservation = await pipeline.admit(origin, record.request["prompt"], settings)
        except ImagineError as exc:  # a reaction has no private answer: the log says why
            log.info("Reroll by %s refused: %r", payload.user_id, exc)
            return
        try:
            job = pipeline.catalog.prepare(GenerationRequest(**{**record.request, "seed": random_seed()}))
            channel = self.bot.get_partial_messageable(payload.channel_id, guild_id=payload.guild_id)
            reply = Reply(channel, reference=channel.get_partial_message(payload.message_id))
            await reply.edit(content=text("reroll.started", origin.locale, user=f"<@{payload.user_id}>"))
            await pipeline.start(job, reply, origin, reservation)
        finally:
            await reservation.release()

    async def _origin(
        self, payload: discord.RawReactionActionEvent, settings: GuildSettings, original: ResultRecord
    ) -> Origin:
        guild = self.bot.get_guild(payload.guild_id) if payload.guild_id else None
        user = payload.member or await self.bot.fetch_user(payload.user_id)
        if payload.guild_id is not None:  # the server's language now
            language = server_language(settings.locale, guild.preferred_locale.value if guild else None)
        else:  # a DM (only its requester may reroll there): the language the original was posted in
            language = language_of(original.locale)
        return Origin(
            kind=JobKind.REROLL,
            user_id=payload.user_id,
            channel_id=payload.channel_id,
            guild_id=payload.guild_id,
            locale=language,
            started_at=discord.utils.utcnow().timestamp(),
            upload_limit=guild.filesize_limit if guild else DEFAULT_UPLOAD_LIMIT,
            user_name=user.display_name,
            reply_to=payload.message_id,
        )

    async def _may_reroll(self, payload: discord.RawReactionActionEvent, requester_id: int) -> bool:
        if payload.user_id == requester_id:
            return True
        if payload.guild_id is None or payload.member is None:
            return False
        guild = self.bot.get_guild(payload.guild_id)
        channel = guild.get_channel_or_thread(payload.channel_id) if guild else None
        if channel is not None and channel.permissions_for(payload.member).manage_messages:
            return True
        try:
            settings = await self.bot.pipeline.store.guild_settings(payload.guild_id)
        except StoreError:
            return False
        return settings.reroll == "anyone"


async def setup(bot: ImagineBot) -> None:
    await bot.add_cog(Reroll(bot))
