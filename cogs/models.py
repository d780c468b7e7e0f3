"""/models: the models /imagine accepts, searchable and paged."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from bot.core.messages import text
from bot.i18n import cmd
from bot.render import EMBED_COLOUR, NAME_MAX, shown, truncate

if TYPE_CHECKING:
    from bot.client import ImagineBot

PAGE_SIZE = 15
PARAMETERS = ("negative_prompt", "steps", "cfg", "seed", "sampler", "aspect_ratio")  # /imagine's tuning options


class Models(commands.Cog):
    def __init__(self, bot: ImagineBot) -> None:
        self.bot = bot

    @app_commands.command(name="models", description=cmd("cmd.models"))
    @app_commands.describe(search=cmd("cmd.models.search"), page=cmd("cmd.models.page"))
    async def models(
        self,
        interaction: discord.Interaction,
        search: app_commands.Range[str, 1, 100] | None = None,
        page: app_commands.Range[int, 1, 1000] = 1,
    ) -> None:
        locale = interaction.locale.value
        catalog = self.bot.pipeline.catalog
        found = catalog.search(search or "", limit=len(catalog))
        if not found:
            shown_search = shown(search or "", NAME_MAX)  # as typed: escaped
            await interaction.response.send_message(text("models.none", locale, search=shown_search), ephemeral=True)
            return
        pages = math.ceil(len(found) / PAGE_SIZE)
        page = min(page, pages)
        lines = []
        for model in found[(page - 1) * PAGE_SIZE : page * PAGE_SIZE]:
            line = f"`{model.name}`"
            if model is catalog.default:
                line += " " + text("models.default", locale)
            if model.aliases:
                line += " · " + ", ".join(f"`{alias}`" for alias in model.aliases)
            if model.job_type:  # v2 models differ in what they take: say it
                taken = [p for p in PARAMETERS if p not in model.ignores]
                names = ", ".join(text(f"field.{p}", locale) for p in taken)
                line += "\n  " + text("models.takes", locale, names=names, steps=model.max_steps)
                if model.evidence == "third-party code":
                    line += " " + text("models.unconfirmed", locale)
            lines.append(line)
        embed = discord.Embed(
            title=text("models.title", locale, count=len(found)),
            description=truncate("\n".join(lines), 4096),
            colour=EMBED_COLOUR,
        )
        embed.set_footer(text=text("models.footer", locale, page=page, pages=pages))
        await interaction.response.send_message(embed=embed, ephemeral=True)


async def setup(bot: ImagineBot) -> None:
    await bot.add_cog(Models(bot))
