"""Nothing lost: jobs survive restarts at every stage, Discord-side faults still end in a delivered reply."""

from __future__ import annotations

import itertools
import logging
import sqlite3
import time
from collections.abc import Iterator, Sequence
from types import SimpleNamespace
from typing import Any

import discord
import pytest

from bot.core.origin import JobKind, Origin
from bot.core.request import GenerationRequest
from bot.core.store import SQLiteStore, StoreError
from bot.delivery import TOKEN_LIFETIME, Reply
from devtools.local_prodia import Fault
from tests.plugins.discord_world import results_in

# Short settles: a bot waiting on a slow Prodia is "parked" and the test moves the clock itself.
pytestmark = pytest.mark.simcord(settle_timeout=0.5)


@pytest.fixture
def bot_env() -> dict[str, str]:
    return {"PRODIA_POLL_INTERVAL": "2", "PRODIA_TIMEOUT": "3600"}


async def start_imagine(world, **options) -> discord.Message:
    """Invoke /imagine and return its reply while the bot may still be waiting on Prodia's answer
    (simcord reports an HTTP call still in flight as "not settled": that is the point here)."""
    try:
        await world.alice.slash(world.channel, "imagine", **options)
    except TimeoutError:
        pass
    return world.channel.history()[-1]  # oldest first


async def pass_time(world, seconds: float, step: float = 30) -> None:
    """Move the clock `seconds` on, `step` at a time: each step settles within the short settle timeout."""
    for _ in range(int(seconds // step)):
        await world.env.advance_time(step)


async def only_job(world):
    rows = await world.bot.pipeline.store._query("SELECT id FROM jobs")
    assert len(rows) == 1
    return await world.bot.pipeline.store.get_job(rows[0]["id"])


async def test_restart_before_submit_submits_again_and_delivers_once(world, prodia, api):
    prodia.add_fault(Fault("slow", delay=600, path="/v1/sd/generate" if api == "v1" else "/v2/job/async"))
    reply = await start_imagine(world, prompt="a harbour", seed=9)
    assert (await only_job(world)).state == "accepted"

    await world.restart()
    await world.env.advance_time(5)

    job = await only_job(world)
    assert job.state == "delivered"
    assert job.message_id == reply.id
    (delivered,) = results_in(world.channel)
    assert delivered.id == reply.id  # the original reply was edited, not a new message
    submits = prodia.image_posts()
    assert len(submits) == 2
    assert submits[0].json == submits[1].json  # the same seed: the same image


async def test_restart_after_submit_polls_the_same_job(world, prodia, api):
    # v1 jobs, and v2 jobs run async (PRODIA_V2_MODE=auto, the default), have an id to pick up again.
    prodia.job_duration = 3600  # running until finished below
    await world.alice.slash(world.channel, "imagine", prompt="a harbour")
    await world.env.advance_time(5)  # polled: still running
    job = await only_job(world)
    assert (job.state, job.prodia_job_id) == ("submitted", next(iter(prodia.image_jobs)))

    await world.restart()
    prodia.finish_all()
    await world.env.advance_time(10)

    assert (await only_job(world)).state == "delivered"
    assert len(results_in(world.channel)) == 1
    assert len(prodia.image_posts()) == 1
    assert prodia.image_jobs[job.prodia_job_id].polls >= 2


async def test_restart_after_the_result_but_before_delivery(world, prodia, api):
    world.env.inject_error("PATCH", "/webhooks/*", status=403, code=50013, message="Missing Permissions", times=None)
    world.env.inject_error(
        "*", "/channels/*/messages*", status=403, code=50013, message="Missing Permissions", times=None
    )
    result = await world.alice.slash(world.channel, "imagine", prompt="a harbour", seed=5)
    await world.env.advance_time(5)
    assert (await only_job(world)).state == "generated"
    first_image = next(iter(prodia.image_jobs.values())).image
    assert world.env.errors == []  # Discord's refusals are the journal's to retry, not errors

    world.env.backend.faults.clear()  # Discord accepts messages again
    await world.restart()
    await world.env.advance_time(5)

    assert (await only_job(world)).state == "delivered"
    (delivered,) = results_in(world.channel)
    assert delivered.id == result.response.id
    assert await delivered.attachments[0].read() == first_image


def reply_edits(world, reply_id: int) -> list[str]:
    """How each edit of a reply went out, in order: "token" (the interaction's webhook) or "channel"."""
    by_token = f"/webhooks/{world.bot.application_id}/"
    by_channel = f"/channels/{world.channel.id}/messages/{reply_id}"
    return [
        "token" if r.path.startswith(by_token) else "channel"
        for r in world.env.http_requests
        if r.method == "PATCH" and (r.path.startswith(by_token) or r.path == by_channel)
    ]


async def test_an_expired_token_falls_back_to_the_channel(world, prodia, api):
    # What Discord answers a request on an interaction token past its 15 minutes (not 404: that is a deleted reply).
    world.env.inject_error("PATCH", "/webhooks/*", status=401, code=50027, message="Invalid Webhook Token", times=None)
    result = await world.alice.slash(world.channel, "imagine", prompt="a slow harbour")
    await world.env.advance_time(5)

    (delivered,) = results_in(world.channel)
    assert delivered.id == result.response.message.id
    assert delivered.embeds[0].title == "a slow harbour"
    assert (await only_job(world)).state == "delivered"
    edits = reply_edits(world, delivered.id)
    assert edits[0] == "token" and edits[-1] == "channel"  # refused once, then by the bot's own token
    assert edits.count("token") == 1  # the dead token is not tried again
    assert world.env.errors == []


@pytest.mark.usefixtures("tokens_expire_as_on_discord")
@pytest.mark.parametrize("api", ["v1"])
@pytest.mark.parametrize("bot_env", [{"PRODIA_POLL_INTERVAL": "30", "PRODIA_TIMEOUT": "3600"}])  # few polls
async def test_a_reply_older_than_its_token_is_edited_through_the_channel_without_trying_the_token(world, prodia, api):
    prodia.job_duration = 3600
    reply = await start_imagine(world, prompt="a slow harbour")
    await pass_time(world, TOKEN_LIFETIME)  # the interaction's token has expired meanwhile
    edits_before = len(reply_edits(world, reply.id))

    prodia.finish_all()
    await pass_time(world, 120)  # to the next poll

    (delivered,) = results_in(world.channel)
    assert delivered.id == reply.id
    late = reply_edits(world, reply.id)[edits_before:]  # "Fetching the image", then the result
    assert late and set(late) == {"channel"}  # by the channel at once: the dead token is not tried first
    assert world.env.errors == []


SUBMIT = {"v1": "/v1/sd/generate", "v2": "/v2/job/async"}


@pytest.mark.usefixtures("wall_clock_on_discord_time")  # the journal's token expiry and Discord's agree
async def test_a_job_resumed_while_its_token_lives_edits_its_reply_by_the_token(world, prodia, api):
    prodia.add_fault(Fault("slow", delay=600, path=SUBMIT[api]))
    reply = await start_imagine(world, prompt="a harbour", seed=9)
    edits_before = len(reply_edits(world, reply.id))

    await world.restart()
    await world.env.advance_time(5)

    (delivered,) = results_in(world.channel)
    assert delivered.id == reply.id
    resumed = reply_edits(world, reply.id)[edits_before:]
    assert resumed and set(resumed) == {"token"}  # as a reply to the interaction, not through the channel


@pytest.mark.parametrize("api", ["v1"])  # its image is downloaded: a fault can make it large
async def test_a_resumed_job_fits_its_image_to_the_servers_upload_limit(world, prodia, api):
    prodia.add_fault(Fault("slow", delay=600, path=SUBMIT[api]))
    reply = await start_imagine(world, prompt="a harbour")
    limit = world.bot.get_guild(world.guild.id).filesize_limit  # 10 MiB: a server without boosts
    prodia.add_fault(Fault("image_huge", size=limit + 2**20, path="/images/*"))  # a whole PNG, over it

    await world.restart()
    await world.env.advance_time(5)

    (delivered,) = results_in(world.channel)
    assert delivered.id == reply.id
    attachment = delivered.attachments[0]
    assert attachment.filename.endswith(".jpg")  # re-encoded to fit
    assert len(await attachment.read()) <= limit


def result_edits(world, reply_id: int) -> int:
    """How often the result (an embed) was put into the reply."""
    return sum(
        1
        for r in world.env.http_requests
        if r.method == "PATCH"
        and r.path.endswith((f"/messages/{reply_id}", "/messages/@original"))
        and (r.json or {}).get("embeds")
    )


@pytest.mark.parametrize("bot_env", [{"PRODIA_POLL_INTERVAL": "30", "PRODIA_TIMEOUT": "3600"}])  # few polls
async def test_a_recovery_pass_leaves_a_job_running_here_alone(world, prodia, api):
    prodia.job_duration = 3600  # until it is finished below, past three recovery passes (every 40 s)
    reply = await start_imagine(world, prompt="a harbour")
    await pass_time(world, 150)
    prodia.finish_all()
    await pass_time(world, 120)  # to its next poll

    (delivered,) = results_in(world.channel)
    assert delivered.id == reply.id
    assert result_edits(world, reply.id) == 1  # run once: no pass took it up a second time
    assert sum(r.path == SUBMIT[api] for r in prodia.requests) == 1


@pytest.mark.usefixtures("wall_clock_on_discord_time")  # leases are kept in wall-clock seconds
@pytest.mark.parametrize("bot_env", [{"PRODIA_POLL_INTERVAL": "30", "PRODIA_TIMEOUT": "3600"}])  # few polls
async def test_a_running_jobs_lease_is_renewed_so_no_other_process_takes_it(world, prodia, api):
    prodia.job_duration = 600
    await start_imagine(world, prompt="a harbour")
    job = await only_job(world)
    await pass_time(world, 300)  # past its first lease (JOB_LEASE_SECONDS, 120 s)

    assert (await only_job(world)).state == "submitted"  # still running here
    assert not await world.bot.pipeline.store.claim_job(job.id, "another process", lease=120)


async def test_reply_deleted_while_generating_posts_a_new_message(world, prodia, api):
    # What Discord answers for every edit once someone deleted the reply.
    for pattern in ("/webhooks/*", "/channels/*/messages/*"):
        world.env.inject_error("PATCH", pattern, status=404, code=10008, message="Unknown Message", times=None)
    result = await world.alice.slash(world.channel, "imagine", prompt="a harbour")
    await world.env.advance_time(5)

    (delivered,) = results_in(world.channel)
    assert delivered.id != result.response.message.id
    assert delivered.embeds[0].title == "a harbour"
    assert (await only_job(world)).message_id == delivered.id
    assert (await only_job(world)).state == "delivered"
    assert world.env.errors == []  # both 404s are handled: the reply is posted anew


async def test_no_permission_to_react_is_said_in_text(world, prodia, api):
    world.env.inject_error("PUT", "/channels/*/messages/*/reactions/*", status=403, code=50013, times=None)
    result = await world.alice.slash(world.channel, "imagine", prompt="a harbour")
    await world.env.advance_time(5)
    message = results_in(world.channel)[0]
    assert "React with 🔄 to reroll" in message.content
    assert message.id == result.response.id


async def test_a_failing_store_does_not_lose_the_reply(world, prodia, api, monkeypatch):
    store = world.bot.pipeline.store
    await store.guild_settings(world.guild.id)  # cached, as after any request: this server's limits need no query

    async def broken(*args, **kwargs):
        raise StoreError("database is locked")

    for name in ("add_job", "update_job", "claim_job", "save_result", "_load_settings"):
        monkeypatch.setattr(store, name, broken)
    await world.alice.slash(world.channel, "imagine", prompt="a harbour")
    await world.env.advance_time(5)
    assert results_in(world.channel)[0].embeds[0].title == "a harbour"
    assert world.env.errors == []  # each failing write is logged, none raised


class TestDatabaseLockedAtStart:
    """Another process holds the new SQLite database as the bot opens it (say, it is creating it too): switching it
    to WAL is refused with "database is locked", and the bot tries again rather than fail to start."""

    @pytest.fixture
    def database_url(self, tmp_path, monkeypatch) -> Iterator[str]:
        path = tmp_path / "imagine.sqlite3"
        other = sqlite3.connect(path, isolation_level=None)  # the other process
        other.execute("BEGIN EXCLUSIVE")  # a new file, rollback journal: no one else may even read it
        query = SQLiteStore._query

        async def until_refused(store: SQLiteStore, sql: str, args: Sequence[Any] = ()) -> list[Any]:
            if sql.startswith("PRAGMA busy_timeout"):  # refused at once, as in a race on opening the new file
                sql = "PRAGMA busy_timeout = 0"
            try:
                return await query(store, sql, args)
            except StoreError as exc:
                if "locked" in str(exc) and other.in_transaction:
                    other.execute("ROLLBACK")  # the other process is done once the bot's first try was refused
                raise

        monkeypatch.setattr(SQLiteStore, "_query", until_refused)
        yield f"sqlite:///{path}"
        other.close()

    async def test_the_bot_starts_once_the_other_lets_go(self, world, prodia, api):
        await world.alice.slash(world.channel, "imagine", prompt="a harbour")
        await world.env.advance_time(5)
        assert results_in(world.channel)[0].embeds[0].title == "a harbour"
        assert await world.bot.pipeline.store._query("PRAGMA journal_mode") == [{"journal_mode": "wal"}]


class TestQueuePosition:
    @pytest.fixture
    def bot_env(self) -> dict[str, str]:
        return {"PRODIA_POLL_INTERVAL": "2", "MAX_CONCURRENT_JOBS": "1", "QUEUE_SIZE": "5"}

    @pytest.mark.parametrize("api", ["v1"])
    async def test_a_waiting_job_shows_its_place_in_the_queue(self, world, prodia, api):
        prodia.job_duration = 5
        first = await start_imagine(world, prompt="first")
        try:
            await world.bob.slash(world.channel, "imagine", prompt="second")
        except TimeoutError:
            pass  # bob's job waits for alice's: nothing to settle until the clock moves
        second = world.channel.history()[-1]
        assert second.id != first.id
        assert "Waiting in the bot's queue: position 1" in second.content
        # (That the waiting job then runs is covered in test_jobs: simcord cannot move its clock
        # while a task waits on the queue's event, which it does not recognise as parked.)


class FileRefusingReply(Reply):
    """A channel where the bot may write but not attach files (simcord does not enforce Attach Files)."""

    async def _edit(self, content, embeds, files, view):
        if files:
            raise discord.Forbidden(SimpleNamespace(status=403, reason="Forbidden"), "Missing Permissions")
        return await super()._edit(content, embeds, files, view)


async def test_no_permission_to_attach_files_is_said_in_text(world, prodia, api):
    bot = world.bot
    channel = bot.get_channel(world.channel.id)
    job = bot.pipeline.catalog.prepare(GenerationRequest(prompt="a fox"))
    origin = Origin(
        JobKind.IMAGINE, user_id=1, channel_id=channel.id, guild_id=world.guild.id, locale=None, started_at=0
    )
    delivered = await bot.pipeline.start(job, FileRefusingReply(channel), origin)
    assert delivered is None
    assert "I need the Embed Links and Attach Files permissions" in world.channel.history()[-1].content
    assert (await only_job(world)).state == "failed"


async def test_a_job_discord_keeps_refusing_is_given_up(world, prodia, api):
    world.env.inject_error("PATCH", "/webhooks/*", status=403, code=50013, times=None)
    world.env.inject_error("PATCH", "/channels/*/messages/*", status=403, code=50013, times=None)
    world.env.inject_error("POST", "/channels/*/messages", status=403, code=50013, times=None)
    await world.alice.slash(world.channel, "imagine", prompt="nowhere to go")
    assert world.env.errors == []  # each refusal is logged; the job waits for the next recovery pass
    for _ in range(4):
        if (await only_job(world)).state == "failed":
            break
        await world.env.advance_time(45)  # a recovery pass offers the same image again
    job = await only_job(world)
    assert (job.state, job.error, job.attempts) == ("failed", "error.undeliverable", 1)
    assert len(prodia.image_jobs) == 1  # offered three times, made once


class TestEditPacing:
    @pytest.fixture
    def bot_env(self) -> dict[str, str]:
        return {"PRODIA_POLL_INTERVAL": "0.1", "PROGRESS_INTERVAL": "2"}

    @pytest.mark.parametrize("api", ["v1"])
    @pytest.mark.parametrize("bot_env", [{"PRODIA_POLL_INTERVAL": "0.5", "PROGRESS_INTERVAL": "2"}])  # few polls
    async def test_edits_of_one_reply_are_two_seconds_apart(self, world, prodia, api, monkeypatch):
        edits: list[float] = []
        original = Reply.edit

        async def timed(self, **kwargs):  # when each edit of the reply is sent, on simcord's clock
            edits.append(time.monotonic())
            return await original(self, **kwargs)

        monkeypatch.setattr(Reply, "edit", timed)
        prodia.job_duration = 3600  # each status lasts until the test moves the job on
        reply = await start_imagine(world, prompt="paced")
        await world.env.advance_time(1)  # queued at Prodia
        for job in prodia.jobs.values():
            job.queued_fraction = 0  # generating: another change within the same two seconds
        await world.env.advance_time(1)
        prodia.finish_all()
        await pass_time(world, 6, step=1)

        (delivered,) = results_in(world.channel)
        assert delivered.id == reply.id and delivered.embeds[0].title == "paced"
        assert len(edits) >= 2, "at least one progress edit, then the result"
        gaps = [b - a for a, b in itertools.pairwise(edits)]
        assert round(min(gaps), 6) >= 2

    @pytest.mark.parametrize("api", ["v1", "v2"])
    async def test_a_quick_job_shows_no_progress_edit(self, world, prodia, api):
        result = await world.alice.slash(world.channel, "imagine", prompt="quick")
        (only_edit,) = patches(world)
        assert only_edit.json["embeds"][0]["title"] == "quick"
        assert result.response.embeds


def patches(world):
    return [r for r in world.env.http_requests if r.method == "PATCH" and "/messages/" in r.path]


@pytest.mark.parametrize("api", ["v2"])
async def test_prodias_price_is_kept_in_the_journal_and_logged(world, prodia, api, caplog):
    caplog.set_level(logging.INFO, logger="bot.pipeline")
    await world.alice.slash(world.channel, "imagine", prompt="a harbour")
    await world.env.advance_time(5)
    job = await only_job(world)
    assert (job.state, job.price) == ("delivered", 0.0025)
    assert [r.query for r in prodia.image_posts()] == [{"price": "true"}]
    (line,) = [r.getMessage() for r in caplog.records if "outcome=delivered" in r.getMessage()]
    assert "price=$0.0025" in line
