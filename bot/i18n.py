"""Localized slash commands: descriptions and choice names from the catalogues in `bot.core.messages`.

Every command string lives once, in the catalogue: the cogs write `cmd("cmd.imagine.prompt")`, a
`locale_str` whose English text comes from the catalogue and whose `key` extra names the entry; at sync
`CatalogueTranslator` answers each locale from that entry. Command and option *names* are never
translated: Discord's name rules are strict and users type them.
"""

from __future__ import annotations

from typing import Any

import discord
from discord import app_commands

from .core.messages import CATALOGUES, EN
from .core.request import CFG_RANGE, STEPS_RANGE

# Catalogue keys that hold command descriptions and choice names.
COMMAND_KEY_PREFIXES = ("cmd.", "choice.", "aspect.")
# The placeholders of those entries, filled exactly as the cogs fill their English strings.
_STEPS = {"low": STEPS_RANGE[0], "high": STEPS_RANGE[1]}
_CFG = {"low": f"{CFG_RANGE[0]:g}", "high": f"{CFG_RANGE[1]:g}"}
COMMAND_PARAMS: dict[str, dict[str, Any]] = {
    "cmd.imagine.steps": _STEPS,
    "cmd.imagine.cfg": _CFG,
    "cmd.settings.set.steps": _STEPS,
    "cmd.settings.set.cfg": _CFG,
}
TRANSLATED_LOCATIONS = frozenset(
    {
        app_commands.TranslationContextLocation.command_description,
        app_commands.TranslationContextLocation.group_description,
        app_commands.TranslationContextLocation.parameter_description,
        app_commands.TranslationContextLocation.choice_name,
    }
)
DISCORD_TEXT_MAX = 100  # characters in a description or a choice name


def command_text(key: str, language: str = "en") -> str | None:
    """The command string `key` in `language` with its placeholders filled, or None if it has none there."""
    template = CATALOGUES.get(language, {}).get(key)
    if not template:
        return None
    return template.format(**COMMAND_PARAMS.get(key, {}))


def cmd(key: str) -> app_commands.locale_str:
    """A command description or choice name: the catalogue's English text, keyed for its translations."""
    if not key.startswith(COMMAND_KEY_PREFIXES) or key not in EN:
        raise KeyError(f"no command string {key!r} in the English catalogue")
    return app_commands.locale_str(command_text(key) or "", key=key)


def command_key(string: app_commands.locale_str) -> str | None:
    """The catalogue key of a command string (None for one not made by `cmd`, e.g. a proper name)."""
    return string.extras.get("key")


class CatalogueTranslator(app_commands.Translator):
    """Translates descriptions and choice names into every language that has a catalogue (Russian for now)."""

    async def translate(
        self,
        string: app_commands.locale_str,
        locale: discord.Locale,
        context: app_commands.TranslationContextTypes,
    ) -> str | None:
        if context.location not in TRANSLATED_LOCATIONS:
            return None  # command, group and option names stay as they are
        language = locale.value.split("-")[0].lower()
        if language == "en":
            return None  # English is the base text
        key = command_key(string)
        if key is None:
            return None
        translated = command_text(key, language)
        if translated is None or len(translated) > DISCORD_TEXT_MAX:
            return None  # Discord would refuse the whole sync; English is better than nothing
        return translated
