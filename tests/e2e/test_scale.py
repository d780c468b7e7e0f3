"""Growing past one process: the bot on PostgreSQL, shards, and v1's live model list."""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

import pytest
import simcord
from simcord.backend.models.user import User
from simcord.builders import UserHandle

from bot import Settings, create_bot
from bot.core.messages import text
from bot.core.store import JobRecord
from bot.recovery import resume_unfinished
from devtools.local_prodia import Fault, LocalProdia
from tests.plugins.databases import postgres_schema
from tests.plugins.discord_world import arriving_together, bot_settings, results_in

pytestmark = pytest.mark.simcord(settle_timeout=10)
T = TypeVar("T")

REQUEST = {
    "prompt": "a lighthouse",
    "negative_prompt": "",
    "model": None,
    "steps": 20,
    "cfg": 7.0,
    "seed": 11,
    "sampler": "DPM++ 2M Karras",
    "aspect_ratio": "square",
}


def unfinished_job(guild_id: int, channel_id: int, user_id: int) -> JobRecord:
    now = time.time() - 60
    return JobRecord(
        id=uuid.uuid4().hex,
        kind="imagine",
        guild_id=guild_id,
        channel_id=channel_id,
        user_id=user_id,
        request=REQUEST,
        state="accepted",
        interaction_token=None,
        application_id=None,
        interaction_created_at=None,
        message_id=None,
        reply_to=None,
        prodia_job_id=None,
        error=None,
        created_at=now,
        updated_at=now,
    )


# -- PostgreSQL: the same bot, the same flows ---------------------------------------------------


class TestOnPostgres:
    @pytest.fixture
    async def database_url(self):
        async with postgres_schema() as url:
            yield url

    async def test_imagine_settings_and_reroll_on_postgres(self, world, prodia, api):
        assert world.bot.pipeline.store.backend == "postgresql"
        await world.admin.slash(world.channel, "settings set", steps=3)
        result = await world.alice.slash(world.channel, "imagine", prompt="a red fox", seed=3)
        fields = {f.name: f.value for f in result.response.embeds[0].fields}
        assert (fields["Steps"], fields["Seed"]) == ("3", "3")
        await world.restart()
        await world.alice.react(result.response, "🔄")
        assert len(results_in(world.channel)) == 2
        job = (await world.bot.pipeline.store._query("SELECT state FROM jobs ORDER BY created_at"))[0]
        assert job["state"] == "delivered"


# -- two processes on one PostgreSQL: the limits are the cluster's ---------------------------------


class OtherProcess:
    """A second bot on the same database and Prodia server, with a Discord of its own (simcord allows one live
    environment per event loop, so it runs its own loop in a thread). Its member `alice`, in a server of its own,
    is the first world's alice: the same Discord user, as one user meets two processes of a cluster."""

    def __init__(self, settings: Settings, alice_id: int) -> None:
        self.settings = settings
        self.alice_id = alice_id
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)

    async def run(self, work: Coroutine[Any, Any, T]) -> T:
        """`work` on this process's loop, the test's loop running meanwhile (the first bot, Prodia)."""
        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(work, self.loop))

    async def __aenter__(self) -> OtherProcess:
        self.thread.start()
        await self.run(self._start())
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.run(self._stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join()

    async def _start(self) -> None:
        self.bot = create_bot(self.settings)
        self.env = simcord.Env(self.bot, settle_timeout=10, strict_sync=False)  # the first bot synced the commands
        await self.env.start()
        await self.env.advance_time(1)  # snowflakes apart from the first world's, which it allocated at the start
        guild = self.env.create_guild("Elsewhere")
        self.channel = guild.create_text_channel("gen")
        user = User(id=self.alice_id, name="alice")  # simcord has no way to choose an id: add the user as it does
        self.env.backend.users[user.id] = user
        self.alice = guild.add_member(UserHandle(self.env, user))
        self.bob = guild.add_member(self.env.create_user("bob"))

    async def _stop(self) -> None:
        await self.bot.close()
        await self.env.shutdown()

    async def imagine(self, member: Any, prompt: str) -> Any:
        return await self.run(member.slash(self.channel, "imagine", prompt=prompt))

    def imagine_together(self, *asks: tuple[Any, str]) -> asyncio.Future[list[Any]]:
        """Start /imagine there for each (member, prompt), arriving together, and go on here; await the results."""

        async def burst() -> list[Any]:
            async with arriving_together(self.env):
                return [await member.slash(self.channel, "imagine", prompt=prompt) for member, prompt in asks]

        return asyncio.wrap_future(asyncio.run_coroutine_threadsafe(burst(), self.loop))


class Changes:
    """Wakes a test waiting for a condition each time something it watches changes, whatever thread it changed in:
    the Prodia server's gate, and the Discord of either process (each event it sends). Waiting on these, not on
    the clock, a test sees the moment it needs however fast or slow the machine is."""

    def __init__(self, prodia: LocalProdia, *envs: Any) -> None:
        self.loop = asyncio.get_running_loop()
        self.changed = asyncio.Event()
        prodia.gate_listeners.append(self.poke)
        for env in envs:
            env.backend.subscribers.append(self.poke)

    def poke(self, *_event: object) -> None:
        self.loop.call_soon_threadsafe(self.changed.set)

    async def until(self, condition: Callable[[], bool]) -> None:
        async with asyncio.timeout(60):  # a hang guard, not a deadline: each change wakes the test
            while not condition():
                await self.changed.wait()
                self.changed.clear()


def told_to_wait(env: Any) -> set[str]:
    """The replies a process edited to say their job waits for a place at Prodia: first in its own queue, every
    place of the cluster taken (the only wait that says "position 1" here, with room to spare in each queue)."""
    waiting = text("progress.waiting", position=1)
    return {
        request.path
        for request in list(env.http_requests)  # a copy: the other process's thread may be adding to it
        if request.method == "PATCH" and waiting in str((request.json or {}).get("content"))
    }


class TestCluster:
    """Two processes on one PostgreSQL (the README's scale-out) share every limit: Prodia's concurrency, the
    user's jobs in flight, the cooldown and the daily caps."""

    @pytest.fixture
    async def database_url(self):
        async with postgres_schema() as url:
            yield url

    @pytest.fixture
    async def other(self, world, prodia, api, database_url, bot_env):
        async with OtherProcess(bot_settings(prodia, api, database_url, **bot_env), world.alice.id) as other:
            yield other

    # Three places for four jobs, two from each process: Prodia holds the jobs it gets until every job is either
    # there or told to wait for a place, so the fourth must wait for a place the other process frees. (Never two in
    # one process: the second would wait on the queue's asyncio.Event, and simcord cannot move its clock while a task
    # waits on one it does not know.) v2 sync: a job holds its place at Prodia in one request.
    @pytest.mark.parametrize("api", ["v2"])
    @pytest.mark.parametrize("bot_env", [{"MAX_CONCURRENT_JOBS": "3", "PRODIA_V2_MODE": "sync"}])
    async def test_prodia_never_runs_more_than_max_concurrent_jobs_of_the_cluster(self, world, prodia, other):
        changes = Changes(prodia, world.env, other.env)
        prodia.hold()  # every job Prodia gets runs until released below
        there = other.imagine_together((other.alice, "alice there"), (other.bob, "bob there"))
        async with arriving_together(world.env):
            here = [
                await member.slash(world.channel, "imagine", prompt=member.name) for member in (world.alice, world.bob)
            ]
            await changes.until(lambda: len(prodia.held) + len(told_to_wait(world.env) | told_to_wait(other.env)) >= 4)
            assert len(prodia.held) == 3  # the most at once: the fourth waits, although its process has room
            assert prodia.release() == 3
        there = await there
        assert all(result.response.embeds for result in [*here, *there])
        assert len(prodia.image_jobs) == 4

    @pytest.mark.parametrize("bot_env", [{"USER_MAX_JOBS": "1"}])
    async def test_a_users_job_in_flight_counts_in_every_process(self, world, prodia, api, other):
        prodia.hold(1)  # alice's first job runs until released below
        async with arriving_together(world.env):
            here = await world.alice.slash(world.channel, "imagine", prompt="here")
            async with asyncio.timeout(60):  # a hang guard, not a deadline
                await prodia.wait_held(1)  # alice's job is at Prodia
            there = await other.imagine(other.alice, "there")
            prodia.release()
        assert there.response.ephemeral
        assert there.response.content == (
            "You already have 1 image in progress, the most allowed. Wait for one to finish."
        )
        assert here.response.embeds[0].title == "here"
        assert (await other.imagine(other.alice, "there, later")).response.embeds

    @pytest.mark.parametrize("bot_env", [{"USER_COOLDOWN": "30"}])
    async def test_the_cooldown_holds_across_processes(self, world, prodia, api, other):
        assert (await world.alice.slash(world.channel, "imagine", prompt="here")).response.embeds
        there = await other.imagine(other.alice, "there")
        assert there.response.ephemeral
        assert there.response.content.startswith("Slow down a little: you can ask again in ")
        assert (await other.imagine(other.bob, "bob, there")).response.embeds

    @pytest.mark.parametrize("bot_env", [{"USER_DAILY_CAP": "2"}])
    async def test_a_daily_cap_holds_across_processes(self, world, prodia, api, other):
        assert (await world.alice.slash(world.channel, "imagine", prompt="here")).response.embeds
        assert (await other.imagine(other.alice, "there")).response.embeds
        for refused in (
            await world.alice.slash(world.channel, "imagine", prompt="here again"),
            await other.imagine(other.alice, "there again"),
        ):
            assert refused.response.ephemeral
            assert refused.response.content.startswith("You have reached your daily limit of 2 images.")
        assert len(prodia.image_jobs) == 2


# -- shards ----------------------------------------------------------------------------------------


class TestShards:
    @pytest.fixture
    def bot_env(self) -> dict[str, str]:
        return {"SHARD_COUNT": "2", "SHARD_IDS": "1"}

    async def test_a_cluster_process_serves_and_resumes_only_its_own_guilds(self, simcord_env, prodia, api):
        env = simcord_env
        bot = env.bot
        assert bot.shard_ids == [1]
        mine = env.create_guild("Mine", shard_id=1)
        theirs = env.create_guild("Theirs", shard_id=0)
        mine_channel, theirs_channel = mine.create_text_channel("gen"), theirs.create_text_channel("gen")
        alice = mine.add_member(env.create_user("alice"))
        assert bot.get_guild(mine.id) is not None and bot.get_guild(theirs.id) is None

        result = await alice.slash(mine_channel, "imagine", prompt="served by shard 1")
        assert result.response.embeds[0].title == "served by shard 1"

        own = unfinished_job(mine.id, mine_channel.id, alice.id)
        other = unfinished_job(theirs.id, theirs_channel.id, alice.id)
        await bot.pipeline.store.add_job(own)
        await bot.pipeline.store.add_job(other)
        resumed = await resume_unfinished(bot.pipeline)
        assert len(resumed) == 1
        await asyncio.gather(*resumed)

        assert (await bot.pipeline.store.get_job(own.id)).state == "delivered"
        assert (await bot.pipeline.store.get_job(other.id)).state == "accepted"  # left to the process running shard 0
        assert len(results_in(mine_channel)) == 2
        assert results_in(theirs_channel) == []


# -- v1's live model list ------------------------------------------------------------------------


@pytest.mark.parametrize("api", ["v1"])
async def test_v1_model_list_is_refreshed_from_prodia_and_cached(world, prodia, api):
    prodia.sd_models = ["brand_new_v2.safetensors [12345678]", "absolutereality_v181.safetensors [3d9d4d2b]"]
    assert await world.bot.get_cog("ModelList").refresh()
    assert "brand_new_v2.safetensors [12345678]" in world.bot.pipeline.catalog
    assert "dreamshaper_8.safetensors [9d40847d]" not in world.bot.pipeline.catalog

    result = await world.alice.slash(world.channel, "imagine", prompt="new model", model="brand_new")
    fields = {f.name: f.value for f in result.response.embeds[0].fields}
    assert (fields["Model"], fields["Checkpoint"]) == ("brand_new_v2", "brand_new_v2.safetensors [12345678]")

    # Prodia unreachable at the next start: the cached list is used, not the built-in one.
    prodia.add_fault(Fault("status", status=503, times=None))
    bot = await world.restart()
    assert not await bot.get_cog("ModelList").refresh()
    assert "brand_new_v2.safetensors [12345678]" in bot.pipeline.catalog


@pytest.mark.parametrize("api", ["v1"])
async def test_unreachable_prodia_keeps_the_built_in_list(world, prodia, api):
    prodia.add_fault(Fault("malformed_json", path="/v1/sd/models", times=None))
    before = len(world.bot.pipeline.catalog)
    assert not await world.bot.get_cog("ModelList").refresh()
    assert len(world.bot.pipeline.catalog) == before == 71
