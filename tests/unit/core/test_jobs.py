"""JobQueue (global cap + bounded FIFO) and UserLimits (per-user cap + cooldown), with no Discord involved."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from bot.core.jobs import Cooldown, JobQueue, QueueFull, UserBusy, UserLimits, find_blocked, fold, parse_blocked_words
from bot.core.messages import error_text


async def settle(condition: Callable[[], bool], rounds: int = 200) -> None:
    """Let other tasks run until `condition()` holds; fail instead of hanging."""
    for _ in range(rounds):
        if condition():
            return
        await asyncio.sleep(0)
    raise AssertionError("condition never held")


class Holder:
    """A task that takes a slot and keeps it until released."""

    def __init__(self, queue: JobQueue, name: str, log: list[str], positions: list[int] | None = None) -> None:
        self.release = asyncio.Event()
        self.inside = False

        async def on_position(position: int) -> None:
            if positions is not None:
                positions.append(position)

        async def run() -> None:
            async with queue.slot(on_position):
                self.inside = True
                log.append(name)
                await self.release.wait()
            self.inside = False

        self.task = asyncio.create_task(run())


# --- JobQueue ---


async def test_runs_at_most_the_running_limit_at_once() -> None:
    queue = JobQueue(running=2, waiting=10)
    log: list[str] = []
    holders = [Holder(queue, str(i), log) for i in range(5)]
    await settle(lambda: queue.running == 2 and queue.waiting == 3)
    assert [h.inside for h in holders] == [True, True, False, False, False]
    for h in holders:
        h.release.set()
    await asyncio.gather(*(h.task for h in holders))
    assert (queue.running, queue.waiting) == (0, 0)


async def test_a_free_slot_goes_to_the_next_waiter() -> None:
    queue = JobQueue(running=2, waiting=10)
    log: list[str] = []
    holders = [Holder(queue, str(i), log) for i in range(3)]
    await settle(lambda: queue.waiting == 1)
    holders[1].release.set()
    await settle(lambda: holders[2].inside)
    assert (queue.running, queue.waiting) == (2, 0)
    for h in holders:
        h.release.set()
    await asyncio.gather(*(h.task for h in holders))


async def test_jobs_start_in_arrival_order() -> None:
    queue = JobQueue(running=1, waiting=10)
    order: list[int] = []

    async def job(i: int) -> None:
        async with queue.slot():
            order.append(i)
            await asyncio.sleep(0)

    await asyncio.gather(*(job(i) for i in range(6)))
    assert order == [0, 1, 2, 3, 4, 5]


async def test_a_job_with_room_starts_without_position_reports() -> None:
    queue = JobQueue(running=1, waiting=10)
    positions: list[int] = []

    async def on_position(position: int) -> None:
        positions.append(position)

    async with queue.slot(on_position):
        assert queue.running == 1
    assert (positions, queue.running) == ([], 0)


async def test_waiting_positions_are_reported_and_decrease() -> None:
    queue = JobQueue(running=1, waiting=10)
    log: list[str] = []
    first = Holder(queue, "first", log)
    await settle(lambda: first.inside)
    positions = {name: [] for name in ("a", "b", "c")}
    waiters = {name: Holder(queue, name, log, positions[name]) for name in positions}
    await settle(lambda: queue.waiting == 3)
    assert positions == {"a": [1], "b": [2], "c": [3]}
    first.release.set()
    for name in ("a", "b", "c"):
        await settle(lambda name=name: waiters[name].inside)
        waiters[name].release.set()
    await asyncio.gather(first.task, *(w.task for w in waiters.values()))
    assert positions == {"a": [1], "b": [2, 1], "c": [3, 2, 1]}
    assert log == ["first", "a", "b", "c"]


async def test_queue_full_when_running_and_waiting_are_full() -> None:
    queue = JobQueue(running=1, waiting=1)
    log: list[str] = []
    holders = [Holder(queue, str(i), log) for i in range(2)]
    await settle(lambda: queue.running == 1 and queue.waiting == 1)
    with pytest.raises(QueueFull) as caught:
        async with queue.slot():
            pytest.fail("a third job entered a full queue")
    assert caught.value.params == {"limit": 1}
    for h in holders:
        h.release.set()
    await asyncio.gather(*(h.task for h in holders))


async def test_check_room_raises_queue_full_when_full() -> None:
    queue = JobQueue(running=1, waiting=0)
    log: list[str] = []
    holder = Holder(queue, "only", log)
    await settle(lambda: holder.inside)
    with pytest.raises(QueueFull):
        queue.check_room()
    holder.release.set()
    await holder.task


async def test_check_room_passes_while_a_waiting_place_is_free() -> None:
    queue = JobQueue(running=1, waiting=1)
    log: list[str] = []
    holder = Holder(queue, "only", log)
    await settle(lambda: holder.inside)
    assert queue.check_room() is None
    holder.release.set()
    await holder.task


async def test_two_requests_for_the_last_place_get_one() -> None:
    queue = JobQueue(running=1, waiting=1)
    queue.reserve()
    queue.reserve()  # the last place: taken now, not when its job reaches the queue
    with pytest.raises(QueueFull):
        queue.reserve()


async def test_a_place_given_back_is_free_again() -> None:
    queue = JobQueue(running=1, waiting=0)
    place = queue.reserve()
    place.release()
    place.release()  # once only
    queue.reserve()
    assert queue.reserved == 1


async def test_a_reserved_place_takes_its_job_in_when_the_queue_is_full() -> None:
    queue = JobQueue(running=1, waiting=0)
    place = queue.reserve()
    with pytest.raises(QueueFull):  # a resumed job, with no place of its own
        async with queue.slot():
            pytest.fail("a job entered a queue whose every place was taken")
    async with queue.slot(place=place):
        assert (queue.running, queue.reserved) == (1, 0)
    assert queue.running == 0


async def test_queue_full_message_names_the_waiting_limit() -> None:
    error = QueueFull("queue full", limit=50)
    assert error_text(error) == "The bot is at capacity (50 images waiting). Please try again in a minute."


async def test_cancelled_waiter_leaves_the_queue() -> None:
    queue = JobQueue(running=1, waiting=5)
    log: list[str] = []
    holder = Holder(queue, "holder", log)
    waiter = Holder(queue, "waiter", log)
    await settle(lambda: queue.waiting == 1)
    waiter.task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter.task
    assert queue.waiting == 0
    holder.release.set()
    await holder.task
    assert (queue.running, queue.waiting, log) == (0, 0, ["holder"])


async def test_cancelled_waiter_does_not_leak_a_slot() -> None:
    queue = JobQueue(running=1, waiting=5)
    log: list[str] = []
    holder = Holder(queue, "holder", log)
    waiter = Holder(queue, "waiter", log)
    await settle(lambda: queue.waiting == 1)
    waiter.task.cancel()
    holder.release.set()
    await asyncio.gather(holder.task, waiter.task, return_exceptions=True)
    assert queue.running == 0
    async with queue.slot():  # the only slot is free again
        assert queue.running == 1
    assert queue.running == 0


async def test_cancelled_waiter_lets_the_one_behind_move_up() -> None:
    queue = JobQueue(running=1, waiting=5)
    log: list[str] = []
    holder = Holder(queue, "holder", log)
    middle = Holder(queue, "middle", log)
    behind_positions: list[int] = []
    behind = Holder(queue, "behind", log, behind_positions)
    await settle(lambda: queue.waiting == 2)
    middle.task.cancel()
    await asyncio.gather(middle.task, return_exceptions=True)
    await settle(lambda: behind_positions[-1] == 1)
    assert behind_positions == [2, 1]
    holder.release.set()
    await settle(lambda: behind.inside)
    behind.release.set()
    await asyncio.gather(holder.task, behind.task)
    assert (log, queue.running, queue.waiting) == (["holder", "behind"], 0, 0)


async def test_failing_job_releases_its_slot() -> None:
    queue = JobQueue(running=1, waiting=0)
    with pytest.raises(RuntimeError):
        async with queue.slot():
            raise RuntimeError("generation failed")
    assert queue.running == 0


# --- UserLimits ---


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_user_may_have_max_jobs_in_flight() -> None:
    limits = UserLimits(max_jobs=2, cooldown=0, clock=FakeClock())
    limits.admit(1)
    limits.admit(1)
    with pytest.raises(UserBusy) as caught:
        limits.admit(1)
    assert caught.value.params == {"limit": 2}


def test_user_busy_message_names_the_limit() -> None:
    limits = UserLimits(max_jobs=1, cooldown=0, clock=FakeClock())
    limits.admit(1)
    with pytest.raises(UserBusy) as caught:
        limits.admit(1)
    assert error_text(caught.value) == "You already have 1 image in progress, the most allowed. Wait for one to finish."


def test_limits_are_per_user() -> None:
    limits = UserLimits(max_jobs=1, cooldown=60, clock=FakeClock())
    limits.admit(1)
    assert callable(limits.admit(2))


def test_release_frees_a_place() -> None:
    limits = UserLimits(max_jobs=1, cooldown=0, clock=FakeClock())
    release = limits.admit(1)
    release()
    assert callable(limits.admit(1))


def test_release_is_idempotent() -> None:
    limits = UserLimits(max_jobs=2, cooldown=0, clock=FakeClock())
    release = limits.admit(1)
    limits.admit(1)
    release()
    release()  # a second call must not free the other job's place
    limits.admit(1)
    with pytest.raises(UserBusy):
        limits.admit(1)


def test_cooldown_refuses_a_second_start_too_soon() -> None:
    clock = FakeClock()
    limits = UserLimits(max_jobs=5, cooldown=5, clock=clock)
    limits.admit(1)()
    clock.now += 1
    with pytest.raises(Cooldown) as caught:
        limits.admit(1)
    assert caught.value.params == {"seconds": 4}


def test_cooldown_seconds_appear_in_the_message() -> None:
    clock = FakeClock()
    limits = UserLimits(max_jobs=5, cooldown=10, clock=clock)
    limits.admit(1)()
    clock.now += 3
    with pytest.raises(Cooldown) as caught:
        limits.admit(1)
    assert error_text(caught.value) == "Slow down a little: you can ask again in 7 s."


def test_cooldown_reports_at_least_one_second() -> None:
    clock = FakeClock()
    limits = UserLimits(max_jobs=5, cooldown=5, clock=clock)
    limits.admit(1)()
    clock.now += 4.9
    with pytest.raises(Cooldown) as caught:
        limits.admit(1)
    assert caught.value.params == {"seconds": 1}


def test_admission_after_the_cooldown() -> None:
    clock = FakeClock()
    limits = UserLimits(max_jobs=5, cooldown=5, clock=clock)
    limits.admit(1)()
    clock.now += 5
    assert callable(limits.admit(1))


def test_waiting_the_reported_cooldown_is_enough() -> None:
    clock = FakeClock()
    limits = UserLimits(max_jobs=5, cooldown=5, clock=clock)
    limits.admit(1)()
    clock.now += 2.6
    with pytest.raises(Cooldown) as caught:
        limits.admit(1)
    clock.now += caught.value.params["seconds"]
    assert callable(limits.admit(1))


def test_refused_start_does_not_restart_the_cooldown() -> None:
    clock = FakeClock()
    limits = UserLimits(max_jobs=5, cooldown=5, clock=clock)
    limits.admit(1)()
    clock.now += 3
    with pytest.raises(Cooldown):
        limits.admit(1)
    clock.now += 2
    assert callable(limits.admit(1))


def test_a_job_that_never_started_gives_its_cooldown_back() -> None:
    clock = FakeClock()
    limits = UserLimits(max_jobs=5, cooldown=5, clock=clock)
    limits.admit(1)()
    clock.now += 6
    limits.admit(1)(started=False)  # admitted, then its defer failed
    assert callable(limits.admit(1))  # cooling down from the job that ran, long over


def test_busy_user_is_refused_before_the_cooldown_is_checked() -> None:
    clock = FakeClock()
    limits = UserLimits(max_jobs=1, cooldown=5, clock=clock)
    limits.admit(1)
    with pytest.raises(UserBusy):
        limits.admit(1)


# -- blocked words ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "disguised",
    [
        "BAD",
        "ｂａｄ",  # full-width
        "b\u200bad",  # zero-width space
        "b\u200c\u200da\u2060d\ufeff",  # zero-width non-joiner, joiner, word joiner, byte order mark
        "ba\u00add",  # soft hyphen
        "b\ufe0fad",  # a variation selector (not a format character, but default-ignorable)
        "b\u0300a\u0336d\u20dd",  # combining marks: an accent, an overlay, an enclosing circle
        "bád",  # a precomposed accented letter
        "ⓑⓐⓓ",  # compatibility forms
    ],
)
def test_disguises_fold_to_the_plain_word(disguised: str) -> None:
    assert fold(disguised) == "bad"


def test_folding_keeps_letters_that_are_letters_of_their_own() -> None:
    assert fold("МОЙ") == "мой" != fold("мои")  # й is not an accented и
    assert fold("Ёлка") == "елка"  # ё folds to е: Russian often writes е for ё
    assert fold("Straße") == fold("STRASSE") == "strasse"
    assert fold("कुल") != fold("कल")  # a script's own marks (Devanagari vowel signs) stay


def test_blocked_words_are_kept_as_written_and_deduplicated_as_matched() -> None:
    assert parse_blocked_words("Cat, Big  Dog ,CAT, ｃａｔ") == ("Cat", "Big Dog")
    assert parse_blocked_words("\u200b, \u0301, ok") == ("ok",)  # folding to nothing would match everywhere


def test_a_blocked_word_is_found_as_whole_words_and_named_as_written() -> None:
    blocked = parse_blocked_words("Red Dragon, Castle")
    assert find_blocked("a ＲＥＤ\u00a0dra\u200bgon", blocked) == "Red Dragon"
    assert find_blocked("sand castles, a redragon", blocked) is None
    assert find_blocked("anything", ("\u200b",)) is None  # a stored word that folds to nothing matches nothing


def test_a_job_that_never_started_gives_its_cooldown_back_to_the_one_before() -> None:
    clock = FakeClock()
    limits = UserLimits(max_jobs=5, cooldown=10, clock=clock)
    limits.admit(1)(started=True)  # a job started at 1000
    clock.now = 1011
    limits.admit(1)(started=False)  # admitted at 1011, never started: the cooldown runs from 1000 again
    clock.now = 1012
    limits.admit(1)  # not refused: 12 s since the last start that counted
    with pytest.raises(Cooldown):
        limits.admit(1)  # this one started at 1012


def test_a_users_first_job_that_never_started_leaves_no_cooldown() -> None:
    clock = FakeClock()
    limits = UserLimits(max_jobs=5, cooldown=10, clock=clock)
    limits.admit(1)(started=False)
    limits.admit(1)  # at once: nothing counted before
