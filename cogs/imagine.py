"""/imagine: validate, answer refusals privately, defer, hand the job to the pipeline."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import discord
from discord import app_commands
from discord.ext import commands

from bot.core.catalog import DEFAULT_STRENGTH, STRENGTH_RANGE
from bot.core.errors import BadResponse, ImagineError, InvalidInput
from bot.core.images import INPUT_MAX_BYTES, INPUT_TYPES, prepare_input
from bot.core.messages import error_text, language_of, server_language, text
from bot.core.origin import JobKind, Origin
from bot.core.request import (
    CFG_RANGE,
    COUNT_RANGE,
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
from bot.pipeline import content_policy, megabytes
from cogs._options import ASPECT_CHOICES, SAMPLER_CHOICES, STYLE_CHOICES, merge_defaults, model_autocomplete

if TYPE_CHECKING:
    from bot.client import ImagineBot

log = logging.getLogger(__name__)

IMAGINE_OPTIONS = (
    "prompt", "negative_prompt", "model", "steps", "cfg", "seed", "sampler", "aspect_ratio", "style", "count",
)  # fmt: skip
UPLOAD_READ_SECONDS = 1.5  # reading an upload before the defer: Discord allows 3 s for everything


class Imagine(commands.Cog):
    def __init__(self, bot: ImagineBot) -> None:
        self.bot = bot
        # "Imagine this" on a message: its text as the prompt (as the original provider took the last message).
        self.imagine_this_menu = app_commands.ContextMenu(name=cmd("cmd.imagine_this"), callback=self.imagine_this)

    async def cog_load(self) -> None:
        self.bot.tree.add_command(self.imagine_this_menu)

    async def cog_unload(self) -> None:
        self.bot.tree.remove_command(self.imagine_this_menu.name, type=self.imagine_this_menu.type)

    async def imagine_this(self, interaction: discord.Interaction, message: discord.Message) -> None:
        """A message's text as the prompt, with the usual defaults, limits and result; no text: refused privately."""
        prompt = " ".join(message.content.split())
        if not prompt:
            refusal = text("input.message_without_text", interaction.locale.value)
            await interaction.response.send_message(refusal, ephemeral=True)
            return
        await self.run(interaction, dict.fromkeys(IMAGINE_OPTIONS) | {"prompt": prompt})

    @app_commands.command(name="imagine", description=cmd("cmd.imagine"))
    @app_commands.describe(**{name: cmd(f"cmd.imagine.{name}") for name in (*IMAGINE_OPTIONS, "image", "strength")})
    @app_commands.choices(sampler=SAMPLER_CHOICES, aspect_ratio=ASPECT_CHOICES, style=STYLE_CHOICES)
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
        style: str | None = None,
        count: app_commands.Range[int, COUNT_RANGE[0], COUNT_RANGE[1]] | None = None,
        image: discord.Attachment | None = None,
        strength: app_commands.Range[float, STRENGTH_RANGE[0], STRENGTH_RANGE[1]] | None = None,
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
            "style": style,
            "count": count,
        }
        await self.run(interaction, given, image=image, strength=strength)

    async def run(
        self,
        interaction: discord.Interaction,
        given: dict[str, Any],
        *,
        image: discord.Attachment | None = None,
        strength: float | None = None,
    ) -> None:
        """Check `given` (the options, None where left out) and the `image` to start from, refuse privately, else
        defer and run the job."""
        model = given["model"]
        pipeline = self.bot.pipeline
        # Refusals are answered privately, so they come before the public defer.
        try:
            GenerationRequest(**{k: v for k, v in given.items() if v is not None})  # the user's input, as typed
            if model is not None:  # never sent to Prodia (a catalog name is), but shown if it is no model's
                check_length("model", model, MODEL_NAME_MAX)
            defaults = await pipeline.guild_settings(interaction.guild_id)
            channel_id = interaction.channel_id if interaction.guild_id is not None else None
            # Typed > the user's preferences > the channel's defaults > the server's > built-in.
            layers = [*await pipeline.personal_defaults(interaction.user.id, channel_id), defaults]
            merged = merge_defaults(layers, **given)  # InvalidInput: a default out of range for this request
            origin = job_origin(interaction, defaults)
            if image is None:
                job = pipeline.catalog.prepare(merged)
            else:  # checked, read and made ready before the defer: a refusal stays private
                if not pipeline.catalog.can_vary(merged.model):
                    name = pipeline.catalog.resolve(merged.model)[0].name
                    raise InvalidInput("no img2img", problem="cannot_start_from_image", model=name)
                source = await read_upload(image)
                chosen = DEFAULT_STRENGTH if strength is None else strength
                job = pipeline.catalog.prepare_variation(merged, source, chosen)
                origin = replace(origin, input_url=image.url)
            # What goes to Prodia: the prompt and the negative prompt, as typed or defaulted.
            texts = (merged.prompt, merged.negative_prompt)
            reservation = await pipeline.admit(origin, texts, defaults, images=merged.count)
        except ImagineError as exc:
            await interaction.response.send_message(error_text(exc, interaction.locale.value), ephemeral=True)
            return
        try:
            await interaction.response.defer(thinking=True)
            reply = Reply(interaction.channel, interaction=interaction)  # type: ignore[arg-type]
            reply.message = await interaction.original_response()
            await pipeline.start(job, reply, origin, reservation)
        finally:
            await reservation.release()  # a job that never started gives back all it took


async def read_upload(image: discord.Attachment) -> bytes:
    """The uploaded image made ready for Prodia (`bot.core.images.prepare_input`); InvalidInput saying why not:
    over the size cap (refused before it is read), not a PNG/JPEG/WebP, unreadable, too many pixels."""
    if image.size > INPUT_MAX_BYTES:
        raise InvalidInput("upload too large", problem="image_too_large", limit=megabytes(INPUT_MAX_BYTES))
    if (image.content_type or "").split(";")[0].strip() not in INPUT_TYPES:
        raise InvalidInput("upload type", problem="image_type")
    try:
        async with asyncio.timeout(UPLOAD_READ_SECONDS):
            data = await image.read()
    except (discord.HTTPException, TimeoutError):
        raise InvalidInput("upload unreadable", problem="image_unreadable") from None
    try:
        return await asyncio.to_thread(prepare_input, data)
    except BadResponse as exc:
        raise InvalidInput(f"upload: {exc}", problem="bad_upload", reason=str(exc)) from None


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
        content_policy=content_policy(defaults, interaction.channel),
        user_name=interaction.user.display_name,
        interaction_token=interaction.token,
        application_id=interaction.application_id,
        interaction_created_at=interaction.created_at.timestamp(),
    )


async def setup(bot: ImagineBot) -> None:
    await bot.add_cog(Imagine(bot))
