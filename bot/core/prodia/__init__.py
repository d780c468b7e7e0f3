"""Prodia clients: v1 (submit + poll) and v2 (one synchronous call), sharing one error hierarchy."""

from __future__ import annotations

import aiohttp

from ..config import Settings
from .base import GenerationResult, ProdiaClient, Progress, ProgressCallback
from .polling import PollPolicy
from .v1 import ProdiaV1
from .v2 import ProdiaV2

__all__ = [
    "GenerationResult",
    "PollPolicy",
    "ProdiaClient",
    "ProdiaV1",
    "ProdiaV2",
    "Progress",
    "ProgressCallback",
    "create_client",
]


def create_client(session: aiohttp.ClientSession, settings: Settings) -> ProdiaClient:
    """The client for the configured API, on the bot's one session."""
    return (ProdiaV1 if settings.prodia_api == "v1" else ProdiaV2)(session, settings)
