"""The bot class: owns the one aiohttp session, the store, the Prodia client and the job limits."""

from __future__ import annotations

import asyncio
import gc
import hashlib
import json
import logging

import aiohttp
import discord
from discord.ext import commands

from .catalog import Catalog
from .config import Settings
from .errors import ImagineError
from .i18n import CatalogueTranslator
from .model_lists import SAMPLERS
from .pipeline import LEASE_SECONDS, JobPipeline
from .prodia import ProdiaClient, ProdiaV1, create_client
from .recovery import renew_leases, resume_unfinished
from .store import Store, open_store

log = logging.getLogger(__name__)

VERSION = "0.1.0"
USER_AGENT = f"ImagineBot/{VERSION} (discord.py {discord.__version__})"
EXTENSIONS = ("cogs.imagine", "cogs.settings", "cogs.reroll", "cogs.models")
COMMANDS_HASH_KEY = "command_tree_hash"
MODELS_CACHE_KEY = "models_v1"


class ImagineMixin:
    """Everything the bot is; mixed into a plain or an auto-sharded discord.py bot by `create_bot`."""

    session: aiohttp.ClientSession
    store: Store
    prodia: ProdiaClient
    pipeline: JobPipeline

    def __init__(self, settings: Settings, **options) -> None:
        intents = discord.Intents.none()
        intents.guilds = True  # guild and channel cache, guild locale
        intents.guild_reactions = True  # 🔄 on results
        intents.dm_reactions = True  # 🔄 on results in DMs
        super().__init__(
            command_prefix=commands.when_mentioned,
            intents=intents,
            allowed_mentions=discord.AllowedMentions.none(),  # a prompt with @everyone pings nobody
            help_command=None,
            **options,
        )
        self.settings = settings
        self._resumer: asyncio.Task | None = None
        self._refresher: asyncio.Task | None = None

    async def setup_hook(self) -> None:
        self.session = aiohttp.ClientSession(
            headers={"User-Agent": USER_AGENT},
            timeout=aiohttp.ClientTimeout(total=None, connect=15, sock_connect=15),
        )
        self.store = await open_store(self.settings.database_url)
        self.prodia = create_client(self.session, self.settings)
        catalog = Catalog.for_api(self.settings.prodia_api, self.settings.prodia_v2_models)
        self.pipeline = JobPipeline(self, self.settings, self.store, self.prodia, catalog)  # type: ignore[arg-type]
        await self.tree.set_translator(CatalogueTranslator())
        for extension in EXTENSIONS:
            await self.load_extension(extension)
        if self.settings.sync_commands:
            await self.sync_commands_if_changed()
        self._resumer = asyncio.create_task(self._resume_after_ready())
        if isinstance(self.prodia, ProdiaV1):
            await self._load_cached_models()
            if self.settings.model_refresh_interval > 0:
                self._refresher = asyncio.create_task(self._refresh_models_forever())
        # What exists now (modules, catalog, session) lives as long as the process: keep it out of the
        # collector's full passes, which otherwise rescan it all and stall the loop (~100 ms with hundreds
        # of jobs in flight). Collect first, so no garbage is frozen with it.
        gc.collect()
        gc.freeze()

    async def _load_cached_models(self) -> None:
        try:
            cached = await self.store.get_meta(MODELS_CACHE_KEY)
            if cached:
                lists = json.loads(cached)
                self.pipeline.catalog = Catalog.from_v1_lists(lists["sd"], lists["sdxl"])
        except Exception:
            log.exception("Ignoring the cached model list")

    async def refresh_models(self) -> bool:
        """Replace the v1 catalog with Prodia's live lists; keep the current one if Prodia fails."""
        assert isinstance(self.prodia, ProdiaV1)
        try:
            sd, sdxl, samplers = await self.prodia.model_lists()
            catalog = Catalog.from_v1_lists(sd, sdxl)
        except (ImagineError, ValueError) as exc:
            log.warning("Could not refresh the model list (%s); keeping %d models", exc, len(self.pipeline.catalog))
            return False
        if missing := set(SAMPLERS) - set(samplers):
            log.warning("Prodia no longer lists samplers %s", ", ".join(sorted(missing)))
        self.pipeline.catalog = catalog
        try:
            await self.store.set_meta(MODELS_CACHE_KEY, json.dumps({"sd": sd, "sdxl": sdxl}))
        except Exception:
            log.exception("Could not cache the model list")
        log.info("Model list refreshed: %d models", len(catalog))
        return True

    async def _refresh_models_forever(self) -> None:
        while True:
            await self.refresh_models()
            await asyncio.sleep(self.settings.model_refresh_interval)

    async def _resume_after_ready(self) -> None:
        await self.wait_until_ready()
        while True:  # the first pass resumes our own past jobs; later ones those of stopped processes
            await resume_unfinished(self.pipeline)
            await renew_leases(self.pipeline)
            await asyncio.sleep(LEASE_SECONDS / 3)

    async def sync_commands_if_changed(self) -> bool:
        """Sync the global command tree only when it differs from the last one synced (a new database counts)."""
        translator = self.tree.translator
        if translator is not None:  # the localizations are part of the sync: changed translations re-sync
            payload = [
                await command.get_translated_payload(self.tree, translator) for command in self.tree.get_commands()
            ]
        else:
            payload = [command.to_dict(self.tree) for command in self.tree.get_commands()]
        digest = hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()
        if await self.store.get_meta(COMMANDS_HASH_KEY) == digest:
            log.info("Command tree unchanged; not syncing")
            return False
        synced = await self.tree.sync()
        await self.store.set_meta(COMMANDS_HASH_KEY, digest)
        log.info("Synced %d application commands", len(synced))
        return True

    async def close(self) -> None:
        if self.is_closed():
            return
        # Jobs in flight stay unfinished in the journal: the next start resumes them.
        pending = [task for task in (self._resumer, self._refresher) if task]
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        if hasattr(self, "pipeline"):
            await self.pipeline.close()
        try:
            await super().close()
        finally:
            if hasattr(self, "session"):
                await self.session.close()
            if hasattr(self, "store"):
                await self.store.close()


class ImagineBot(ImagineMixin, commands.Bot):
    """One process, one shard (Discord's default for bots in fewer than 2,500 servers)."""


class ShardedImagineBot(ImagineMixin, commands.AutoShardedBot):
    """All shards in one process (SHARD_COUNT), or some of them as one process of a cluster (SHARD_IDS)."""


def create_bot(settings: Settings, **options) -> ImagineBot:
    """Build the bot; nothing touches the network until it starts."""
    if settings.shard_count is None:
        return ImagineBot(settings, **options)
    options.setdefault("shard_count", settings.shard_count)
    options.setdefault("shard_ids", list(settings.shard_ids) if settings.shard_ids else None)
    return ShardedImagineBot(settings, **options)  # type: ignore[return-value]
