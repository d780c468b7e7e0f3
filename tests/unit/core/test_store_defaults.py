"""The store's layers of image defaults below a server's (a user's preferences, a channel's defaults), deleting a
result, leases given back and the health check's ping, on both backends (`store` is parametrized over SQLite and
PostgreSQL). The rest of the store is in test_store.py."""

import asyncio
import sqlite3
from dataclasses import replace

import pytest

from bot.core.store import Defaults, ResultRecord, Store, StoreError, open_store
from bot.core.store.migrations import _migrations
from tests.plugins.databases import StoreTarget
from tests.unit.core import test_store
from tests.unit.core.test_store import REQUEST, SteppedClock, make_job

clock = test_store.clock  # the fixture: the store modules' time.time, stepped by the test


async def test_preferences_change_only_the_fields_given_and_none_unsets_one(store: Store) -> None:
    assert await store.preferences(1) == Defaults()
    assert await store.update_preferences(1, model="sdxl", steps=30) == Defaults(model="sdxl", steps=30)
    assert await store.update_preferences(1, cfg=6.5, steps=None) == Defaults(model="sdxl", cfg=6.5)
    assert await store.preferences(1) == Defaults(model="sdxl", cfg=6.5)
    assert await store.update_preferences(1) == Defaults(model="sdxl", cfg=6.5)  # nothing to change
    assert await store.preferences(2) == Defaults()  # another user's


async def test_channel_defaults_are_kept_per_channel(store: Store) -> None:
    assert await store.channel_defaults(5) == Defaults()
    changed = await store.update_channel_defaults(5, 10, aspect_ratio="16:9", negative_prompt="blur", style="anime")
    assert changed == Defaults(aspect_ratio="16:9", negative_prompt="blur", style="anime")
    assert await store.update_channel_defaults(5, 10, sampler="Euler") == replace(changed, sampler="Euler")
    assert await store.channel_defaults(6) == Defaults()
    assert await store.preferences(5) == Defaults()  # a user with the channel's id is another row
    rows = await store._query("SELECT guild_id FROM channel_defaults WHERE channel_id = ?", (5,))
    assert [row["guild_id"] for row in rows] == [10]  # kept for a server's `/settings reset` of its channels


async def test_a_reset_forgets_one_users_preferences_or_one_channels_defaults(store: Store) -> None:
    await store.update_preferences(1, model="a")
    await store.update_preferences(2, model="b")
    await store.update_channel_defaults(1, 10, model="c")
    await store.reset_preferences(1)
    assert (await store.preferences(1), await store.preferences(2)) == (Defaults(), Defaults(model="b"))
    assert await store.channel_defaults(1) == Defaults(model="c")
    await store.reset_channel_defaults(1)
    assert await store.channel_defaults(1) == Defaults()
    assert await store.preferences(2) == Defaults(model="b")


@pytest.mark.parametrize("layer", ["preferences", "channel"])
async def test_an_unknown_default_is_refused_and_nothing_is_stored(store: Store, layer: str) -> None:
    with pytest.raises(TypeError, match="colour, reroll"):
        if layer == "preferences":
            await store.update_preferences(1, reroll="anyone", colour="red", model="x")
        else:
            await store.update_channel_defaults(1, 10, reroll="anyone", colour="red", model="x")
    assert await store.preferences(1) == await store.channel_defaults(1) == Defaults()


async def test_defaults_are_cached_and_own_writes_and_resets_are_seen_at_once(
    store_target: StoreTarget, clock: SteppedClock
) -> None:
    mine, other = await store_target.open(), await store_target.open(cache_ttl=60)
    assert await other.preferences(1) == await other.channel_defaults(1) == Defaults()
    await mine.update_preferences(1, model="a")
    await mine.update_channel_defaults(1, 10, model="b")
    assert (await mine.preferences(1)).model == "a"  # own write
    assert (await other.preferences(1), await other.channel_defaults(1)) == (Defaults(), Defaults())  # cached
    clock.advance(59)
    assert await other.preferences(1) == Defaults()
    clock.advance(2)
    assert (await other.preferences(1), await other.channel_defaults(1)) == (Defaults(model="a"), Defaults(model="b"))
    await other.reset_preferences(1)
    await other.reset_channel_defaults(1)
    assert (await other.preferences(1), await other.channel_defaults(1)) == (Defaults(), Defaults())


async def test_a_deleted_result_is_forgotten_and_others_kept(store: Store) -> None:
    kept = ResultRecord(message_id=1, guild_id=None, channel_id=5, user_id=6, request=REQUEST, created_at=1.5)
    gone = ResultRecord(message_id=2, guild_id=None, channel_id=5, user_id=6, request=REQUEST, created_at=1.5)
    await store.save_result(kept)
    await store.save_result(gone)
    await store.delete_result(2)
    assert (await store.get_result(1), await store.get_result(2)) == (kept, None)


async def test_released_leases_let_another_process_resume_the_jobs_at_once(
    store_target: StoreTarget, clock: SteppedClock
) -> None:
    stopping, next_one = await store_target.open(), await store_target.open()
    mine, theirs = make_job(id="mine"), make_job(id="theirs")
    for job in (mine, theirs):
        await stopping.add_job(job)
    assert await stopping.claim_job("mine", "stopping", lease=60)
    assert await stopping.claim_job("theirs", "running", lease=60)
    await stopping.release_jobs("stopping")
    assert await next_one.claim_job("mine", "next", lease=60)  # no wait for the lease to run out
    assert not await next_one.claim_job("theirs", "next", lease=60)  # another owner's lease holds


async def test_ping_answers_while_the_database_does(store: Store) -> None:
    assert await store.ping() is None  # the health check's question: no error is the answer


async def test_a_reset_of_what_was_never_read_or_set_is_no_error(store: Store) -> None:
    await store.reset_guild_settings(404)
    await store.reset_preferences(404)
    await store.reset_channel_defaults(404)
    assert await store.preferences(404) == Defaults()


async def test_a_cached_entry_lives_its_ttl_and_not_a_moment_more(
    store_target: StoreTarget, clock: SteppedClock
) -> None:
    mine, other = await store_target.open(), await store_target.open(cache_ttl=60)
    assert (await other.guild_settings(1)).model is None
    assert await other.preferences(1) == Defaults()
    await mine.update_guild_settings(1, model="a")
    await mine.update_preferences(1, model="b")
    clock.advance(60)  # exactly the TTL: expired
    assert (await other.guild_settings(1)).model == "a"
    assert await other.preferences(1) == Defaults(model="b")


async def test_a_stale_entry_is_refreshed_behind_again_after_each_expiry(
    store_target: StoreTarget, clock: SteppedClock
) -> None:
    mine, other = await store_target.open(), await store_target.open(cache_ttl=60)
    await other.guild_settings(1)
    for model in ("a", "b"):
        await mine.update_guild_settings(1, model=model)
        clock.advance(61)
        await other.guild_settings(1, allow_stale=True)  # the old value at once, a refresh behind
        await asyncio.gather(*other._refreshing.values())
        assert (await other.guild_settings(1, allow_stale=True)).model == model


async def test_a_sqlite_file_in_folders_that_do_not_exist_yet_is_created_with_them(tmp_path) -> None:
    store = await open_store(f"sqlite:///{tmp_path}/data/imagine/bot.sqlite3")
    await store.set_meta("k", "v")
    await store.close()
    assert (tmp_path / "data" / "imagine" / "bot.sqlite3").exists()


async def test_an_unreachable_postgresql_names_its_host_but_no_part_of_its_password() -> None:
    with pytest.raises(StoreError) as refused:
        await open_store("postgresql://bot:pa@ss-CANARY@127.0.0.1:1/imagine")  # an @ in the password
    assert "127.0.0.1" in str(refused.value)
    assert "CANARY" not in str(refused.value) and "pa@" not in str(refused.value)


@pytest.mark.parametrize("scheme", ["postgresql", "postgres"])
async def test_both_spellings_of_a_postgresql_url_are_postgresql(scheme: str) -> None:
    with pytest.raises(StoreError):  # tried, so taken for PostgreSQL (nothing listens on port 1)
        await open_store(f"{scheme}://bot@127.0.0.1:1/imagine")


@pytest.mark.parametrize("url", ["sqlite://bot.sqlite3", "sqlite:///"])
async def test_a_sqlite_url_without_a_path_is_refused(url: str) -> None:
    with pytest.raises(ValueError, match="sqlite:///path"):
        await open_store(url)


async def test_a_database_of_an_older_version_is_brought_up_to_date(tmp_path) -> None:
    path = tmp_path / "old.sqlite3"
    (first, script), *later = _migrations()
    with sqlite3.connect(path) as old:  # as the bot's first release left it
        old.execute("CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, applied_at DOUBLE PRECISION)")
        old.executescript(script)
        old.execute("INSERT INTO schema_migrations VALUES (?, 0)", (first,))
    store = await open_store(f"sqlite:///{path}")
    rows = await store._query("SELECT version FROM schema_migrations ORDER BY version")
    await store.close()
    assert [row["version"] for row in rows] == [first, *(version for version, _ in later)]
