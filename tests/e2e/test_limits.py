"""Limits against abuse and cost, as users meet them: queue, per user, per guild, prompt length."""

from __future__ import annotations

import logging

import pytest

from bot.render import REROLL_EMOJI
from devtools.local_prodia import Fault
from tests.plugins.discord_world import DISCORD_TOKEN, PRODIA_KEY, results_in

pytestmark = pytest.mark.simcord(settle_timeout=10)


def private_answer(result):
    """A refusal is the interaction's first answer, and only the requester sees it."""
    assert result.response.ephemeral
    assert not result.deferred  # answered at once: no public "thinking" reply ever appeared
    return result.response


def submits(prodia):
    return [r for r in prodia.requests if r.method == "POST"]


class TestPerUser:
    @pytest.fixture
    def bot_env(self) -> dict[str, str]:
        return {"USER_COOLDOWN": "30", "USER_MAX_JOBS": "1"}

    async def test_cooldown_is_answered_privately_with_the_wait(self, world, prodia, api):
        await world.alice.slash(world.channel, "imagine", prompt="first")
        second = await world.alice.slash(world.channel, "imagine", prompt="second")
        assert second.response.ephemeral
        assert second.response.content.startswith("Slow down a little: you can ask again in ")
        assert len(prodia.jobs) == 1
        # Another user is not slowed down by alice.
        other = await world.bob.slash(world.channel, "imagine", prompt="bob's")
        assert other.response.embeds[0].title == "bob's"
        await world.env.advance_time(31)
        third = await world.alice.slash(world.channel, "imagine", prompt="third")
        assert third.response.embeds[0].title == "third"

    async def test_rerolls_count_towards_the_cooldown(self, world, prodia, api):
        result = await world.alice.slash(world.channel, "imagine", prompt="first")
        await world.alice.react(result.response, REROLL_EMOJI)
        assert len(prodia.jobs) == 1  # refused: alice is cooling down
        await world.env.advance_time(31)
        await world.alice.unreact(result.response, REROLL_EMOJI)
        await world.alice.react(result.response, REROLL_EMOJI)
        assert len(prodia.jobs) == 2


class TestQueue:
    @pytest.fixture
    def bot_env(self) -> dict[str, str]:
        return {"MAX_CONCURRENT_JOBS": "1", "QUEUE_SIZE": "0"}

    async def test_a_full_queue_says_so_at_once(self, world, prodia, api):
        world.bot.pipeline.queue.running = 1  # a job of someone else holds the only slot
        result = await world.alice.slash(world.channel, "imagine", prompt="a fox")
        assert result.response.ephemeral
        assert "at capacity" in result.response.content
        assert submits(prodia) == []
        world.bot.pipeline.queue.running = 0
        result = await world.alice.slash(world.channel, "imagine", prompt="a fox")
        assert result.response.embeds[0].title == "a fox"


async def test_blocked_words_are_refused_privately(world, prodia, api):
    saved = await world.admin.slash(world.channel, "settings set", blocked_words="Castle, red dragon")
    fields = {f.name: f.value for f in saved.response.embeds[0].fields}
    assert fields["Blocked words"] == "castle, red dragon"

    refused = await world.alice.slash(world.channel, "imagine", prompt="A CASTLE at night")
    assert private_answer(refused).content == "This server does not allow “castle” in prompts."
    assert results_in(world.channel) == [] and submits(prodia) == []
    refused = await world.alice.slash(world.channel, "imagine", prompt="a red  dragon")
    assert "“red dragon”" in private_answer(refused).content
    assert submits(prodia) == []

    # Whole words only: "castles" and "redragon" are other words.
    allowed = await world.alice.slash(world.channel, "imagine", prompt="sand castles, a redragon")
    assert allowed.response.embeds[0].title == "sand castles, a redragon"

    await world.admin.slash(world.channel, "settings set", blocked_words="-")
    cleared = await world.alice.slash(world.channel, "imagine", prompt="A castle at night")
    assert cleared.response.embeds


async def test_daily_cap_counts_the_guilds_images(world, prodia, api):
    await world.admin.slash(world.channel, "settings set", daily_cap=2)
    for n in range(2):
        assert (await world.alice.slash(world.channel, "imagine", prompt=f"image {n}")).response.embeds
    refused = await world.bob.slash(world.channel, "imagine", prompt="one too many")
    assert "reached its daily limit of 2 images" in private_answer(refused).content
    assert len(prodia.jobs) == 2


async def test_empty_prompt_is_refused_privately(world, prodia, api):
    result = await world.alice.slash(world.channel, "imagine", prompt="   ")
    assert result.response.ephemeral
    assert result.response.content == "The prompt is empty. Describe the image you want."
    assert submits(prodia) == []


async def test_long_prompts_are_truncated_to_discords_limits(world, prodia, api):
    prompt = "a very long prompt " * 52  # 988 characters: within our limit, over an embed title's 256
    result = await world.alice.slash(world.channel, "imagine", prompt=prompt.strip(), negative_prompt="n" * 1000)
    embed = result.response.embeds[0]
    assert len(embed.title) == 256 and embed.title.endswith("…")
    assert all(len(field.value) <= 1024 for field in embed.fields)
    assert len(embed) <= 6000


@pytest.mark.parametrize(
    ("fault", "expected"),
    [
        (Fault("status", status=429, retry_after=0, times=None), "busy"),
        (Fault("malformed_json", times=None), "not a usable image"),
        (Fault("status", status=403, times=None), "refused the bot's access key"),
    ],
)
async def test_more_prodia_failures_end_in_a_clear_message(world, prodia, api, fault, expected):
    prodia.add_fault(fault)
    result = await world.alice.slash(world.channel, "imagine", prompt="a fox")
    assert expected in result.response.content
    assert not result.response.embeds


@pytest.mark.parametrize("api", ["v1"])
@pytest.mark.parametrize(
    "fault",
    [Fault("image_404", path="/images/*"), Fault("not_image", path="/images/*"), Fault("image_huge", size=30_000_000)],
)
async def test_unusable_images_end_in_a_clear_message(world, prodia, api, fault):
    prodia.add_fault(fault)
    result = await world.alice.slash(world.channel, "imagine", prompt="a fox")
    assert "not a usable image" in result.response.content or "not answering" in result.response.content
    assert not result.response.attachments


async def test_no_secret_in_any_log_line(world, prodia, api, caplog):
    caplog.set_level(logging.DEBUG)
    prodia.add_fault(Fault("status", status=401, message=f"bad key {PRODIA_KEY}", times=None))
    await world.alice.slash(world.channel, "imagine", prompt="a fox")
    prodia.clear_faults()
    await world.alice.slash(world.channel, "imagine", prompt="a fox")
    assert caplog.records
    assert PRODIA_KEY not in caplog.text
    assert DISCORD_TOKEN not in caplog.text
    assert PRODIA_KEY not in world.env.transcript()


async def test_a_bad_key_is_logged_for_the_owner(world, prodia, api, caplog):
    prodia.add_fault(Fault("status", status=401, times=None))
    result = await world.alice.slash(world.channel, "imagine", prompt="a fox")
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert any("check PRODIA_API_KEY" in message for message in errors)
    # A log line is all the owner gets, so the user is asked to pass it on rather than told the owner knows.
    assert result.response.content == (
        "The image service refused the bot's access key, so no images can be made for now. Please tell the bot's owner."
    )


class TestSlowDatabase:
    """The guild's limits need the database before the defer. A database that hangs must not cost the
    interaction (Discord drops it after 3 s): the check gives up after a second and the image goes ahead."""

    @pytest.fixture
    async def database_url(self):
        from tests.plugins.databases import postgres_schema

        async with postgres_schema() as url:
            yield url

    @pytest.fixture
    async def pg_store(self, database_url):
        from bot.core.store import open_store

        store = await open_store(database_url)  # creates the tables
        yield store
        await store.close()

    @pytest.fixture
    async def locked_jobs(self, database_url, pg_store):
        """Another client holding the jobs table (what the daily-cap count and the job's journal read and
        write); `await locked_jobs()` lets go."""
        import asyncpg

        locker = await asyncpg.connect(database_url)
        lock = locker.transaction()
        await lock.start()
        await locker.execute("LOCK TABLE jobs IN ACCESS EXCLUSIVE MODE")
        held = [True]

        async def release() -> None:
            if held.pop():
                await lock.rollback()
            held.append(False)

        yield release
        await release()
        await locker.close()

    async def test_the_pre_defer_check_gives_up_on_a_hanging_database(self, pg_store, locked_jobs, caplog):
        import asyncio

        from bot.core.jobs import check_guild_limits
        from bot.core.store import GuildSettings
        from bot.pipeline import PRE_DEFER_BUDGET, bounded

        capped = GuildSettings(daily_cap=5)
        async with asyncio.timeout(PRE_DEFER_BUDGET + 5):  # a hang fails the test instead of stalling it
            outcome = await bounded(check_guild_limits(pg_store, 42, capped, "a fox"))
        assert outcome is None
        assert any("pre-defer check took over" in r.getMessage() for r in caplog.records)
        # The store still works once the lock is gone (the abandoned query left nothing behind).
        await locked_jobs()
        assert await pg_store.count_images_since(42, 0) == 0

    @pytest.mark.parametrize("api", ["v1"])
    async def test_a_locked_database_delays_the_image_but_loses_nothing(self, world, prodia, api, locked_jobs):
        """Under simcord the 1 s budget is a virtual timer that does not fire while the bot waits on the
        database (the test above covers it on the real clock); here the lock ends after 2 real seconds."""
        import asyncio

        await world.admin.slash(world.channel, "settings set", daily_cap=5)  # so /imagine counts today's jobs

        async def release_later() -> None:
            await asyncio.sleep(2.0)
            await locked_jobs()

        releaser = asyncio.create_task(release_later())
        result = await world.alice.slash(world.channel, "imagine", prompt="patient fox")
        await releaser
        callbacks = [r for r in world.env.http_requests if r.path.endswith("/callback")]
        assert callbacks[-1].json["type"] == 5  # deferred publicly, not refused
        assert result.response.embeds[0].title == "patient fox"
        assert len(prodia.jobs) == 1
