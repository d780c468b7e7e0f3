"""Imagine: a Discord bot whose /imagine command turns a prompt into an image through Prodia."""

from .client import ImagineBot, create_bot
from .config import ConfigError, Settings

__all__ = ["ConfigError", "ImagineBot", "Settings", "create_bot"]
