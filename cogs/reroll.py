"""🔄 on a result: the same request with a new seed, posted as a reply to the original."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import discord
from discord.ext import commands

from bot.delivery import DEFAULT_UPLOAD_LIMIT, Reply, run_job
from bot.errors import ImagineError
from bot.jobs import check_guild_limits
from bot.messages import text
from bot.render import REROLL_EMOJI
from bot.request import GenerationRequest, random_seed
from bot.resume import journal_job
from bot.store import StoreError

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
        try:
            record = await self.bot.store.get_result(payload.message_id)
        except StoreError:
            log.exception("Could not look up message %s for a reroll", payload.message_id)
            return
        if record is None:
            return  # not one of our results
        channel = self.bot.get_partial_messageable(payload.channel_id, guild_id=payload.guild_id)
        if not await self._may_reroll(payload, record.user_id):
            log.info("User %s may not reroll message %s", payload.user_id, payload.message_id)
            return
        try:
            if payload.guild_id:
                settings = await self.bot.store.guild_settings(payload.guild_id)
                await check_guild_limits(self.bot.store, payload.guild_id, settings, record.request["prompt"])
            release = self.bot.user_limits.admit(payload.user_id)
        except (ImagineError, StoreError) as exc:
            log.info("Reroll by %s refused: %r", payload.user_id, exc)
            return
        try:
            await self._reroll(payload, record.request, channel)
        finally:
            release()

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
            settings = await self.bot.store.guild_settings(payload.guild_id)
        except StoreError:
            return False
        return settings.reroll == "anyone"

    async def _reroll(
        self, payload: discord.RawReactionActionEvent, stored: dict, channel: discord.PartialMessageable
    ) -> None:
        guild = self.bot.get_guild(payload.guild_id) if payload.guild_id else None
        locale = guild.preferred_locale.value if guild else None
        user = payload.member or await self.bot.fetch_user(payload.user_id)
        request = GenerationRequest(**{**stored, "seed": random_seed()})
        job = self.bot.catalog.prepare(request)
        original = channel.get_partial_message(payload.message_id)
        reply = Reply(channel, reference=original)
        message = await reply.edit(content=text("reroll.started", locale, user=user.mention))
        journal = await journal_job(
            self.bot,
            job,
            kind="reroll",
            channel_id=payload.channel_id,
            guild_id=payload.guild_id,
            user_id=payload.user_id,
            message_id=message.id,
            reply_to=payload.message_id,
        )
        await run_job(
            self.bot,
            job,
            reply,
            journal=journal,
            requester=user,
            guild_id=payload.guild_id,
            locale=locale,
            started_at=discord.utils.utcnow().timestamp(),
            upload_limit=guild.filesize_limit if guild else DEFAULT_UPLOAD_LIMIT,
        )


async def setup(bot: ImagineBot) -> None:
    await bot.add_cog(Reroll(bot))
