"""Imagine: a Discord bot whose /imagine command turns a prompt into an image through Prodia.

The public interface: `from bot import Settings, create_bot`. The bot class is imported on first use,
so importing the Discord-free core (`bot.core`) never loads discord.py.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .core.config import ConfigError, Settings

if TYPE_CHECKING:
    from .client import ImagineBot, create_bot

__all__ = ["ConfigError", "ImagineBot", "Settings", "create_bot"]


def __getattr__(name: str) -> Any:
    if name in ("ImagineBot", "create_bot"):
        from . import client

        return getattr(client, name)
    raise AttributeError(f"module 'bot' has no attribute {name!r}")
