"""/preferences: a user's own image defaults, everywhere, above the channel's and the server's (privately)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from bot.core.errors import InvalidInput
from bot.core.messages import error_text, text
from bot.core.request import CFG_RANGE, MODEL_NAME_MAX, NEGATIVE_PROMPT_MAX, STEPS_RANGE
from bot.core.store import DEFAULT_FIELDS
from bot.i18n import cmd
from cogs._options import (
    ASPECT_CHOICES,
    DEFAULT_STYLE_CHOICES,
    SAMPLER_CHOICES,
    checked_defaults,
    describe_defaults,
    model_autocomplete,
)

if TYPE_CHECKING:
    from bot.client import ImagineBot


class Preferences(commands.Cog):
    group = app_commands.Group(name="preferences", description=cmd("cmd.preferences"))

    def __init__(self, bot: ImagineBot) -> None:
        self.bot = bot

    @group.command(name="set", description=cmd("cmd.preferences.set"))
    @app_commands.describe(**{name: cmd(f"cmd.preferences.set.{name}") for name in DEFAULT_FIELDS})
    @app_commands.choices(sampler=SAMPLER_CHOICES, aspect_ratio=ASPECT_CHOICES, style=DEFAULT_STYLE_CHOICES)
    @app_commands.autocomplete(model=model_autocomplete)
    async def preferences_set(
        self,
        interaction: discord.Interaction,
        model: app_commands.Range[str, 1, MODEL_NAME_MAX] | None = None,
        sampler: str | None = None,
        steps: app_commands.Range[int, STEPS_RANGE[0], STEPS_RANGE[1]] | None = None,
        cfg: app_commands.Range[float, CFG_RANGE[0], CFG_RANGE[1]] | None = None,
        negative_prompt: app_commands.Range[str, None, NEGATIVE_PROMPT_MAX] | None = None,
        aspect_ratio: str | None = None,
        style: str | None = None,
    ) -> None:
        locale = interaction.locale.value
        given = {
            "model": model,
            "sampler": sampler,
            "steps": steps,
            "cfg": cfg,
            "negative_prompt": negative_prompt,
            "aspect_ratio": aspect_ratio,
            "style": style,
        }
        try:
            changes = checked_defaults(self.bot.pipeline.catalog, given)
        except InvalidInput as exc:
            await interaction.response.send_message(error_text(exc, locale), ephemeral=True)
            return
        await interaction.response.defer(ephemeral=True, thinking=True)
        saved = await self.bot.pipeline.store.update_preferences(interaction.user.id, **changes)
        await interaction.followup.send(
            text("preferences.saved", locale), embed=describe_defaults(saved, locale), ephemeral=True
        )

    @group.command(name="show", description=cmd("cmd.preferences.show"))
    async def preferences_show(self, interaction: discord.Interaction) -> None:
        locale = interaction.locale.value
        await interaction.response.defer(ephemeral=True, thinking=True)
        current = await self.bot.pipeline.store.preferences(interaction.user.id)
        await interaction.followup.send(
            text("preferences.show", locale), embed=describe_defaults(current, locale), ephemeral=True
        )

    @group.command(name="reset", description=cmd("cmd.preferences.reset"))
    async def preferences_reset(self, interaction: discord.Interaction) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)
        await self.bot.pipeline.store.reset_preferences(interaction.user.id)
        await interaction.followup.send(text("preferences.reset", interaction.locale.value), ephemeral=True)


async def setup(bot: ImagineBot) -> None:
    await bot.add_cog(Preferences(bot))
