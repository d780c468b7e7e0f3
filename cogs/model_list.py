"""Backend, v1 only: the model list from Prodia's live lists, cached in the store, refreshed every
MODEL_REFRESH_INTERVAL seconds (0: never). v2 has no list to read: its catalogue is built in."""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING

from discord.ext import commands, tasks

from bot.core.catalog import Catalog
from bot.core.errors import ImagineError
from bot.core.model_lists import SAMPLERS
from bot.core.prodia import ProdiaV1

if TYPE_CHECKING:
    from bot.client import ImagineBot

log = logging.getLogger(__name__)

MODELS_CACHE_KEY = "models_v1"


class ModelList(commands.Cog):
    def __init__(self, bot: ImagineBot, prodia: ProdiaV1) -> None:
        self.bot = bot
        self.prodia = prodia

    async def cog_load(self) -> None:
        await self._load_cached()
        interval = self.bot.settings.model_refresh_interval
        if interval > 0:
            self.refresh_loop.change_interval(seconds=interval)
            self.refresh_loop.start()

    async def cog_unload(self) -> None:
        self.refresh_loop.cancel()

    @tasks.loop(hours=1)  # the interval is set from the settings in cog_load
    async def refresh_loop(self) -> None:
        await self.refresh()

    async def _load_cached(self) -> None:
        try:
            cached = await self.bot.pipeline.store.get_meta(MODELS_CACHE_KEY)
            if cached:
                lists = json.loads(cached)
                self.bot.pipeline.catalog = Catalog.from_v1_lists(lists["sd"], lists["sdxl"])
        except Exception:
            log.exception("Ignoring the cached model list")

    async def refresh(self) -> bool:
        """Replace the v1 catalog with Prodia's live lists; keep the current one if Prodia fails."""
        pipeline = self.bot.pipeline
        try:
            sd, sdxl, samplers = await self.prodia.model_lists()
            catalog = Catalog.from_v1_lists(sd, sdxl)
        except (ImagineError, ValueError) as exc:
            log.warning("Could not refresh the model list (%s); keeping %d models", exc, len(pipeline.catalog))
            return False
        if missing := set(SAMPLERS) - set(samplers):
            log.warning("Prodia no longer lists samplers %s", ", ".join(sorted(missing)))
        pipeline.catalog = catalog
        try:
            await pipeline.store.set_meta(MODELS_CACHE_KEY, json.dumps({"sd": sd, "sdxl": sdxl}))
        except Exception:
            log.exception("Could not cache the model list")
        log.info("Model list refreshed: %d models", len(catalog))
        return True


async def setup(bot: ImagineBot) -> None:
    if isinstance(bot.pipeline.prodia, ProdiaV1):
        await bot.add_cog(ModelList(bot, bot.pipeline.prodia))
