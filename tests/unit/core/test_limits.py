"""A job's places taken together and given back (`bot.core.limits`), on real stores: SQLite and PostgreSQL each.

`LocalLimits` is what one process on SQLite uses and `SharedLimits` what processes on one PostgreSQL share; both
are run on both backends here, since they differ in where the places live, not in what they promise.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from bot.core.jobs import (
    Cooldown,
    DailyCap,
    DmDailyCap,
    JobQueue,
    LimitsUnavailable,
    UserBusy,
    UserDailyCap,
    UserLimits,
)
from bot.core.limits import DailyLimit, Limits, LocalLimits, SharedLimits, SharedProdiaSlots, start_of_day
from bot.core.messages import error_text
from bot.core.store import CapScope, Claim, JobRecord, SQLiteStore, Store, open_store
from tests.plugins.databases import StoreTarget, postgres_schema

GUILD, OTHER_GUILD = 10, 11


def a_claim(job_id: str, user: int = 1, guild: int | None = GUILD, caps: tuple[DailyLimit, ...] = ()) -> Claim:
    return Claim(job_id, user, guild, tuple(cap.scope for cap in caps))


def guild_cap(limit: int, guild: int = GUILD) -> tuple[DailyLimit, ...]:
    return (DailyLimit(CapScope("guild", guild), limit),)


def a_job(job_id: str, *, user: int = 1, guild: int | None = GUILD, state: str = "delivered", attempts: int = 1,
          created_at: float | None = None) -> JobRecord:  # fmt: skip
    now = time.time() if created_at is None else created_at
    return JobRecord(
        id=job_id, kind="imagine", guild_id=guild, channel_id=5, user_id=user, request={"prompt": "a fox"},
        state=state, interaction_token=None, application_id=None, interaction_created_at=None, message_id=None,
        reply_to=None, prodia_job_id=None, error=None, created_at=now, updated_at=now, attempts=attempts,
    )  # fmt: skip


def limits_of(kind: str, store: Store, *, max_jobs: int = 10, cooldown: float = 0, owner: str = "here") -> Limits:
    if kind == "local":
        return LocalLimits(store, UserLimits(max_jobs, cooldown))
    return SharedLimits(store, max_jobs=max_jobs, cooldown=cooldown, owner=owner, lease=120)


@dataclass
class Setup:
    kind: str  # "local" or "shared"
    store: Store
    url: str

    def limits(self, **options: Any) -> Limits:
        return limits_of(self.kind, self.store, **options)


# A single SQLite process keeps its limits in memory; the shared ones are for PostgreSQL.
@pytest.fixture(params=["local/sqlite", "local/postgresql", "shared/postgresql"])
async def setup(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Setup]:
    kind, backend = request.param.split("/")
    async with contextlib.AsyncExitStack() as stack:
        if backend == "sqlite":
            url = f"sqlite:///{tmp_path}/bot.sqlite3"
        else:
            url = await stack.enter_async_context(postgres_schema())
        store = await open_store(url)
        stack.push_async_callback(store.close)
        yield Setup(kind, store, url)


async def test_claims_arriving_together_never_pass_a_daily_cap(setup: Setup) -> None:
    limits = setup.limits()
    outcomes = await asyncio.gather(
        *(limits.reserve(a_claim(f"job{n}", user=n, caps=guild_cap(5)), guild_cap(5)) for n in range(8)),
        return_exceptions=True,
    )
    assert sum(isinstance(outcome, DailyCap) for outcome in outcomes) == 3
    assert len([o for o in outcomes if not isinstance(o, BaseException)]) == 5


async def test_a_journaled_job_counts_once(setup: Setup) -> None:
    limits = setup.limits()
    first = await limits.reserve(a_claim("first", caps=guild_cap(2)), guild_cap(2))
    first.started = True
    await setup.store.add_job(a_job("first", state="accepted", attempts=0))  # in flight, journaled
    second = await limits.reserve(a_claim("second", caps=guild_cap(2)), guild_cap(2))
    with pytest.raises(DailyCap):
        await limits.reserve(a_claim("third", caps=guild_cap(2)), guild_cap(2))
    await first.release()
    await second.release()


async def test_a_journaled_job_weighs_the_sends_it_may_have_been_billed_for(store: Store) -> None:
    today = start_of_day(time.time())
    for job in (
        a_job("delivered", attempts=1),
        a_job("resent", attempts=3),  # sent three times (restarts): each may be billed
        a_job("in flight", state="accepted", attempts=0),
        a_job("failed at prodia", state="failed", attempts=2),
        a_job("failed before prodia", state="failed", attempts=0),  # nothing sent, nothing billed
        a_job("yesterday", created_at=today - 60),
        a_job("elsewhere", guild=OTHER_GUILD),
    ):
        await store.add_job(job)
    assert await store.count_images([CapScope("guild", GUILD)], today) == (1 + 3 + 1 + 2,)
    assert await store.count_images([CapScope("guild", GUILD)], today, besides={"resent"}) == (4,)


async def test_each_cap_counts_its_own_images(store: Store) -> None:
    for job in (a_job("server", user=1), a_job("dm", user=1, guild=None), a_job("bob's dm", user=2, guild=None)):
        await store.add_job(job)
    scopes = [CapScope("guild", GUILD), CapScope("dm", 1), CapScope("user", 1)]
    assert await store.count_images(scopes, start_of_day(time.time())) == (1, 1, 2)


async def test_a_job_that_never_started_gives_everything_back(setup: Setup) -> None:
    limits = setup.limits(max_jobs=1, cooldown=60)
    reservation = await limits.reserve(a_claim("first", caps=guild_cap(1)), guild_cap(1))
    await reservation.release()  # its defer failed: no image, no wait, no place taken today
    again = await limits.reserve(a_claim("second", caps=guild_cap(1)), guild_cap(1))
    await again.release()


async def test_a_job_that_started_keeps_its_cooldown_and_its_place_today(setup: Setup) -> None:
    limits = setup.limits(max_jobs=1, cooldown=60)
    reservation = await limits.reserve(a_claim("first", caps=guild_cap(1)), guild_cap(1))
    with pytest.raises(UserBusy):
        await limits.reserve(a_claim("second"), ())
    reservation.started = True
    await setup.store.add_job(a_job("first"))
    await reservation.release()
    with pytest.raises(Cooldown) as waiting:
        await limits.reserve(a_claim("second"), ())
    assert 59 <= waiting.value.params["seconds"] <= 60
    with pytest.raises(DailyCap):
        await limits.reserve(a_claim("third", user=2, caps=guild_cap(1)), guild_cap(1))


async def test_a_cap_that_cannot_be_counted_refuses(setup: Setup) -> None:
    """The journal is gone (a broken database): the cap cannot be counted, so the job is not started."""
    if setup.store.backend == "sqlite":  # dropped by another connection, as another program would
        with sqlite3.connect(setup.url.removeprefix("sqlite:///")) as other:
            other.execute("DROP TABLE jobs")
    else:
        await setup.store._query("DROP TABLE jobs")
    limits = setup.limits()
    with pytest.raises(LimitsUnavailable):
        await limits.reserve(a_claim("first", caps=guild_cap(5)), guild_cap(5))
    assert error_text(LimitsUnavailable()) == (
        "Limits can't be checked right now, so nothing was started; try again in a minute."
    )


class HangingStore(SQLiteStore):
    """The real SQLite store, whose count of today's images hangs while `hang` is set."""

    hang = True

    async def count_images(self, *args: Any, **kwargs: Any) -> tuple[int, ...]:
        if self.hang:
            await asyncio.sleep(30)
        return await super().count_images(*args, **kwargs)


async def test_a_claim_cut_off_while_counting_gives_its_places_back(tmp_path: Path) -> None:
    """The pre-defer budget cancels a slow count: the user's place and cooldown are not kept."""
    store = await HangingStore.connect(str(tmp_path / "bot.sqlite3"))
    try:
        await store._migrate()
        limits = LocalLimits(store, UserLimits(max_jobs=1, cooldown=60))
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.05):
                await limits.reserve(a_claim("first", caps=guild_cap(5)), guild_cap(5))
        store.hang = False
        await (await limits.reserve(a_claim("second", caps=guild_cap(5)), guild_cap(5))).release()
    finally:
        await store.close()


async def test_shared_limits_hold_across_processes(store_target: StoreTarget) -> None:
    here, there = await store_target.open(), await store_target.open()
    mine = SharedLimits(here, max_jobs=1, cooldown=0, owner="here", lease=120)
    theirs = SharedLimits(there, max_jobs=1, cooldown=0, owner="there", lease=120)
    held = await mine.reserve(a_claim("first"), ())
    with pytest.raises(UserBusy):
        await theirs.reserve(a_claim("second"), ())
    await held.release()
    await (await theirs.reserve(a_claim("second"), ())).release()


async def test_a_dead_processes_places_lapse_with_their_lease(store_target: StoreTarget) -> None:
    here, there = await store_target.open(), await store_target.open()
    dead = SharedLimits(here, max_jobs=1, cooldown=0, owner="dead", lease=120)
    alive = SharedLimits(there, max_jobs=1, cooldown=0, owner="alive", lease=120)
    await dead.reserve(a_claim("first"), ())
    await dead.renew()  # while it lived
    with pytest.raises(UserBusy):
        await alive.reserve(a_claim("second"), ())
    await here.renew_reservations(["first"], now=time.time() - 200, lease=120)  # its last renewal, long ago
    await (await alive.reserve(a_claim("second"), ())).release()


async def test_a_reservation_that_could_not_be_ended_is_not_renewed(store: Store) -> None:
    """Its job ended but the database missed the end: the row's lease runs out, and nothing renews it meanwhile."""
    mine = SharedLimits(store, max_jobs=1, cooldown=0, owner="here", lease=120)
    running = await mine.reserve(a_claim("running", user=1), ())
    ended = await mine.reserve(a_claim("ended", user=2), ())
    await ended.release()
    soon = time.time() + 1
    await store._query(  # the row as the failed end left it
        "INSERT INTO limit_reservations (job_id, user_id, owner, created_at, lease_until)"
        " VALUES ('ended', 2, 'here', 0, ?)",
        (soon,),
    )
    await mine.renew()
    rows = await store._query("SELECT job_id, lease_until FROM limit_reservations ORDER BY job_id")
    assert [(row["job_id"], row["lease_until"] > soon) for row in rows] == [("ended", False), ("running", True)]
    await running.release()


async def test_prodia_slots_are_renewed_while_their_jobs_run(store_target: StoreTarget) -> None:
    here, there = await store_target.open(), await store_target.open()
    mine = SharedProdiaSlots(here, api_key="key", size=2, owner="here", lease=120)
    held, freed = await mine.take(nothing_to_say), await mine.take(nothing_to_say)
    await mine.free(freed)
    await here._query(  # the row as a free the database missed would have left it
        "UPDATE prodia_slots SET owner = 'here', lease_until = ? WHERE slot = ?", (time.time() + 1, freed)
    )
    await mine.renew()
    later = time.time() + 60
    assert await there.take_prodia_slot(mine.pool, 2, "there", now=later, lease=120) == freed
    assert await there.take_prodia_slot(mine.pool, 2, "there", now=later, lease=120) is None
    assert held != freed


async def test_a_clean_stop_gives_every_place_back(store_target: StoreTarget) -> None:
    here, there = await store_target.open(), await store_target.open()
    stopping = SharedLimits(here, max_jobs=1, cooldown=0, owner="stopping", lease=120)
    await stopping.reserve(a_claim("first"), ())
    slots = SharedProdiaSlots(here, api_key="key", size=1, owner="stopping", lease=120)
    await slots.take(nothing_to_say)
    await stopping.close()
    await (await SharedLimits(there, max_jobs=1, cooldown=0, owner="b", lease=120).reserve(a_claim("x"), ())).release()
    assert await there.take_prodia_slot(slots.pool, 1, "b", now=time.time(), lease=120) == 0


async def nothing_to_say() -> None:
    return None


async def test_prodia_slots_are_shared_by_every_process_with_the_key(store_target: StoreTarget) -> None:
    here, there = await store_target.open(), await store_target.open()
    mine = SharedProdiaSlots(here, api_key="key", size=2, owner="here", lease=120)
    theirs = SharedProdiaSlots(there, api_key="key", size=2, owner="there", lease=120)
    other_key = SharedProdiaSlots(there, api_key="another key", size=2, owner="there", lease=120)
    assert {await mine.take(nothing_to_say), await theirs.take(nothing_to_say)} == {0, 1}
    assert await here.take_prodia_slot(mine.pool, 2, "here", now=time.time(), lease=120) is None  # all held
    assert await other_key.take(nothing_to_say) == 0  # another key, other slots
    await theirs.free(1)
    assert await here.take_prodia_slot(mine.pool, 2, "here", now=time.time(), lease=120) == 1


async def test_a_dead_processes_prodia_slot_is_taken_once_its_lease_lapses(store_target: StoreTarget) -> None:
    here, there = await store_target.open(), await store_target.open()
    dead = SharedProdiaSlots(here, api_key="key", size=1, owner="dead", lease=120)
    assert await dead.take(nothing_to_say) == 0
    assert await there.take_prodia_slot(dead.pool, 1, "alive", now=time.time(), lease=120) is None
    assert await there.take_prodia_slot(dead.pool, 1, "alive", now=time.time() + 121, lease=120) == 0


async def test_the_first_in_line_waits_for_the_cluster_and_keeps_its_turn(store_target: StoreTarget) -> None:
    here, there = await store_target.open(), await store_target.open()
    theirs = SharedProdiaSlots(there, api_key="key", size=1, owner="there", lease=120)
    held = await theirs.take(nothing_to_say)  # another process runs a job: the key's only slot
    mine = SharedProdiaSlots(here, api_key="key", size=1, owner="here", lease=120)
    queue = JobQueue(running=2, waiting=5, shared=mine)
    order: list[str] = []
    positions: dict[str, list[int]] = {"first": [], "second": []}
    told = {"first": asyncio.Event(), "second": asyncio.Event()}

    async def job(name: str) -> None:
        async def on_position(position: int) -> None:
            positions[name].append(position)
            told[name].set()

        async with queue.slot(on_position):
            order.append(name)

    first = asyncio.create_task(job("first"))
    await asyncio.sleep(0)  # the first is in line
    second = asyncio.create_task(job("second"))  # a free slot in this process, but behind the first
    async with asyncio.timeout(10):
        await told["first"].wait()  # it found the cluster's slot taken
        await told["second"].wait()
    assert (order, positions, queue.running) == ([], {"first": [1], "second": [2]}, 0)
    await theirs.free(held)
    async with asyncio.timeout(10):
        await asyncio.gather(first, second)
    assert order == ["first", "second"]


def test_the_refusals_say_when_the_count_starts_again() -> None:
    reset = int(start_of_day(time.time()) + 86400)
    dm = DailyLimit(CapScope("dm", 1), 5).refuse(time.time())
    user = DailyLimit(CapScope("user", 1), 21).refuse(time.time())
    assert isinstance(dm, DmDailyCap) and isinstance(user, UserDailyCap)
    assert error_text(dm, "ru") == (
        "Вы исчерпали дневной лимит в 5 изображений в личных сообщениях. "
        f"Счёт начнётся заново в полночь UTC (<t:{reset}:R>)."
    )
    assert error_text(user, "ru") == (
        f"Вы исчерпали свой дневной лимит в 21 изображение. Счёт начнётся заново в полночь UTC (<t:{reset}:R>)."
    )
    assert error_text(LimitsUnavailable(), "ru") == (
        "Сейчас не получается проверить ограничения, поэтому ничего не запущено. Попробуйте ещё раз через минуту."
    )
