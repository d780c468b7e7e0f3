"""The job journal's two ends: recording an accepted job, and finishing unfinished ones after a restart."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from dataclasses import asdict
from typing import TYPE_CHECKING

import discord

from .catalog import PreparedJob
from .delivery import DEFAULT_UPLOAD_LIMIT, Journal, Reply, run_job
from .request import GenerationRequest
from .store import JobRecord

if TYPE_CHECKING:
    from .client import ImagineBot

log = logging.getLogger(__name__)

# A job is leased to the process running it and renewed while it runs; a process that dies lets
# its leases lapse, and a live one takes the jobs over.
LEASE_SECONDS = 120.0
MAX_ATTEMPTS = 3  # resumptions of one job before it is given up
_resuming: set[asyncio.Task] = set()


async def journal_job(
    bot: ImagineBot,
    job: PreparedJob,
    *,
    kind: str,
    channel_id: int,
    guild_id: int | None,
    user_id: int,
    interaction: discord.Interaction | None = None,
    message_id: int | None = None,
    reply_to: int | None = None,
) -> Journal:
    """Record an accepted job (seed fixed) before it is submitted, leased to this process."""
    now = time.time()
    record = JobRecord(
        id=uuid.uuid4().hex,
        kind=kind,
        guild_id=guild_id,
        channel_id=channel_id,
        user_id=user_id,
        request=asdict(job.request),
        state="accepted",
        interaction_token=interaction.token if interaction else None,
        application_id=interaction.application_id if interaction else None,
        interaction_created_at=interaction.created_at.timestamp() if interaction else None,
        message_id=message_id,
        reply_to=reply_to,
        prodia_job_id=None,
        error=None,
        created_at=now,
        updated_at=now,
    )
    bot.running_jobs[asyncio.current_task()] = record.id  # type: ignore[index]  # so no sweep resumes it too
    try:
        await bot.store.add_job(record)
        await bot.store.claim_job(record.id, bot.instance_id, lease=LEASE_SECONDS)
    except Exception:  # the user still gets the image; only a restart would lose it
        log.exception("Could not journal a new job")
    return Journal(bot, record.id)


async def resume_jobs(bot: ImagineBot) -> list[asyncio.Task]:
    """Start finishing every unfinished job of this process's guilds that no live process holds."""
    guild_ids = [guild.id for guild in bot.guilds]
    try:
        records = await bot.store.unfinished_jobs(guild_ids, include_dms=bot.handles_dms)
    except Exception:
        log.exception("Could not read the job journal; unfinished jobs wait for the next pass")
        return []
    running = set(bot.running_jobs.values())
    taken = []
    for record in records:
        if record.id in running:
            continue
        try:
            if await bot.store.claim_job(record.id, bot.instance_id, lease=LEASE_SECONDS):
                taken.append(record)
        except Exception:
            log.exception("Could not claim job %s", record.id)
    if taken:
        log.info("Resuming %d unfinished jobs", len(taken))
    tasks = [asyncio.create_task(resume_job(bot, record)) for record in taken]
    for task in tasks:
        _resuming.add(task)  # keep a reference until it ends; run_job also tracks it for close()
        task.add_done_callback(_resuming.discard)
    return tasks


async def renew_leases(bot: ImagineBot) -> None:
    for job_id in list(bot.running_jobs.values()):
        try:
            await bot.store.claim_job(job_id, bot.instance_id, lease=LEASE_SECONDS)
        except Exception:
            log.exception("Could not renew the lease of job %s", job_id)


async def resume_job(bot: ImagineBot, record: JobRecord) -> None:
    journal = Journal(bot, record.id)
    if record.attempts >= MAX_ATTEMPTS:
        # Discord kept refusing it (channel gone, no access): stop paying Prodia for it.
        log.warning("Giving up job %s after %d attempts", record.id, record.attempts)
        await journal.update(state="failed", error="error.undeliverable")
        return
    await journal.update(attempts=record.attempts + 1)
    job = bot.catalog.prepare(GenerationRequest(**record.request))
    channel = bot.get_partial_messageable(record.channel_id, guild_id=record.guild_id)
    webhook = None
    if record.interaction_token and record.application_id:
        webhook = discord.Webhook.partial(record.application_id, record.interaction_token, client=bot)
    reply = Reply(
        channel,
        webhook=webhook,
        token_created_at=record.interaction_created_at,
        message=channel.get_partial_message(record.message_id) if record.message_id else None,
        reference=channel.get_partial_message(record.reply_to) if record.reply_to else None,
    )
    guild = bot.get_guild(record.guild_id) if record.guild_id else None
    try:
        requester = await bot.fetch_user(record.user_id)
    except discord.HTTPException:
        log.warning("Requester of job %s is unknown; resuming anyway", record.id)
        requester = discord.Object(record.user_id)  # type: ignore[assignment]
    await run_job(
        bot,
        job,
        reply,
        journal=journal,
        requester=requester,  # type: ignore[arg-type]
        guild_id=record.guild_id,
        locale=guild.preferred_locale.value if guild else None,
        started_at=record.interaction_created_at or record.created_at,
        upload_limit=guild.filesize_limit if guild else DEFAULT_UPLOAD_LIMIT,
        # A job Prodia gave an id (v1, v2 async) is picked up again by it; otherwise it is sent again.
        prodia_job_id=record.prodia_job_id,
    )
