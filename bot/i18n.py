"""Localized slash commands: descriptions and choice names from the catalogues in `bot.messages`.

discord.py wraps every command string in a `locale_str` (auto_locale_strings), and at sync asks the tree's
translator for each locale. `CatalogueTranslator` answers from the catalogue entry whose English text is that
string (or whose key is `locale_str(..., key=...)`), so the cogs keep their plain English strings.
Command and option *names* are never translated: Discord's name rules are strict and users type them.
"""

from __future__ import annotations

import discord
from discord import app_commands

from .messages import CATALOGUES, EN
from .request import CFG_RANGE, STEPS_RANGE

# Catalogue keys that hold command descriptions and choice names.
COMMAND_KEY_PREFIXES = ("cmd.", "choice.", "aspect.")
# The placeholders of those entries, filled exactly as the cogs fill their English strings.
_STEPS = {"low": STEPS_RANGE[0], "high": STEPS_RANGE[1]}
_CFG = {"low": f"{CFG_RANGE[0]:g}", "high": f"{CFG_RANGE[1]:g}"}
COMMAND_PARAMS: dict[str, dict[str, object]] = {
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


# English text as the cogs write it -> catalogue key.
_KEY_BY_ENGLISH: dict[str, str] = {
    command_text(key): key  # type: ignore[misc]
    for key in EN
    if key.startswith(COMMAND_KEY_PREFIXES)
}


def command_key(string: app_commands.locale_str) -> str | None:
    """The catalogue key of a command string: its explicit `key=` extra, else the entry with its English text."""
    return string.extras.get("key") or _KEY_BY_ENGLISH.get(string.message)


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
