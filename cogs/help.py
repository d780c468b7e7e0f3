"""/help: what the bot can do, and this server's limits for the one asking (privately, in their language)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from bot.core.errors import ImagineError
from bot.core.messages import text
from bot.i18n import cmd
from bot.render import EMBED_COLOUR

if TYPE_CHECKING:
    from bot.client import ImagineBot


class Help(commands.Cog):
    def __init__(self, bot: ImagineBot) -> None:
        self.bot = bot

    @app_commands.command(name="help", description=cmd("cmd.help"))
    async def help(self, interaction: discord.Interaction) -> None:
        locale = interaction.locale.value
        pipeline = self.bot.pipeline
        limits = [
            text(
                "help.per_user",
                locale,
                jobs=pipeline.settings.user_max_jobs,
                cooldown=f"{pipeline.settings.user_cooldown:g}",
            )
        ]
        try:
            settings = await pipeline.guild_settings(interaction.guild_id)
            caps = await pipeline.images_left(interaction.user.id, interaction.guild_id, settings)
            limits += [text(f"help.cap.{kind}", locale, limit=cap, left=left) for kind, cap, left in caps]
            if not caps:
                limits.append(text("help.no_cap", locale))
            who = text(f"settings.reroll.{settings.reroll}", locale)
        except ImagineError:  # the database failing or slow: the rest of the help still helps
            limits.append(text("help.limits_unknown", locale))
            who = text("settings.reroll.requester", locale)
        embed = discord.Embed(title=text("help.title", locale), description=text("help.commands", locale))
        embed.colour = EMBED_COLOUR
        embed.add_field(name=text("help.limits", locale), value="\n".join(limits), inline=False)
        embed.add_field(name=text("help.results", locale), value=text("help.actions", locale, who=who), inline=False)
        await interaction.response.send_message(embed=embed, ephemeral=True)


async def setup(bot: ImagineBot) -> None:
    await bot.add_cog(Help(bot))
