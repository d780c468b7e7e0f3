"""Logging, set up once by the entry point: discord.py's format or JSON lines, secrets scrubbed."""

from __future__ import annotations

import json
import logging
import time

import discord

from .core.config import Settings


class JsonFormatter(logging.Formatter):
    """One JSON object per line, for log collectors."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


class SecretFilter(logging.Filter):
    """Defence in depth: no code logs a secret, and this replaces any that slips into a line anyway."""

    def __init__(self, secrets: list[str]) -> None:
        super().__init__()
        self.secrets = [secret for secret in secrets if len(secret) >= 6]

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if any(secret in message for secret in self.secrets):
            for secret in self.secrets:
                message = message.replace(secret, "[secret]")
            record.msg, record.args = message, ()
        return True


def setup_logging(settings: Settings) -> None:
    level = getattr(logging, settings.log_level)
    if settings.log_json:
        discord.utils.setup_logging(level=level, formatter=JsonFormatter(), root=True)
    else:  # discord.py's own format: time, level, logger, message (passing formatter=None would drop them)
        discord.utils.setup_logging(level=level, root=True)
    secrets = [s.reveal() for s in (settings.discord_token, settings.prodia_api_key) if s is not None]
    for handler in logging.getLogger().handlers:
        handler.addFilter(SecretFilter(secrets))
