"""What /imagine and /settings share: the choices of their options and the model autocomplete."""

from __future__ import annotations

from typing import Any

import discord
from discord import app_commands

from bot.core.model_lists import SAMPLERS
from bot.core.request import ASPECT_RATIOS, GenerationRequest
from bot.core.store import GuildSettings
from bot.i18n import cmd

SAMPLER_CHOICES = [app_commands.Choice(name=name, value=name) for name in SAMPLERS]
ASPECT_CHOICES = [app_commands.Choice(name=cmd(f"aspect.{name}"), value=name) for name in ASPECT_RATIOS]
DEFAULT_FIELDS = ("model", "sampler", "steps", "cfg", "negative_prompt", "aspect_ratio")  # what a server may default


def merge_defaults(defaults: GuildSettings, **given: Any) -> GenerationRequest:
    """What the user gave, else the guild's default, else the built-in one."""
    values = {name: getattr(defaults, name) for name in DEFAULT_FIELDS if getattr(defaults, name) is not None}
    values.update({name: value for name, value in given.items() if value is not None})
    return GenerationRequest(**values)


async def model_autocomplete(interaction: discord.Interaction, current: str) -> list[app_commands.Choice[str]]:
    catalog = interaction.client.pipeline.catalog  # type: ignore[attr-defined]
    return [app_commands.Choice(name=model.name[:100], value=model.name[:100]) for model in catalog.search(current)]
