"""/imagine: validate, defer, hand the job to the delivery runner."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable
from typing import TYPE_CHECKING, Any, TypeVar

import discord
from discord import app_commands
from discord.ext import commands

from bot.delivery import DEFAULT_UPLOAD_LIMIT, Reply, run_job
from bot.errors import ImagineError
from bot.jobs import check_guild_limits
from bot.messages import error_text
from bot.model_lists import SAMPLERS
from bot.request import ASPECT_RATIOS, CFG_RANGE, SEED_RANGE, STEPS_RANGE, GenerationRequest
from bot.resume import journal_job
from bot.store import GuildSettings, StoreError

if TYPE_CHECKING:
    from bot.client import ImagineBot

log = logging.getLogger(__name__)

SAMPLER_CHOICES = [app_commands.Choice(name=name, value=name) for name in SAMPLERS]
ASPECT_CHOICES = [app_commands.Choice(name=name.capitalize(), value=name) for name in ASPECT_RATIOS]
PRE_DEFER_BUDGET = 1.0  # seconds the database may take before the defer; Discord allows 3 in all
T = TypeVar("T")
DEFAULT_FIELDS = ("model", "sampler", "steps", "cfg", "negative_prompt", "aspect_ratio")


def merge_defaults(defaults: GuildSettings, **given: Any) -> GenerationRequest:
    """What the user gave, else the guild's default, else the built-in one."""
    values = {name: getattr(defaults, name) for name in DEFAULT_FIELDS if getattr(defaults, name) is not None}
    values.update({name: value for name, value in given.items() if value is not None})
    return GenerationRequest(**values)


async def model_autocomplete(interaction: discord.Interaction, current: str) -> list[app_commands.Choice[str]]:
    bot: ImagineBot = interaction.client  # type: ignore[assignment]
    return [app_commands.Choice(name=model.name[:100], value=model.name[:100]) for model in bot.catalog.search(current)]


class Imagine(commands.Cog):
    def __init__(self, bot: ImagineBot) -> None:
        self.bot = bot

    @app_commands.command(name="imagine", description="Turn a prompt into an image")
    @app_commands.describe(
        prompt="What the image should show",
        negative_prompt="What the image should not show",
        model="The model to draw with (default: the server's, else the bot's)",
        steps=f"Denoising steps, {STEPS_RANGE[0]}-{STEPS_RANGE[1]}: more is slower and finer",
        cfg=f"How closely to follow the prompt, {CFG_RANGE[0]:g}-{CFG_RANGE[1]:g}",
        seed="A number that fixes the randomness; the same seed gives the same image",
        sampler="The sampling method",
        aspect_ratio="The shape of the image",
    )
    @app_commands.choices(sampler=SAMPLER_CHOICES, aspect_ratio=ASPECT_CHOICES)
    @app_commands.autocomplete(model=model_autocomplete)
    async def imagine(
        self,
        interaction: discord.Interaction,
        prompt: app_commands.Range[str, 1, 1000],
        negative_prompt: app_commands.Range[str, None, 1000] | None = None,
        model: str | None = None,
        steps: app_commands.Range[int, STEPS_RANGE[0], STEPS_RANGE[1]] | None = None,
        cfg: app_commands.Range[float, CFG_RANGE[0], CFG_RANGE[1]] | None = None,
        seed: app_commands.Range[int, SEED_RANGE[0], SEED_RANGE[1]] | None = None,
        sampler: str | None = None,
        aspect_ratio: str | None = None,
    ) -> None:
        given = {
            "prompt": prompt,
            "negative_prompt": negative_prompt,
            "model": model,
            "steps": steps,
            "cfg": cfg,
            "seed": seed,
            "sampler": sampler,
            "aspect_ratio": aspect_ratio,
        }
        # Refusals are answered privately, so they come before the public defer. The guild's limits need
        # the database (cached settings, one count): bounded so Discord's 3 s deadline is never missed.
        defaults = GuildSettings()
        try:
            request = GenerationRequest(**{k: v for k, v in given.items() if v is not None})
            self.bot.queue.check_room()
            if interaction.guild_id:
                defaults = await self._guild_settings(interaction.guild_id)
                await self._bounded(check_guild_limits(self.bot.store, interaction.guild_id, defaults, request.prompt))
            release = self.bot.user_limits.admit(interaction.user.id)
        except ImagineError as exc:
            await interaction.response.send_message(error_text(exc, interaction.locale.value), ephemeral=True)
            return
        try:
            await interaction.response.defer(thinking=True)
            await self._generate(interaction, given, defaults)
        finally:
            release()

    async def _guild_settings(self, guild_id: int) -> GuildSettings:
        try:
            settings = await self._bounded(self.bot.store.guild_settings(guild_id, allow_stale=True))
        except StoreError:  # the image matters more than the defaults: go on with the built-in ones
            log.exception("Could not read the defaults of guild %s", guild_id)
            settings = None
        return settings or GuildSettings()

    @staticmethod
    async def _bounded(work: Awaitable[T]) -> T | None:
        try:
            # asyncio.timeout, not wait_for: the check runs in this task, so a cache hit costs no loop turn
            # (wait_for wraps it in a new task, two turns of a loop that may be busy with hundreds of jobs).
            async with asyncio.timeout(PRE_DEFER_BUDGET):
                return await work
        except TimeoutError:
            log.warning("A pre-defer check took over %.1f s; skipped", PRE_DEFER_BUDGET)
            return None

    async def _generate(self, interaction: discord.Interaction, given: dict[str, Any], defaults: GuildSettings) -> None:
        locale = interaction.guild_locale.value if interaction.guild_locale else interaction.locale.value
        reply = Reply(interaction.channel, interaction=interaction)  # type: ignore[arg-type]
        try:
            job = self.bot.catalog.prepare(merge_defaults(defaults, **given))
        except ImagineError as exc:
            await reply.edit(content=error_text(exc, locale))
            return
        original = await interaction.original_response()
        reply.message = original
        journal = await journal_job(
            self.bot,
            job,
            kind="imagine",
            channel_id=interaction.channel_id,  # type: ignore[arg-type]
            guild_id=interaction.guild_id,
            user_id=interaction.user.id,
            interaction=interaction,
            message_id=original.id,
        )
        await run_job(
            self.bot,
            job,
            reply,
            journal=journal,
            requester=interaction.user,
            guild_id=interaction.guild_id,
            locale=locale,
            started_at=interaction.created_at.timestamp(),
            upload_limit=getattr(interaction, "filesize_limit", DEFAULT_UPLOAD_LIMIT),
        )

    async def cog_app_command_error(
        self, interaction: discord.Interaction, error: app_commands.AppCommandError
    ) -> None:
        """Whatever escaped: the reply still ends in a sentence, never in "thinking" (and never answered twice)."""
        original = getattr(error, "original", error)
        log.error("/imagine failed", exc_info=original)
        message = error_text(original, interaction.locale.value)
        try:
            if interaction.response.is_done():
                await interaction.edit_original_response(content=message, embed=None, attachments=[])
            else:
                await interaction.response.send_message(message, ephemeral=True)
        except discord.HTTPException:
            log.warning("Could not tell the user about the failure either")


async def setup(bot: ImagineBot) -> None:
    await bot.add_cog(Imagine(bot))
