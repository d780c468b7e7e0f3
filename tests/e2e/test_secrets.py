"""Secrets stay put, old data goes: interaction tokens leave the journal (and the SQLite files) when a job ends
or its 15 minutes are up, and finished jobs and results go after RETENTION_DAYS."""

from __future__ import annotations

import dataclasses
import io
import logging
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.logs import setup_logging
from bot.recovery import tidy_journal
from bot.render import REROLL_EMOJI
from devtools.local_prodia import Fault
from tests.plugins.discord_world import DISCORD_TOKEN, PRODIA_KEY, results_in

# Short settles: a bot waiting on a slow Prodia is "parked" and the test moves the clock itself.
pytestmark = pytest.mark.simcord(settle_timeout=0.5)

EXPIRED = 16 * 60  # seconds: an interaction older than its token's 15 minutes
DAY = 86400


@pytest.fixture
def bot_env() -> dict[str, str]:
    return {"PRODIA_POLL_INTERVAL": "2", "PRODIA_TIMEOUT": "3600"}


async def start_imagine(world, **options):
    """/imagine, and its reply while the bot may still wait on Prodia (simcord then reports it not settled)."""
    try:
        await world.alice.slash(world.channel, "imagine", **options)
    except TimeoutError:
        pass
    return world.channel.history()[-1]


async def only_job(world):
    rows = await world.bot.pipeline.store._query("SELECT id FROM jobs")
    assert len(rows) == 1
    return await world.bot.pipeline.store.get_job(rows[0]["id"])


def interaction_tokens(env) -> set[str]:
    """The interaction tokens the bot used: the third part of `/webhooks/{application id}/{token}/...`."""
    return {r.path.split("/")[3] for r in env.http_requests if r.path.startswith("/webhooks/")}


def database_files(database_url: str) -> bytes:
    """Every byte of the SQLite database and its write-ahead log, as they lie on disk."""
    path = Path(database_url.removeprefix("sqlite:///"))
    return b"".join(file.read_bytes() for file in (path, path.with_name(path.name + "-wal")) if file.exists())


async def test_a_delivered_jobs_token_is_left_nowhere_in_the_database_files(world, prodia, api, database_url):
    await world.alice.slash(world.channel, "imagine", prompt="a harbour")
    await world.env.advance_time(5)
    (token,) = interaction_tokens(world.env)
    job = await only_job(world)
    assert (job.state, job.interaction_token) == ("delivered", None)
    assert token.encode() in database_files(database_url)  # an old copy of the row, in the write-ahead log

    await tidy_journal(world.bot.pipeline)  # what each recovery pass does first

    assert token.encode() not in database_files(database_url)


async def test_an_unfinished_jobs_token_is_forgotten_once_expired_and_its_reply_edited_through_the_channel(
    world, prodia, api
):
    prodia.add_fault(Fault("slow", delay=600, path="/v1/sd/generate" if api == "v1" else "/v2/job/async"))
    reply = await start_imagine(world, prompt="a harbour", seed=9)
    store = world.bot.pipeline.store
    job = await only_job(world)
    assert job.interaction_token
    await store._query("UPDATE jobs SET interaction_created_at = ? WHERE id = ?", (time.time() - EXPIRED, job.id))

    await tidy_journal(world.bot.pipeline)

    job = await only_job(world)
    assert (job.state, job.interaction_token) == ("accepted", None)
    before = len(world.env.http_requests)
    await world.restart()
    await world.env.advance_time(5)
    (delivered,) = results_in(world.channel)
    assert delivered.id == reply.id
    assert (await only_job(world)).state == "delivered"
    resumed = world.env.http_requests[before:]
    assert not [r for r in resumed if r.path.startswith(("/webhooks/", "/interactions/"))]
    assert [r for r in resumed if r.method == "PATCH" and r.path == f"/channels/{world.channel.id}/messages/{reply.id}"]


async def test_each_recovery_pass_forgets_expired_tokens(world, prodia, api):
    # A job of a server this bot is not in, so no pass resumes (and so finishes) it: only the forgetting acts.
    store = world.bot.pipeline.store
    await world.alice.slash(world.channel, "imagine", prompt="a harbour")
    job = await only_job(world)
    stranger = "elsewhere"
    now = time.time()
    await store._query(
        "INSERT INTO jobs (id, kind, guild_id, channel_id, user_id, request, state, interaction_token, application_id,"
        " interaction_created_at, created_at, updated_at) SELECT ?, kind, ?, channel_id, user_id, request, 'accepted',"
        " 'expired-token', application_id, ?, ?, ? FROM jobs WHERE id = ?",
        (stranger, 1, now - EXPIRED, now, now, job.id),
    )

    await world.restart()  # its first recovery pass, as every 40 s after

    assert (await world.bot.pipeline.store.get_job(stranger)).interaction_token is None


async def test_finished_jobs_and_results_past_the_retention_are_deleted_and_their_reroll_does_nothing(
    world, prodia, api
):
    result = await world.alice.slash(world.channel, "imagine", prompt="a harbour")
    await world.env.advance_time(5)
    message = result.response
    store = world.bot.pipeline.store
    await store._query("UPDATE jobs SET created_at = created_at - ?", (31 * DAY,))
    await store._query("UPDATE results SET created_at = created_at - ?", (31 * DAY,))

    await tidy_journal(world.bot.pipeline)

    assert await store._query("SELECT id FROM jobs") == []
    assert await store.get_result(message.id) is None
    posted = len(world.channel.history())
    await world.alice.react(message, REROLL_EMOJI)
    assert len(world.channel.history()) == posted  # 🔄 on a purged result: nothing to reroll from
    assert len(prodia.image_jobs) == 1


class TestRetentionOff:
    @pytest.fixture
    def bot_env(self) -> dict[str, str]:
        return {"RETENTION_DAYS": "0"}

    @pytest.mark.parametrize("api", ["v2"])
    async def test_zero_retention_days_keeps_everything(self, world, prodia, api):
        result = await world.alice.slash(world.channel, "imagine", prompt="a harbour")
        store = world.bot.pipeline.store
        await store._query("UPDATE jobs SET created_at = created_at - ?", (3650 * DAY,))
        await store._query("UPDATE results SET created_at = created_at - ?", (3650 * DAY,))
        await tidy_journal(world.bot.pipeline)
        assert len(await store._query("SELECT id FROM jobs")) == 1
        assert await store.get_result(result.response.id) is not None


@pytest.fixture(params=[False, True], ids=["plain", "json"])
def deployed_log(world, monkeypatch, request) -> Iterator[io.StringIO]:
    """The bot's own logging set up in this process as `python -m bot` sets it up (plain lines, then JSON lines):
    what it writes to stderr, read back. The test run's logging is put back afterwards."""
    root, sqlite_log = logging.getLogger(), logging.getLogger("aiosqlite")
    levels = (root.level, sqlite_log.level)
    handlers = {handler: handler.filters[:] for handler in root.handlers}  # it adds its filter to each
    stderr = io.StringIO()
    with monkeypatch.context() as patched:
        patched.setattr(sys, "stderr", stderr)  # the stream its handler writes to
        setup_logging(dataclasses.replace(world.bot.settings, log_json=request.param))
    yield stderr
    root.handlers[:] = handlers
    for handler, filters in handlers.items():
        handler.filters[:] = filters
    root.setLevel(levels[0])
    sqlite_log.setLevel(levels[1])


WEBHOOK_TOKEN = "Tq3-CANARY_webhook.token"  # the characters Discord's tokens use


@pytest.mark.parametrize("api", ["v1"])
async def test_a_webhook_token_typed_into_a_prompt_is_scrubbed_from_the_log(world, prodia, api, deployed_log):
    # The job's log line carries its prompt (LOG_PROMPTS), and so anything a member pastes into it: a webhook URL
    # with its token lets anyone post as that webhook.
    prompt = f"a harbour, see https://discord.com/api/webhooks/1234567890/{WEBHOOK_TOKEN}"
    await world.alice.slash(world.channel, "imagine", prompt=prompt)
    await world.env.advance_time(5)
    assert results_in(world.channel)
    log = deployed_log.getvalue()
    assert "/webhooks/1234567890/<redacted>" in log  # the job's line, its prompt scrubbed
    assert "CANARY" not in log
    assert DISCORD_TOKEN not in log and PRODIA_KEY not in log
