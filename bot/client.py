"""The bot class: wiring. It builds the job pipeline from the resources it is handed, loads the
extensions (commands, reactions, and the backend loops: recovery, v1's model list) and syncs commands."""

from __future__ import annotations

import contextlib
import gc
import hashlib
import json
import logging
from typing import TYPE_CHECKING, Any

import discord
from discord.ext import commands

from .core.catalog import Catalog
from .core.config import Settings
from .core.prodia import create_client
from .i18n import CatalogueTranslator
from .metrics import Metrics
from .pipeline import JobPipeline
from .resources import Resources
from .tree import ImagineTree

log = logging.getLogger(__name__)

EXTENSIONS = (
    "cogs.imagine",
    "cogs.settings",
    "cogs.actions",
    "cogs.models",
    "cogs.recovery",
    "cogs.model_list",
    "cogs.help",
    "cogs.preferences",
)
COMMANDS_HASH_KEY = "command_tree_hash"


if TYPE_CHECKING:  # the mixin is typed as the commands.Bot it is always mixed into
    _BotBase = commands.Bot
else:
    _BotBase = object


class ImagineMixin(_BotBase):
    """Everything the bot is; mixed into a plain or an auto-sharded discord.py bot by `create_bot`."""

    pipeline: JobPipeline

    def __init__(self, settings: Settings, resources: Resources | None = None, **options: Any) -> None:
        intents = discord.Intents.none()
        intents.guilds = True  # guild and channel cache, guild locale
        intents.guild_reactions = True  # 🔄 on results
        intents.dm_reactions = True  # 🔄 on results in DMs
        super().__init__(
            command_prefix=commands.when_mentioned,
            intents=intents,
            allowed_mentions=discord.AllowedMentions.none(),  # a prompt with @everyone pings nobody
            help_command=None,
            tree_cls=ImagineTree,  # one error path for every app command
            **options,
        )
        self.settings = settings
        self.metrics = Metrics()  # this bot's own registry, served on METRICS_PORT (bot.health)
        self.stopping = False  # set by close(): commands arriving now are told the bot is restarting
        self._resources = resources
        self._owned = contextlib.AsyncExitStack()  # what the bot opened itself (no resources handed in)

    async def setup_hook(self) -> None:
        if self._resources is None:
            self._resources = await self._owned.enter_async_context(Resources.open(self.settings))
        resources = self._resources
        prodia = create_client(resources.session, self.settings, observer=self.metrics)
        catalog = Catalog.for_api(self.settings.prodia_api, self.settings.prodia_v2_models)
        self.pipeline = JobPipeline(self, self.settings, resources.store, prodia, catalog, metrics=self.metrics)
        await self.tree.set_translator(CatalogueTranslator())
        for extension in EXTENSIONS:
            await self.load_extension(extension)
        if self.settings.sync_commands:
            await self.sync_commands_if_changed()

    async def sync_commands_if_changed(self) -> bool:
        """Sync the global command tree only when it differs from the last one synced (a new database counts)."""
        tree = self.tree
        translator = tree.translator
        if translator is not None:  # the localizations are part of the sync: changed translations re-sync
            payload = [await command.get_translated_payload(tree, translator) for command in tree.get_commands()]
        else:
            payload = [command.to_dict(tree) for command in tree.get_commands()]
        digest = hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()
        store = self.pipeline.store
        if await store.get_meta(COMMANDS_HASH_KEY) == digest:
            log.info("Command tree unchanged; not syncing")
            return False
        synced = await tree.sync()
        await store.set_meta(COMMANDS_HASH_KEY, digest)
        log.info("Synced %d application commands", len(synced))
        return True

    def stop_accepting(self) -> None:
        """The first step of a stop: commands from now on are told the bot is restarting; no new job is taken."""
        self.stopping = True
        if hasattr(self, "pipeline"):
            self.pipeline.stop_accepting()

    async def close(self) -> None:
        if self.is_closed():
            return
        try:
            # New work is refused first (commands are told the bot is restarting), then the extensions go
            # (their loops stop), then the jobs in flight: they stay unfinished in the journal, their leases
            # released, so the next start (or another process) resumes them at once. The gateway closes last.
            self.stop_accepting()
            for extension in list(self.extensions):
                await self.unload_extension(extension)
            if hasattr(self, "pipeline"):
                await self.pipeline.close()
            await super().close()
        finally:
            await self._owned.aclose()


class ImagineBot(ImagineMixin, commands.Bot):
    """One process, one shard (Discord's default for bots in fewer than 2,500 servers)."""


class ShardedImagineBot(ImagineMixin, commands.AutoShardedBot):
    """All shards in one process (SHARD_COUNT), or some of them as one process of a cluster (SHARD_IDS)."""


def create_bot(
    settings: Settings, resources: Resources | None = None, **options: Any
) -> ImagineBot | ShardedImagineBot:
    """Build the bot on `resources` (the entry point's), or on its own if none are given; nothing touches
    the network until it starts."""
    if settings.shard_count is None:
        return ImagineBot(settings, resources, **options)
    options.setdefault("shard_count", settings.shard_count)
    options.setdefault("shard_ids", list(settings.shard_ids) if settings.shard_ids else None)
    return ShardedImagineBot(settings, resources, **options)


def freeze_startup_heap() -> None:
    """What exists once the bot is set up (modules, catalog, session) lives as long as the process: keep
    it out of the collector's full passes, which otherwise rescan it all and stall the loop (~100 ms with
    hundreds of jobs in flight). Collect first, so no garbage is frozen with it. For long-lived processes
    only (the entry point, the benchmark), not for every bot a test builds."""
    gc.collect()
    gc.freeze()
