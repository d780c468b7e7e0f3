"""Finishing unfinished jobs after a restart (or another process's death): the journal's other end.

Each pass takes the unfinished jobs of this process's guilds that no live process holds, rebuilds
their `Origin` and `Reply` from the journal, and hands them back to the pipeline's `run`.
"""

from __future__ import annotations

import asyncio
import logging
import time

import discord

from .core.errors import BadResponse, ImageGone, ImagineError
from .core.images import prepare_input
from .core.messages import error_text, language_of
from .core.origin import DEFAULT_UPLOAD_LIMIT, JobKind, JobState, Origin
from .core.store import GuildSettings, JobRecord, StoreError
from .delivery import TOKEN_LIFETIME, Reply, result_image, uploaded_image
from .pipeline import JobPipeline, Journal, content_policy, prepare_job

log = logging.getLogger(__name__)

_resuming: set[asyncio.Task[None]] = set()  # references until each ends; the pipeline tracks them too


async def resume_unfinished(pipeline: JobPipeline) -> list[asyncio.Task[None]]:
    """Start finishing every unfinished job of this process's guilds that no live process holds."""
    client = pipeline.client
    guild_ids = [guild.id for guild in client.guilds]
    try:
        records = await pipeline.store.unfinished_jobs(guild_ids, include_dms=handles_dms(client))
    except Exception:
        log.exception("Could not read the job journal; unfinished jobs wait for the next pass")
        return []
    running = set(pipeline.running.values())
    taken = []
    for record in records:
        if record.id in running:
            continue
        try:
            if await pipeline.store.claim_job(record.id, pipeline.instance_id, lease=pipeline.lease):
                taken.append(record)
        except Exception:
            log.exception("Could not claim job %s", record.id)
    if taken:
        log.info("Resuming %d unfinished jobs", len(taken))
    tasks = [asyncio.create_task(resume(pipeline, record)) for record in taken]
    for task in tasks:
        _resuming.add(task)
        task.add_done_callback(_resuming.discard)
    return tasks


async def renew_leases(pipeline: JobPipeline) -> None:
    for job_id in list(pipeline.running.values()):
        try:
            await pipeline.store.claim_job(job_id, pipeline.instance_id, lease=pipeline.lease)
        except Exception:
            log.exception("Could not renew the lease of job %s", job_id)
    await pipeline.renew_places()  # their reservations and Prodia slots (PostgreSQL)


PURGE_BATCH = 500  # rows one DELETE removes: short statements that never hold the database for long
PURGE_BATCHES = 20  # DELETEs of each table per pass; a larger backlog is worked off over the next passes


async def tidy_journal(pipeline: JobPipeline) -> None:
    """Forget the interaction tokens that have expired, delete the finished jobs and the results older than
    RETENTION_DAYS, and leave no old copy of either in the database's files. Each recovery pass, before resuming."""
    store = pipeline.store
    try:
        await store.forget_interaction_tokens(time.time() - TOKEN_LIFETIME)
        if days := pipeline.settings.retention_days:
            before = time.time() - days * 86400
            for purge in (store.purge_jobs, store.purge_results):
                for _ in range(PURGE_BATCHES):
                    if await purge(before, limit=PURGE_BATCH) < PURGE_BATCH:
                        break
        await store.checkpoint()
    except Exception:
        log.exception("Could not tidy the job journal; the next pass tries again")


def handles_dms(client: discord.Client) -> bool:
    """DMs arrive on shard 0: only the process running it resumes DM jobs."""
    return 0 in (getattr(client, "shard_ids", None) or [0])


async def resume(pipeline: JobPipeline, record: JobRecord) -> None:
    # A job Prodia gave an id (v1, v2 async) is picked up again by it, never sent again; one without (not yet
    # accepted, or v2 sync) is sent again within what the retry policy leaves it: `attempts` counts its sends.
    # (`attempts` used to count resumptions, given up after three, silently and billed each time.)
    journal = Journal(pipeline.store, record.id, prodia_job_id=record.prodia_job_id, attempts=record.attempts)
    client = pipeline.client
    channel = client.get_partial_messageable(record.channel_id, guild_id=record.guild_id)
    webhook = None
    if record.interaction_token and record.application_id:
        webhook = discord.Webhook.partial(record.application_id, record.interaction_token, client=client)
    reply = Reply(
        channel,
        webhook=webhook,
        token_created_at=record.interaction_created_at,
        message=channel.get_partial_message(record.message_id) if record.message_id else None,
        reference=channel.get_partial_message(record.reply_to) if record.reply_to else None,
    )
    origin = await origin_of(client, record, await settings_of(pipeline, record.guild_id))
    try:
        image = None
        if origin.kind in (JobKind.VARY, JobKind.UPSCALE) and record.reply_to:  # its input: the result, read again
            image = await result_image(channel.get_partial_message(record.reply_to), origin.reply_image)
        elif record.input_url:  # /imagine image: the user's upload, read again
            image = await asyncio.to_thread(prepare_input, await uploaded_image(client, record.input_url))
        job = prepare_job(pipeline.catalog, origin.kind, record.request, image)
    except ImagineError as exc:  # the image it works on is gone, or its model changed: it cannot go on
        if isinstance(exc, BadResponse):  # its upload no longer reads as the image it was when accepted
            exc = ImageGone(f"input of job {record.id}: {exc}")
        log.warning("Job %s cannot be resumed: %r", record.id, exc)
        try:
            await reply.edit(content=error_text(exc, origin.locale))
        except discord.HTTPException as edit_error:
            log.warning("Could not say so: %s", edit_error)
        await journal.update(state=JobState.FAILED, error=exc.key)
        return
    await pipeline.run(job, reply, origin, journal)


async def settings_of(pipeline: JobPipeline, guild_id: int | None) -> GuildSettings:
    """The server's settings now; the defaults (the safest content policy among them) if they cannot be read."""
    if guild_id is None:
        return GuildSettings()
    try:
        return await pipeline.store.guild_settings(guild_id, allow_stale=True)
    except StoreError as exc:
        log.warning("Could not read the settings of guild %s (%s); resuming with the defaults", guild_id, exc)
        return GuildSettings()


async def origin_of(client: discord.Client, record: JobRecord, settings: GuildSettings) -> Origin:
    guild = client.get_guild(record.guild_id) if record.guild_id else None
    try:
        user_name = (await client.fetch_user(record.user_id)).display_name
    except discord.HTTPException:
        log.warning("Requester of job %s is unknown; resuming anyway", record.id)
        user_name = ""
    return Origin(
        kind=JobKind(record.kind),
        user_id=record.user_id,
        channel_id=record.channel_id,
        guild_id=record.guild_id,
        # The language it was accepted in; a job journaled before that was kept: the server's locale, as then.
        locale=record.locale or language_of(guild.preferred_locale.value if guild else None),
        started_at=record.interaction_created_at or record.created_at,
        upload_limit=guild.filesize_limit if guild else DEFAULT_UPLOAD_LIMIT,
        content_policy=content_policy(settings, client.get_channel(record.channel_id)),
        user_name=user_name,
        interaction_token=record.interaction_token,
        application_id=record.application_id,
        interaction_created_at=record.interaction_created_at,
        reply_to=record.reply_to,
        reply_image=record.request.get("reply_image", 0),
        input_url=record.input_url,
    )
