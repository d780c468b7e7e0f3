"""Prodia clients: v1 (submit + poll) and v2 (one synchronous call), sharing one error hierarchy."""

from __future__ import annotations

import aiohttp

from ..config import Settings
from .base import GenerationResult, ProdiaClient, ProdiaObserver, Progress, ProgressCallback, Sends
from .polling import PollPolicy
from .v1 import ProdiaV1
from .v2 import ProdiaV2

__all__ = [
    "GenerationResult",
    "PollPolicy",
    "ProdiaClient",
    "ProdiaObserver",
    "ProdiaV1",
    "ProdiaV2",
    "Progress",
    "ProgressCallback",
    "Sends",
    "create_client",
]


def create_client(
    session: aiohttp.ClientSession, settings: Settings, *, observer: ProdiaObserver | None = None
) -> ProdiaClient:
    """The client for the configured API, on the bot's one session; `observer` hears its polls and retries."""
    return (ProdiaV1 if settings.prodia_api == "v1" else ProdiaV2)(session, settings, observer=observer)
