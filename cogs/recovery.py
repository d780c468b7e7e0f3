"""Backend: finish unfinished jobs and keep this process's job leases alive, every JOB_LEASE_SECONDS / 3.

The first pass (once the bot is ready) resumes this process's own past jobs; later ones take over the
jobs of processes that stopped without releasing them. Each pass first tidies the journal (`tidy_journal`):
expired interaction tokens forgotten, finished jobs and results past RETENTION_DAYS deleted.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from discord.ext import commands, tasks

from bot.pipeline import LEASE_SECONDS
from bot.recovery import renew_leases, resume_unfinished, tidy_journal

if TYPE_CHECKING:
    from bot.client import ImagineBot

log = logging.getLogger(__name__)


class Recovery(commands.Cog):
    def __init__(self, bot: ImagineBot) -> None:
        self.bot = bot

    async def cog_load(self) -> None:
        self.sweep.change_interval(seconds=self.bot.pipeline.lease / 3)
        self.sweep.start()

    async def cog_unload(self) -> None:
        self.sweep.cancel()

    @tasks.loop(seconds=LEASE_SECONDS / 3)
    async def sweep(self) -> None:
        try:
            await tidy_journal(self.bot.pipeline)  # first: a job resumed now finds its expired token gone
            await resume_unfinished(self.bot.pipeline)
            await renew_leases(self.bot.pipeline)
        except Exception:  # a failed pass must not end the loop: the next one tries again
            log.exception("Recovery pass failed")

    @sweep.before_loop
    async def _wait_until_ready(self) -> None:
        await self.bot.wait_until_ready()


async def setup(bot: ImagineBot) -> None:
    await bot.add_cog(Recovery(bot))
