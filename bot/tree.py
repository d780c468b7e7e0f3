"""The one error path of every app command: what escaped a command becomes one catalogue sentence,
answered once (edited in where the command already answered), and logged where it is the bot's fault."""

from __future__ import annotations

import logging

import discord
from discord import app_commands

from .core.errors import ImagineError
from .core.messages import error_text, text
from .core.store import StoreError

log = logging.getLogger(__name__)


class ImagineTree(app_commands.CommandTree):
    async def interaction_check(self, interaction: discord.Interaction) -> bool:
        """While the bot stops (a deploy, a restart), every command is answered privately that it is restarting."""
        if not getattr(interaction.client, "stopping", False):
            return True
        if interaction.type is discord.InteractionType.application_command:
            message = text("limit.restarting", interaction.locale.value)
            try:
                await interaction.response.send_message(message, ephemeral=True)
            except discord.HTTPException:
                log.info("Could not tell a user the bot is restarting")
        return False

    async def on_error(self, interaction: discord.Interaction, error: app_commands.AppCommandError) -> None:
        locale = interaction.locale.value
        original = getattr(error, "original", error)
        if isinstance(error, app_commands.MissingPermissions):
            message = text("settings.no_permission", locale)  # Manage Server: the only permission a command checks
        elif isinstance(error, app_commands.NoPrivateMessage):
            message = text("settings.guild_only", locale)
        else:
            if isinstance(original, StoreError):
                log.warning("/%s: the database failed: %s", _name(interaction), original)
            elif not isinstance(original, ImagineError):
                log.error("/%s failed", _name(interaction), exc_info=original)
            message = error_text(original, locale)
        try:
            if interaction.response.is_done():  # deferred or answered: never leave it "thinking"
                await interaction.edit_original_response(content=message, embed=None, attachments=[])
            else:
                await interaction.response.send_message(message, ephemeral=True)
        except discord.HTTPException:
            log.warning("Could not tell the user about the failure either")


def _name(interaction: discord.Interaction) -> str:
    return interaction.command.qualified_name if interaction.command else "?"
