"""Growing past one process: the bot on PostgreSQL, shards, and v1's live model list."""

from __future__ import annotations

import asyncio
import time
import uuid

import pytest

from bot.core.store import JobRecord
from bot.recovery import resume_unfinished
from devtools.local_prodia import Fault
from tests.plugins.databases import postgres_schema
from tests.plugins.discord_world import results_in

pytestmark = pytest.mark.simcord(settle_timeout=10)

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
    assert {f.name: f.value for f in result.response.embeds[0].fields}["Model"] == "brand_new_v2.safetensors [12345678]"

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
