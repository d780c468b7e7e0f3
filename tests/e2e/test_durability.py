"""Nothing lost: jobs survive restarts at every stage, Discord-side faults still end in a delivered reply."""

from __future__ import annotations

import itertools
import logging
import time
from types import SimpleNamespace

import discord
import pytest

from bot.core.origin import JobKind, Origin
from bot.core.request import GenerationRequest
from bot.core.store import StoreError
from bot.delivery import Reply
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
    submits = [r for r in prodia.requests if r.method == "POST"]
    assert len(submits) == 2
    assert submits[0].json == submits[1].json  # the same seed: the same image


async def test_restart_after_submit_polls_the_same_job(world, prodia, api):
    # v1 jobs, and v2 jobs run async (PRODIA_V2_MODE=auto, the default), have an id to pick up again.
    prodia.job_duration = 3
    await world.alice.slash(world.channel, "imagine", prompt="a harbour")
    job = await only_job(world)
    assert (job.state, job.prodia_job_id) == ("submitted", next(iter(prodia.jobs)))

    await world.restart()
    await world.env.advance_time(10)

    assert (await only_job(world)).state == "delivered"
    assert len(results_in(world.channel)) == 1
    assert sum(r.method == "POST" for r in prodia.requests) == 1
    assert prodia.jobs[job.prodia_job_id].polls >= 2


async def test_restart_after_the_result_but_before_delivery(world, prodia, api):
    world.env.inject_error("PATCH", "/webhooks/*", status=403, code=50013, message="Missing Permissions", times=None)
    world.env.inject_error(
        "*", "/channels/*/messages*", status=403, code=50013, message="Missing Permissions", times=None
    )
    result = await world.alice.slash(world.channel, "imagine", prompt="a harbour", seed=5)
    await world.env.advance_time(5)
    assert (await only_job(world)).state == "generated"
    first_image = next(iter(prodia.jobs.values())).image
    world.env.errors  # noqa: B018  # the refused edits are expected here

    world.env.backend.faults.clear()  # Discord accepts messages again
    await world.restart()
    await world.env.advance_time(5)

    assert (await only_job(world)).state == "delivered"
    (delivered,) = results_in(world.channel)
    assert delivered.id == result.response.id
    assert await delivered.attachments[0].read() == first_image


async def test_an_expired_token_falls_back_to_the_channel(world, prodia, api):
    # What Discord answers once the 15-minute interaction token has expired.
    world.env.inject_error("PATCH", "/webhooks/*", status=404, code=10015, message="Unknown Webhook", times=None)
    result = await world.alice.slash(world.channel, "imagine", prompt="a slow harbour")
    await world.env.advance_time(5)

    (delivered,) = results_in(world.channel)
    assert delivered.id == result.response.message.id
    assert (await only_job(world)).state == "delivered"
    late_edits = [r for r in world.env.http_requests if r.method == "PATCH" and r.path.startswith("/channels/")]
    assert late_edits, "the bot edits through the channel with its own token"
    world.env.errors  # noqa: B018


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
    world.env.errors  # noqa: B018


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
    world.env.errors  # noqa: B018


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

    async def _edit(self, content, embed, file, view):
        if file is not None:
            raise discord.Forbidden(SimpleNamespace(status=403, reason="Forbidden"), "Missing Permissions")
        return await super()._edit(content, embed, file, view)


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
    world.env.errors  # noqa: B018
    for _ in range(4):
        if (await only_job(world)).state == "failed":
            break
        await world.env.advance_time(45)  # a recovery pass offers the same image again
    job = await only_job(world)
    assert (job.state, job.error, job.attempts) == ("failed", "error.undeliverable", 1)
    assert len(prodia.jobs) == 1  # offered three times, made once


class TestEditPacing:
    @pytest.fixture
    def bot_env(self) -> dict[str, str]:
        return {"PRODIA_POLL_INTERVAL": "0.1", "PROGRESS_INTERVAL": "2"}

    @pytest.mark.simcord(settle_timeout=12)
    @pytest.mark.parametrize("api", ["v1"])
    async def test_edits_of_one_reply_are_two_seconds_apart(self, world, prodia, api, monkeypatch):
        edits: list[float] = []
        original = Reply.edit

        async def timed(self, **kwargs):  # when each edit of the reply is sent (simcord logs no times)
            edits.append(time.monotonic())
            return await original(self, **kwargs)

        monkeypatch.setattr(Reply, "edit", timed)
        prodia.job_duration = 5  # real seconds: queued for 1.5 s, then generating
        result = await world.alice.slash(world.channel, "imagine", prompt="paced")

        assert result.response.embeds[0].title == "paced"
        assert len(edits) >= 2, "at least one progress edit, then the result"
        gaps = [b - a for a, b in itertools.pairwise(edits)]
        assert min(gaps) >= 2 - 0.05  # the clock's resolution

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
    assert [r.query for r in prodia.requests if r.method == "POST"] == [{"price": "true"}]
    (line,) = [r.getMessage() for r in caplog.records if "outcome=delivered" in r.getMessage()]
    assert "price=$0.0025" in line
