"""`count:` in the core: a request's seeds, one Prodia job per image, a queue place per image, the daily caps (both
stores) and the journal weighing a batch as its images, and the user's jobs in flight counting it as one job."""

from __future__ import annotations

import dataclasses
import time

import pytest

from bot.core.catalog import Catalog, v1_models
from bot.core.errors import InvalidInput
from bot.core.jobs import JobQueue, QueueFull, UserBusy
from bot.core.limits import start_of_day
from bot.core.messages import error_text
from bot.core.model_lists import DEFAULT_SD_MODEL
from bot.core.request import GenerationRequest
from bot.core.store import CapScope, Claim, Store
from tests.unit.core import test_limits
from tests.unit.core.test_limits import GUILD, Setup, a_job, guild_cap

setup = test_limits.setup  # the fixture: local limits on SQLite and PostgreSQL, shared ones on PostgreSQL


def test_count_is_one_to_four() -> None:
    assert GenerationRequest(prompt="x").count == 1
    for bad in (0, 5, 2.0, True, "2"):
        with pytest.raises(InvalidInput) as refused:
            GenerationRequest(prompt="x", count=bad)
        assert error_text(refused.value) == "count must be between 1 and 4."


def test_seeds_count_up_from_the_seed_and_wrap_past_the_largest() -> None:
    assert GenerationRequest(prompt="x", seed=42, count=4).seeds() == [42, 43, 44, 45]
    assert GenerationRequest(prompt="x", seed=2**32 - 2, count=3).seeds() == [2**32 - 2, 2**32 - 1, 0]
    assert GenerationRequest(prompt="x", seed=9).seeds() == [9]


def test_a_batch_is_one_prodia_job_per_image_each_with_its_seed() -> None:
    catalog = Catalog(v1_models(), DEFAULT_SD_MODEL)
    job = catalog.prepare(GenerationRequest(prompt="foxes", seed=7, count=3, steps=12))
    images = job.images()
    assert [image.request.seed for image in images] == [7, 8, 9]
    assert {image.request.count for image in images} == {1}
    # Everything else is the request's own.
    assert {(image.request.prompt, image.steps, image.model.name) for image in images} == {
        ("foxes", 12, job.model.name)
    }
    single = catalog.prepare(GenerationRequest(prompt="fox", seed=7))
    assert single.images() == [single]
    pair = catalog.prepare(GenerationRequest(prompt="foxes", seed=7, count=2)).images()
    assert [image.request.seed for image in pair] == [7, 8]


def test_an_upscale_is_one_image_whatever_the_batch_it_came_from() -> None:
    catalog = Catalog(v1_models(), DEFAULT_SD_MODEL)
    job = catalog.prepare_upscale(GenerationRequest(prompt="foxes", seed=7, count=4), b"\x89PNG")
    assert job.request.count == 1 and len(job.images()) == 1


def test_a_batch_takes_a_queue_place_per_image_and_gives_back_those_it_never_used() -> None:
    queue = JobQueue(running=2, waiting=1)
    with pytest.raises(QueueFull):
        queue.reserve(4)
    assert queue.reserved == 0  # a refused batch takes nothing
    place = queue.reserve(3)
    with pytest.raises(QueueFull):
        queue.reserve(1)
    assert place.take() and place.take()
    assert queue.reserved == 1
    place.release()  # the third image never ran
    assert queue.reserved == 0 and not place.take()
    queue.reserve(3).release()


async def test_a_batch_weighs_its_images_under_a_daily_cap(setup: Setup) -> None:
    limits = setup.limits()
    caps = guild_cap(5)
    batch = await limits.reserve(Claim("batch", 1, GUILD, (caps[0].scope,), images=4), caps)
    with pytest.raises(Exception) as refused:  # 4 + 2 > 5
        await limits.reserve(Claim("two", 2, GUILD, (caps[0].scope,), images=2), caps)
    assert "daily limit of 5 images" in error_text(refused.value)
    one = await limits.reserve(Claim("one", 2, GUILD, (caps[0].scope,)), caps)
    await one.release()
    await batch.release()  # never started: it counts for nothing
    again = await limits.reserve(Claim("again", 1, GUILD, (caps[0].scope,), images=4), caps)
    await again.release()


async def test_a_batch_is_one_job_in_flight(setup: Setup) -> None:
    limits = setup.limits(max_jobs=2)
    batch = await limits.reserve(Claim("batch", 1, GUILD, (), images=4), ())
    other = await limits.reserve(Claim("other", 1, GUILD, (), images=3), ())
    with pytest.raises(UserBusy):
        await limits.reserve(Claim("third", 1, GUILD, ()), ())
    await other.release()
    await batch.release()


async def test_the_journal_weighs_a_batch_as_its_images_or_its_sends(store: Store) -> None:
    today = start_of_day(time.time())
    for job in (
        dataclasses.replace(a_job("batch of four"), images=4, attempts=4),
        dataclasses.replace(a_job("batch in flight", state="accepted", attempts=0), images=3),
        dataclasses.replace(a_job("batch resent", attempts=5), images=2),  # each send may be billed
        dataclasses.replace(a_job("batch failed before prodia", state="failed", attempts=0), images=4),
        a_job("single"),
    ):
        await store.add_job(job)
    assert await store.count_images([CapScope("guild", GUILD)], today) == (4 + 3 + 5 + 0 + 1,)
    assert (await store.get_job("batch of four")).images == 4
    assert await store.count_images_since(GUILD, today) == 4 + 2 + 1  # made: generated or delivered


async def test_a_journaled_claim_under_a_user_cap_counts_once() -> None:
    # A job journaled while its reservation is held is counted by the journal, not again as held.
    import tempfile

    from bot.core.jobs import UserDailyCap, UserLimits
    from bot.core.limits import DailyLimit, LocalLimits
    from bot.core.store import open_store

    with tempfile.TemporaryDirectory() as folder:
        store = await open_store(f"sqlite:///{folder}/bot.sqlite3")
        try:
            limits = LocalLimits(store, UserLimits(10, 0))
            cap = (DailyLimit(CapScope("user", 1), 2),)
            first = await limits.reserve(Claim("first", 1, GUILD, (cap[0].scope,)), cap)
            first.started = True
            await store.add_job(a_job("first", user=1, state="accepted", attempts=0))
            second = await limits.reserve(Claim("second", 1, GUILD, (cap[0].scope,)), cap)  # 2 of 2, not 3
            with pytest.raises(UserDailyCap):
                await limits.reserve(Claim("third", 1, GUILD, (cap[0].scope,)), cap)
            await second.release()
            await first.release()
        finally:
            await store.close()


async def test_renewing_extends_every_reservation_this_process_holds() -> None:
    from bot.core.limits import SharedLimits
    from bot.core.store import open_store
    from tests.plugins.databases import postgres_schema

    async with postgres_schema() as url:
        store = await open_store(url)
        try:
            limits = SharedLimits(store, max_jobs=10, cooldown=0, owner="here", lease=120)
            held = [await limits.reserve(Claim(job, 1, GUILD, (), images=2), ()) for job in ("a", "b")]
            await store._query("UPDATE limit_reservations SET lease_until = 0")  # about to lapse
            before = time.time()
            await limits.renew()
            rows = await store._query("SELECT job_id, lease_until, images FROM limit_reservations ORDER BY job_id")
            assert [row["job_id"] for row in rows] == ["a", "b"]  # both renewed, none dropped as lapsed
            assert all(row["lease_until"] >= before + 119 for row in rows)
            assert [row["images"] for row in rows] == [2, 2]
            for reservation in held:
                await reservation.release()
        finally:
            await store.close()
