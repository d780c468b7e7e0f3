"""/imagine: validate, answer refusals privately, defer, hand the job to the pipeline."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import discord
from discord import app_commands
from discord.ext import commands

from bot.core.errors import ImagineError
from bot.core.messages import error_text, language_of, server_language
from bot.core.origin import JobKind, Origin
from bot.core.request import (
    CFG_RANGE,
    MODEL_NAME_MAX,
    NEGATIVE_PROMPT_MAX,
    PROMPT_MAX,
    SEED_RANGE,
    STEPS_RANGE,
    GenerationRequest,
    check_length,
)
from bot.core.store import GuildSettings
from bot.delivery import Reply
from bot.i18n import cmd
from cogs._options import ASPECT_CHOICES, SAMPLER_CHOICES, merge_defaults, model_autocomplete

if TYPE_CHECKING:
    from bot.client import ImagineBot

log = logging.getLogger(__name__)

IMAGINE_OPTIONS = ("prompt", "negative_prompt", "model", "steps", "cfg", "seed", "sampler", "aspect_ratio")


class Imagine(commands.Cog):
    def __init__(self, bot: ImagineBot) -> None:
        self.bot = bot

    @app_commands.command(name="imagine", description=cmd("cmd.imagine"))
    @app_commands.describe(**{name: cmd(f"cmd.imagine.{name}") for name in IMAGINE_OPTIONS})
    @app_commands.choices(sampler=SAMPLER_CHOICES, aspect_ratio=ASPECT_CHOICES)
    @app_commands.autocomplete(model=model_autocomplete)
    async def imagine(
        self,
        interaction: discord.Interaction,
        prompt: app_commands.Range[str, 1, PROMPT_MAX],
        negative_prompt: app_commands.Range[str, None, NEGATIVE_PROMPT_MAX] | None = None,
        model: app_commands.Range[str, 1, MODEL_NAME_MAX] | None = None,
        steps: app_commands.Range[int, STEPS_RANGE[0], STEPS_RANGE[1]] | None = None,
        cfg: app_commands.Range[float, CFG_RANGE[0], CFG_RANGE[1]] | None = None,
        seed: app_commands.Range[int, SEED_RANGE[0], SEED_RANGE[1]] | None = None,
        sampler: str | None = None,
        aspect_ratio: str | None = None,
    ) -> None:
        given: dict[str, Any] = {
            "prompt": prompt,
            "negative_prompt": negative_prompt,
            "model": model,
            "steps": steps,
            "cfg": cfg,
            "seed": seed,
            "sampler": sampler,
            "aspect_ratio": aspect_ratio,
        }
        pipeline = self.bot.pipeline
        # Refusals are answered privately, so they come before the public defer.
        try:
            request = GenerationRequest(**{k: v for k, v in given.items() if v is not None})  # the user's input
            if model is not None:  # never sent to Prodia (a catalog name is), but shown if it is no model's
                check_length("model", model, MODEL_NAME_MAX)
            defaults = await pipeline.guild_settings(interaction.guild_id)
            origin = job_origin(interaction, defaults)
            # What goes to Prodia: the prompt, and the negative prompt given, else the server's default one.
            texts = (request.prompt, request.negative_prompt or defaults.negative_prompt or "")
            reservation = await pipeline.admit(origin, texts, defaults)
        except ImagineError as exc:
            await interaction.response.send_message(error_text(exc, interaction.locale.value), ephemeral=True)
            return
        try:
            await interaction.response.defer(thinking=True)
            reply = Reply(interaction.channel, interaction=interaction)  # type: ignore[arg-type]
            try:
                job = pipeline.catalog.prepare(merge_defaults(defaults, **given))
            except ImagineError as exc:  # a server default out of range for this request
                await reply.edit(content=error_text(exc, origin.locale))
                return
            reply.message = await interaction.original_response()
            await pipeline.start(job, reply, origin, reservation)
        finally:
            await reservation.release()  # a job that never started gives back all it took


def job_origin(interaction: discord.Interaction, defaults: GuildSettings) -> Origin:
    """Where an /imagine job comes from; its public messages speak the server's language (the requester's in a DM)."""
    if interaction.guild_id is not None:
        guild_locale = interaction.guild_locale.value if interaction.guild_locale else None
        language = server_language(defaults.locale, guild_locale)
    else:
        language = language_of(interaction.locale.value)
    return Origin(
        kind=JobKind.IMAGINE,
        user_id=interaction.user.id,
        channel_id=interaction.channel_id,  # type: ignore[arg-type]
        guild_id=interaction.guild_id,
        locale=language,
        started_at=interaction.created_at.timestamp(),
        upload_limit=interaction.filesize_limit,
        user_name=interaction.user.display_name,
        interaction_token=interaction.token,
        application_id=interaction.application_id,
        interaction_created_at=interaction.created_at.timestamp(),
    )


async def setup(bot: ImagineBot) -> None:
    await bot.add_cog(Imagine(bot))
