"""What /imagine and /settings share: the choices of their options and the model autocomplete."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import discord
from discord import app_commands

from bot.core.catalog import Catalog
from bot.core.errors import InvalidInput
from bot.core.messages import text
from bot.core.model_lists import SAMPLERS
from bot.core.request import ASPECT_RATIOS, STYLES, GenerationRequest
from bot.core.store import DEFAULT_FIELDS, Defaults
from bot.i18n import cmd
from bot.render import FIELD_MAX, NAME_MAX, shown, truncate

SAMPLER_CHOICES = [app_commands.Choice(name=name, value=name) for name in SAMPLERS]
ASPECT_CHOICES = [app_commands.Choice(name=cmd(f"aspect.{name}"), value=name) for name in ASPECT_RATIOS]
STYLE_CHOICES = [app_commands.Choice(name=name, value=name) for name in STYLES]


def merge_defaults(layers: Sequence[Defaults], **given: Any) -> GenerationRequest:
    """What the user gave, else the first of `layers` that sets it (the user's preferences, the channel's defaults,
    the server's, in that order), else the built-in one."""
    values = {name: value for name, value in given.items() if value is not None}
    for name in DEFAULT_FIELDS:
        if name not in values and (value := default_of(layers, name)) is not None:
            values[name] = value
    return GenerationRequest(**values)


NO_STYLE = "none"  # `style:none` in /settings and /preferences unsets the default style
# The choices of a default style: the presets, and none.
DEFAULT_STYLE_CHOICES = [app_commands.Choice(name=cmd("choice.style.none"), value=NO_STYLE), *STYLE_CHOICES]


def checked_defaults(catalog: Catalog, given: dict[str, Any]) -> dict[str, Any]:
    """The image defaults in `given` (None: not given) as they are stored, checked as /imagine checks them
    (autocomplete and choices are hints, not guarantees): InvalidInput otherwise. A model is stored under its
    catalog name; `style:none` and a blank negative prompt unset theirs."""
    changes = {name: given[name] for name in DEFAULT_FIELDS if given.get(name) is not None}
    if "model" in changes:
        found = catalog.get(changes["model"])
        if found is None:
            raise InvalidInput("unknown model", problem="unknown_model", name=shown(changes["model"], NAME_MAX))
        changes["model"] = found.name
    if changes.get("style") == NO_STYLE:
        changes["style"] = None
    checked = GenerationRequest(prompt="-", **{k: v for k, v in changes.items() if v is not None})
    if "negative_prompt" in changes:  # stored as /imagine would send it; blank: none
        changes["negative_prompt"] = checked.negative_prompt or None
    return changes


def describe_defaults(defaults: Defaults, locale: str | None) -> discord.Embed:
    """A user's or a channel's image defaults, each field its value or "not set" (the next layer's applies)."""
    embed = discord.Embed(colour=discord.Colour.blurple())
    for name in DEFAULT_FIELDS:
        value = getattr(defaults, name)
        if value is None:
            shown_value = text("defaults.not_set", locale)
        elif name == "aspect_ratio":
            shown_value = text(f"aspect.{value}", locale)
        elif name == "negative_prompt":  # typed: escaped like all typed text
            shown_value = shown(value, FIELD_MAX)
        else:
            shown_value = f"{value:g}" if isinstance(value, float) else str(value)
        embed.add_field(name=text(f"field.{name}", locale), value=truncate(shown_value, FIELD_MAX), inline=True)
    return embed


def default_of(layers: Sequence[Defaults], name: str) -> Any:
    """The first of `layers` that sets `name`, else None."""
    return next((value for layer in layers if (value := getattr(layer, name)) is not None), None)


async def model_autocomplete(interaction: discord.Interaction, current: str) -> list[app_commands.Choice[str]]:
    catalog = interaction.client.pipeline.catalog  # type: ignore[attr-defined]
    return [app_commands.Choice(name=model.name[:100], value=model.name[:100]) for model in catalog.search(current)]
