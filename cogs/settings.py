"""/settings: a server's own defaults for /imagine. Manage Server only, hinted and enforced."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import discord
from discord import app_commands
from discord.ext import commands

from bot.core.catalog import DEFAULT_CFG
from bot.core.content import AGE_RESTRICTED_POLICIES, ORDINARY_POLICIES
from bot.core.errors import InvalidInput
from bot.core.jobs import parse_blocked_words
from bot.core.messages import CATALOGUES, error_text, language_name, server_language, text
from bot.core.request import CFG_RANGE, MODEL_NAME_MAX, NEGATIVE_PROMPT_MAX, STEPS_RANGE, GenerationRequest
from bot.core.store import DEFAULT_FIELDS, REROLL_MODES, GuildSettings
from bot.i18n import cmd
from bot.render import FIELD_MAX, shown, truncate
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

log = logging.getLogger(__name__)

REROLL_CHOICES = [app_commands.Choice(name=cmd(f"choice.reroll.{mode}"), value=mode) for mode in REROLL_MODES]
AUTO_LANGUAGE = "auto"  # no language chosen: the server's preferred locale, else English
# Each language under its own name, in every client: a reader looks for the name of a language they read.
LANGUAGE_CHOICES = [
    app_commands.Choice(name=cmd("choice.language.auto"), value=AUTO_LANGUAGE),
    *(app_commands.Choice(name=language_name(language), value=language) for language in CATALOGUES),
]
NSFW_CHOICES = [app_commands.Choice(name=cmd(f"choice.nsfw.{mode}"), value=mode) for mode in ORDINARY_POLICIES]
NSFW_AGE_RESTRICTED_CHOICES = [
    app_commands.Choice(name=cmd(f"choice.nsfw.{mode}"), value=mode) for mode in AGE_RESTRICTED_POLICIES
]
SET_OPTIONS = (
    *DEFAULT_FIELDS, "language", "reroll", "blocked_words", "daily_cap", "nsfw", "nsfw_age_restricted", "channel"
)  # fmt: skip
# /settings reset puts back the generation defaults and the language (GuildSettings.locale); the moderation
# settings (reroll, blocked_words, daily_cap, nsfw, nsfw_age_restricted) are kept: a server that resets its
# defaults rarely means to lift its limits too, and /settings set clears each of them.
RESET_FIELDS = (*DEFAULT_FIELDS, "locale")


class ServerSettings(commands.Cog):
    group = app_commands.Group(
        name="settings",
        description=cmd("cmd.settings"),
        guild_only=True,
        default_permissions=discord.Permissions(manage_guild=True),
    )

    def __init__(self, bot: ImagineBot) -> None:
        self.bot = bot

    @group.command(name="set", description=cmd("cmd.settings.set"))
    @app_commands.describe(**{name: cmd(f"cmd.settings.set.{name}") for name in SET_OPTIONS})
    @app_commands.choices(
        sampler=SAMPLER_CHOICES,
        aspect_ratio=ASPECT_CHOICES,
        style=DEFAULT_STYLE_CHOICES,
        language=LANGUAGE_CHOICES,
        reroll=REROLL_CHOICES,
        nsfw=NSFW_CHOICES,
        nsfw_age_restricted=NSFW_AGE_RESTRICTED_CHOICES,
    )
    @app_commands.autocomplete(model=model_autocomplete)
    @app_commands.checks.has_permissions(manage_guild=True)
    async def settings_set(
        self,
        interaction: discord.Interaction,
        model: app_commands.Range[str, 1, MODEL_NAME_MAX] | None = None,
        sampler: str | None = None,
        steps: app_commands.Range[int, STEPS_RANGE[0], STEPS_RANGE[1]] | None = None,
        cfg: app_commands.Range[float, CFG_RANGE[0], CFG_RANGE[1]] | None = None,
        negative_prompt: app_commands.Range[str, None, NEGATIVE_PROMPT_MAX] | None = None,
        aspect_ratio: str | None = None,
        style: str | None = None,
        language: str | None = None,
        reroll: str | None = None,
        blocked_words: app_commands.Range[str, 1, 2000] | None = None,
        daily_cap: app_commands.Range[int, 0, 1_000_000] | None = None,
        nsfw: str | None = None,
        nsfw_age_restricted: str | None = None,
        channel: discord.TextChannel | discord.Thread | None = None,
    ) -> None:
        locale = interaction.locale.value
        image_defaults = {
            "model": model,
            "sampler": sampler,
            "steps": steps,
            "cfg": cfg,
            "negative_prompt": negative_prompt,
            "aspect_ratio": aspect_ratio,
            "style": style,
        }
        policies = {"reroll": reroll, "nsfw": nsfw, "nsfw_age_restricted": nsfw_age_restricted}
        changes: dict[str, Any] = {name: value for name, value in policies.items() if value is not None}
        if blocked_words is not None:
            changes["blocked_words"] = () if blocked_words.strip() == "-" else parse_blocked_words(blocked_words)
        if daily_cap is not None:
            changes["daily_cap"] = daily_cap or None
        if language is not None:
            changes["locale"] = None if language == AUTO_LANGUAGE else language
        try:
            if channel is not None and changes:  # a channel has image defaults only
                raise InvalidInput("channel policies", problem="channel_defaults_only")
            changes.update(checked_defaults(self.bot.pipeline.catalog, image_defaults))
            if reroll not in (None, "requester", "anyone"):
                raise InvalidInput("bad reroll", problem="choice", name="reroll", allowed="requester, anyone")
            if nsfw not in (None, *ORDINARY_POLICIES):
                raise InvalidInput("bad nsfw", problem="choice", name="nsfw", allowed=", ".join(ORDINARY_POLICIES))
            if nsfw_age_restricted not in (None, *AGE_RESTRICTED_POLICIES):
                allowed = ", ".join(AGE_RESTRICTED_POLICIES)
                name = "nsfw_age_restricted"
                raise InvalidInput(f"bad {name}", problem="choice", name=name, allowed=allowed)
            if language not in (None, AUTO_LANGUAGE, *CATALOGUES):
                allowed = ", ".join((AUTO_LANGUAGE, *CATALOGUES))
                raise InvalidInput("bad language", problem="choice", name="language", allowed=allowed)
        except InvalidInput as exc:
            await interaction.response.send_message(error_text(exc, locale), ephemeral=True)
            return
        await interaction.response.defer(ephemeral=True, thinking=True)
        store = self.bot.pipeline.store
        if channel is not None:
            defaults = await store.update_channel_defaults(channel.id, guild_id(interaction), **changes)
            await interaction.followup.send(
                text("settings.channel_saved", locale, channel=channel.mention),
                embed=describe_defaults(defaults, locale),
                ephemeral=True,
            )
            return
        saved = await store.update_guild_settings(guild_id(interaction), **changes)
        await interaction.followup.send(
            text("settings.saved", locale), embed=self._describe(saved, interaction), ephemeral=True
        )

    @group.command(name="show", description=cmd("cmd.settings.show"))
    @app_commands.describe(channel=cmd("cmd.settings.show.channel"))
    @app_commands.checks.has_permissions(manage_guild=True)
    async def settings_show(
        self, interaction: discord.Interaction, channel: discord.TextChannel | discord.Thread | None = None
    ) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)
        locale = interaction.locale.value
        if channel is not None:
            defaults = await self.bot.pipeline.store.channel_defaults(channel.id)
            sentence = text("settings.channel_show", locale, channel=channel.mention)
            await interaction.followup.send(sentence, embed=describe_defaults(defaults, locale), ephemeral=True)
            return
        current = await self.bot.pipeline.store.guild_settings(guild_id(interaction))
        await interaction.followup.send(
            text("settings.show", interaction.locale.value), embed=self._describe(current, interaction), ephemeral=True
        )

    @group.command(name="reset", description=cmd("cmd.settings.reset"))
    @app_commands.describe(channel=cmd("cmd.settings.reset.channel"))
    @app_commands.checks.has_permissions(manage_guild=True)
    async def settings_reset(
        self, interaction: discord.Interaction, channel: discord.TextChannel | discord.Thread | None = None
    ) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)
        store = self.bot.pipeline.store
        if channel is not None:
            await store.reset_channel_defaults(channel.id)
            sentence = text("settings.channel_reset", interaction.locale.value, channel=channel.mention)
            await interaction.followup.send(sentence, ephemeral=True)
            return
        current = await store.update_guild_settings(guild_id(interaction), **dict.fromkeys(RESET_FIELDS))
        await interaction.followup.send(
            text("settings.reset", interaction.locale.value), embed=self._describe(current, interaction), ephemeral=True
        )

    def _describe(self, current: GuildSettings, interaction: discord.Interaction) -> discord.Embed:
        """The server's settings in the reader's language (these replies are private)."""
        locale = interaction.locale.value
        builtin = GenerationRequest(prompt="-")
        builtin_values = {
            "model": self.bot.pipeline.catalog.default.name,
            "sampler": builtin.sampler,
            "steps": builtin.steps,
            "cfg": f"{DEFAULT_CFG:g}",
            "negative_prompt": text("settings.none", locale),
            "aspect_ratio": builtin.aspect_ratio,
            "style": text("settings.none", locale),
        }
        embed = discord.Embed(colour=discord.Colour.blurple())
        for name, fallback in builtin_values.items():
            value = getattr(current, name)
            if name == "aspect_ratio":
                value, fallback = (text(f"aspect.{v}", locale) if v else None for v in (value, fallback))
            if value is None or value == "":
                value = text("settings.builtin", locale, value=fallback)
            elif name == "negative_prompt":  # typed by the server's managers: escaped like all typed text
                value = shown(value, FIELD_MAX)
            embed.add_field(name=text(f"field.{name}", locale), value=truncate(str(value), FIELD_MAX), inline=True)
        if current.locale:
            language = language_name(current.locale)
        else:
            preferred = interaction.guild_locale.value if interaction.guild_locale else None
            language = text("settings.language.auto", locale, language=language_name(server_language(None, preferred)))
        embed.add_field(name=text("settings.field.language", locale), value=language, inline=False)
        embed.add_field(
            name=text("settings.field.reroll", locale), value=text(f"settings.reroll.{current.reroll}", locale)
        )
        words = shown(", ".join(current.blocked_words), FIELD_MAX) or text("settings.none", locale)
        embed.add_field(name=text("settings.field.blocked_words", locale), value=words, inline=False)
        cap = str(current.daily_cap) if current.daily_cap else text("settings.unlimited", locale)
        embed.add_field(name=text("settings.field.daily_cap", locale), value=cap)
        embed.add_field(name=text("settings.field.nsfw", locale), value=text(f"settings.nsfw.{current.nsfw}", locale))
        embed.add_field(
            name=text("settings.field.nsfw_age_restricted", locale),
            value=text(f"settings.nsfw.{current.nsfw_age_restricted}", locale),
        )
        return embed


def guild_id(interaction: discord.Interaction) -> int:
    """The server of a guild-only command (Discord never sends one from a DM)."""
    assert interaction.guild_id is not None
    return interaction.guild_id


async def setup(bot: ImagineBot) -> None:
    await bot.add_cog(ServerSettings(bot))
