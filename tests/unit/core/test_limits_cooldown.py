"""What a refused user is told by the limits (`bot.core.limits`): their number of jobs at once, the seconds of cooldown
left (on a clock the test moves, to the end of the cooldown and not a second past it), and which jobs in flight count
towards a user's and a DM's daily cap. On both backends and both kinds of limits (the `setup` fixture of
test_limits.py)."""

from __future__ import annotations

import asyncio

import pytest

from bot.core import jobs, limits
from bot.core.jobs import Cooldown, DmDailyCap, UserBusy, UserDailyCap
from bot.core.limits import DailyLimit
from bot.core.messages import error_text
from bot.core.store import CapScope
from tests.unit.core import test_limits
from tests.unit.core.test_limits import Setup, a_claim, a_job

setup = test_limits.setup  # the fixture: local limits on SQLite and PostgreSQL, shared ones on PostgreSQL


class SteppedClock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def time(self) -> float:
        return self.now

    def monotonic(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> SteppedClock:
    clock = SteppedClock()
    monkeypatch.setattr(limits, "time", clock)
    monkeypatch.setattr(jobs, "time", clock)
    return clock


async def started(setup: Setup, mine: limits.Limits, job_id: str, clock: SteppedClock) -> None:
    """A job of the user's that started now, and has ended."""
    reservation = await mine.reserve(a_claim(job_id), ())
    reservation.started = True
    await setup.store.add_job(a_job(job_id, created_at=clock.now))
    await reservation.release()


async def test_a_user_at_their_limit_is_told_the_limit(setup: Setup) -> None:
    mine = setup.limits(max_jobs=2)
    held = [await mine.reserve(a_claim(f"job{n}"), ()) for n in range(2)]
    with pytest.raises(UserBusy) as refused:
        await mine.reserve(a_claim("third"), ())
    assert refused.value.params["limit"] == 2
    assert "2" in error_text(refused.value)
    for reservation in held:
        await reservation.release()


async def test_the_cooldown_left_is_told_rounded_up_and_ends_on_time(setup: Setup, clock: SteppedClock) -> None:
    mine = setup.limits(max_jobs=1, cooldown=60)
    await started(setup, mine, "first", clock)
    clock.now += 59.5
    with pytest.raises(Cooldown) as waiting:
        await mine.reserve(a_claim("second"), ())
    assert waiting.value.params["seconds"] == 1  # half a second left: one, not none
    clock.now += 0.5
    await (await mine.reserve(a_claim("second"), ())).release()  # exactly over: admitted


async def test_a_reservation_released_twice_gives_its_place_back_once(setup: Setup) -> None:
    mine = setup.limits(max_jobs=1)
    first = await mine.reserve(a_claim("first"), ())
    await first.release()
    second = await mine.reserve(a_claim("second"), ())
    await first.release()  # again (a job's end and its error handler both release): not the second's place
    with pytest.raises(UserBusy):
        await mine.reserve(a_claim("third"), ())
    await second.release()


def test_the_day_starts_at_midnight_utc() -> None:
    assert limits.start_of_day(1_700_000_000) == 1_699_920_000  # 2023-11-14 22:13:20 UTC: that day's 00:00
    assert limits.start_of_day(1_699_920_000) == 1_699_920_000


def user_cap(limit: int, user: int = 1) -> tuple[DailyLimit, ...]:
    return (DailyLimit(CapScope("user", user), limit),)


def dm_cap(limit: int, user: int = 1) -> tuple[DailyLimit, ...]:
    return (DailyLimit(CapScope("dm", user), limit),)


async def test_jobs_in_flight_count_towards_their_own_users_cap_only(setup: Setup) -> None:
    mine = setup.limits()
    held = await mine.reserve(a_claim("alice", user=1, caps=user_cap(1)), user_cap(1))
    with pytest.raises(UserDailyCap):
        await mine.reserve(a_claim("alice again", user=1, caps=user_cap(1)), user_cap(1))
    bob = await mine.reserve(a_claim("bob", user=2, caps=user_cap(1, user=2)), user_cap(1, user=2))
    for reservation in (held, bob):
        await reservation.release()


async def test_a_dm_cap_counts_the_users_dm_jobs_in_flight_not_their_server_ones(setup: Setup) -> None:
    mine = setup.limits()
    in_server = await mine.reserve(a_claim("in a server", user=1), ())
    in_dm = await mine.reserve(a_claim("in a dm", user=1, guild=None, caps=dm_cap(1)), dm_cap(1))
    with pytest.raises(DmDailyCap):
        await mine.reserve(a_claim("another dm", user=1, guild=None, caps=dm_cap(1)), dm_cap(1))
    for reservation in (in_server, in_dm):
        await reservation.release()


async def test_a_reservation_names_its_job(setup: Setup) -> None:
    reservation = await setup.limits().reserve(a_claim("job-7"), ())
    assert reservation.job_id == "job-7"  # the id its journal row gets
    await reservation.release()


async def test_a_renewed_reservation_holds_past_its_first_lease(store_target, clock: SteppedClock) -> None:
    here, there = await store_target.open(), await store_target.open()
    mine = limits.SharedLimits(here, max_jobs=1, cooldown=0, owner="here", lease=120)
    theirs = limits.SharedLimits(there, max_jobs=1, cooldown=0, owner="there", lease=120)
    running = await mine.reserve(a_claim("running"), ())
    clock.now += 100
    await mine.renew()  # while its job runs
    clock.now += 100  # past the first lease, within the renewed one
    with pytest.raises(UserBusy):
        await theirs.reserve(a_claim("second"), ())
    await running.release()
    await (await theirs.reserve(a_claim("second"), ())).release()


async def test_a_job_waiting_for_a_prodia_slot_is_told_so_once(store_target, monkeypatch) -> None:
    here, there = await store_target.open(), await store_target.open()
    theirs = limits.SharedProdiaSlots(there, api_key="key", size=1, owner="there", lease=120)
    held = await theirs.take(nothing_to_say)  # the key's only slot, in another process
    mine = limits.SharedProdiaSlots(here, api_key="key", size=1, owner="here", lease=120)
    monkeypatch.setattr(limits.random, "uniform", lambda low, high: 0.0)  # try again at once
    tries, tried_five_times = 0, asyncio.Event()
    take = here.take_prodia_slot

    async def counted(*args, **kwargs):
        nonlocal tries
        tries += 1
        if tries == 5:
            tried_five_times.set()
        return await take(*args, **kwargs)

    monkeypatch.setattr(here, "take_prodia_slot", counted)
    told: list[str] = []

    async def on_wait() -> None:
        told.append("waiting")

    waiting = asyncio.create_task(mine.take(on_wait))
    await tried_five_times.wait()
    await theirs.free(held)
    assert await waiting == 0
    assert told == ["waiting"]  # once, not at every try


async def nothing_to_say() -> None:
    return None
