"""The bot class: owns the one aiohttp session, the store, the Prodia client and the job limits."""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import time
import uuid

import aiohttp
import discord
from discord.ext import commands

from .catalog import Catalog
from .config import Settings
from .i18n import CatalogueTranslator
from .jobs import JobQueue, UserLimits
from .prodia import ProdiaClient, create_client
from .resume import LEASE_SECONDS, renew_leases, resume_jobs
from .store import Store, open_store

log = logging.getLogger(__name__)

VERSION = "0.1.0"
USER_AGENT = f"ImagineBot/{VERSION} (discord.py {discord.__version__})"
EXTENSIONS = ("cogs.imagine", "cogs.settings", "cogs.reroll")
COMMANDS_HASH_KEY = "command_tree_hash"


class ImagineBot(commands.Bot):
    session: aiohttp.ClientSession
    store: Store
    prodia: ProdiaClient

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
        self.catalog = Catalog.for_api(settings.prodia_api)
        self.queue = JobQueue(settings.max_concurrent_jobs, settings.queue_size)
        self.user_limits = UserLimits(settings.user_max_jobs, settings.user_cooldown)
        self.running_jobs: dict[asyncio.Task, str] = {}  # task -> journal id
        self.instance_id = uuid.uuid4().hex  # names this process in job leases
        self.started_at = time.time()
        self._resumer: asyncio.Task | None = None

    async def setup_hook(self) -> None:
        self.session = aiohttp.ClientSession(
            headers={"User-Agent": USER_AGENT},
            timeout=aiohttp.ClientTimeout(total=None, connect=15, sock_connect=15),
        )
        self.store = await open_store(self.settings.database_url)
        self.prodia = create_client(self.session, self.settings)
        await self.tree.set_translator(CatalogueTranslator())
        for extension in EXTENSIONS:
            await self.load_extension(extension)
        if self.settings.sync_commands:
            await self.sync_commands_if_changed()
        self._resumer = asyncio.create_task(self._resume_after_ready())

    async def _resume_after_ready(self) -> None:
        await self.wait_until_ready()
        while True:  # the first pass resumes our own past jobs; later ones those of stopped processes
            await resume_jobs(self)
            await renew_leases(self)
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
        pending = [*self.running_jobs, *([self._resumer] if self._resumer else [])]
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        if hasattr(self, "store"):
            try:
                await self.store.release_jobs(self.instance_id)
            except Exception:
                log.exception("Could not release job leases; they expire on their own")
        try:
            await super().close()
        finally:
            if hasattr(self, "session"):
                await self.session.close()
            if hasattr(self, "store"):
                await self.store.close()


def create_bot(settings: Settings, **options) -> ImagineBot:
    """Build the bot; nothing touches the network until it starts."""
    return ImagineBot(settings, **options)
