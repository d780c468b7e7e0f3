"""Admission for generation jobs: a global cap with a bounded FIFO queue, per-user limits, and the errors that
refuse a job (`bot.core.limits` takes a job's places together).

Nothing here knows Discord: callers pass ids and callbacks.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import math
import re
import time
import unicodedata
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Protocol

from .errors import ImagineError

log = logging.getLogger(__name__)


class QueueFull(ImagineError):
    key = "limit.queue_full"


class UserBusy(ImagineError):
    key = "limit.user_jobs"


class Cooldown(ImagineError):
    key = "limit.cooldown"


class BlockedWord(ImagineError):
    key = "limit.blocked_word"


class DailyCap(ImagineError):
    key = "limit.daily_cap"


class DmDailyCap(ImagineError):
    key = "limit.dm_daily_cap"


class UserDailyCap(ImagineError):
    key = "limit.user_daily_cap"


class LimitsUnavailable(ImagineError):
    """The limits could not be checked (the database failed or was too slow), so the job is not started."""

    key = "limit.unavailable"


class Restarting(ImagineError):
    """The bot is stopping (a deploy, a restart): it takes no new job now."""

    key = "limit.restarting"


PositionCallback = Callable[[int], Awaitable[None]]
MAX_BLOCKED_WORDS = 100
BLOCKED_WORD_MAX = 100  # characters in one blocked word or phrase

# Invisible characters that are not format characters (category Cf, dropped as a whole): the rest of Unicode's
# Default_Ignorable_Code_Point set (DerivedCoreProperties.txt), Hangul fillers and variation selectors among them.
_IGNORABLE = re.compile("[\u034f\u115f\u1160\u17b4\u17b5\u180b-\u180f\u3164\ufe00-\ufe0f\uffa0\U000e0100-\U000e01ef]")
# Combining marks shared by all scripts (accents, overlays, enclosing circles: what disguises a Latin, Greek or
# Cyrillic letter), plus Cyrillic's own historic ones. A script's own marks (Devanagari vowel signs, Hebrew
# points) stay: dropping them would merge different words.
_DISGUISING_MARK = re.compile("[\u0300-\u036f\u0483-\u0489\u1ab0-\u1aff\u1dc0-\u1dff\u20d0-\u20ff\ufe20-\ufe2f]")
# Letters written with such a mark that are letters of their own, not accented forms: Russian й, Belarusian ў,
# Ukrainian ї (и and й are different words: мой, мои). Ё is folded to е on purpose: Russian often writes е for ё.
_OWN_LETTERS = frozenset("йўї")


def fold(text: str) -> str:
    """`text` as blocked words are matched: "BAD", full-width "ｂａｄ", and "bad" with a zero-width space inside or
    accents on its letters all fold to "bad".

    Unicode's compatibility caseless form (NFKD, casefold, NFKD: full-width and other compatibility forms become
    their plain letters, case is folded), without format characters and the other default-ignorable ones (zero
    width spaces and joiners, soft hyphens, variation selectors), without the combining marks that only disguise a
    letter (see `_DISGUISING_MARK`, `_OWN_LETTERS`), composed again (NFC), runs of white space made one space."""
    decomposed = unicodedata.normalize("NFKD", unicodedata.normalize("NFKD", text).casefold())
    kept: list[str] = []
    for char in decomposed:
        if unicodedata.category(char) == "Cf" or _IGNORABLE.match(char):
            continue
        if _DISGUISING_MARK.match(char):
            if kept and (letter := unicodedata.normalize("NFC", kept[-1] + char)) in _OWN_LETTERS:
                kept[-1] = letter
            continue
        kept.append(char)
    return " ".join(unicodedata.normalize("NFC", "".join(kept)).split())


def parse_blocked_words(raw: str) -> tuple[str, ...]:
    """ "Cat, Big  Dog ,CAT" -> ("Cat", "Big Dog"): comma-separated, trimmed, kept as written (a refusal names the
    word the way the server wrote it), de-duplicated as they are matched (`fold`); a word that folds to nothing
    (only invisible characters or marks) is dropped, since it would match everywhere."""
    words: dict[str, str] = {}
    for part in raw.split(","):
        word = " ".join(part.split())[:BLOCKED_WORD_MAX]
        key = fold(word)
        if key and key not in words:
            words[key] = word
    return tuple(words.values())[:MAX_BLOCKED_WORDS]


@functools.lru_cache(maxsize=4096)
def _blocked_pattern(word: str) -> re.Pattern[str] | None:
    folded = fold(word)
    return re.compile(rf"(?<!\w){re.escape(folded)}(?!\w)") if folded else None


def find_blocked(text: str, blocked: tuple[str, ...]) -> str | None:
    """The first blocked word or phrase (as the server wrote it) found in `text` as whole words, both compared in
    their `fold`ed form; None if none."""
    if not blocked:
        return None
    folded = fold(text)
    for word in blocked:
        pattern = _blocked_pattern(word)
        if pattern is not None and pattern.search(folded):
            return word
    return None


class SharedSlots(Protocol):
    """Running places shared with other processes (`bot.core.limits.SharedProdiaSlots`)."""

    async def take(self, on_wait: Callable[[], Awaitable[None]]) -> int: ...

    async def free(self, slot: int) -> None: ...


class Place:
    """Places in the queue taken at admission, one per image of the job; each image takes one into
    `JobQueue.slot`, and `release()` gives back those never taken (its defer failed, its request did not prepare,
    an image ended before its turn)."""

    def __init__(self, queue: JobQueue, count: int = 1) -> None:
        self.queue = queue
        self.count = count  # places still held

    @property
    def held(self) -> bool:
        return self.count > 0

    def take(self) -> bool:
        """One of the places, for an image now in `slot`; False if none is left."""
        if not self.count:
            return False
        self.count -= 1
        self.queue.reserved -= 1
        return True

    def release(self) -> None:
        self.queue.reserved -= self.count
        self.count = 0


class JobQueue:
    """At most `running` jobs at Prodia at once; at most `waiting` more wait behind them, first come first served.

    With `shared`, a job at the head of this process's queue also takes one of the places all processes share
    (the cluster's MAX_CONCURRENT_JOBS), waiting there without losing its turn here."""

    def __init__(self, running: int, waiting: int, shared: SharedSlots | None = None) -> None:
        self.running_limit = running
        self.waiting_limit = waiting
        self.shared = shared
        self.running = 0
        self.reserved = 0  # places taken at admission whose job has not reached `slot` yet
        self._waiters: deque[object] = deque()
        self._changed = asyncio.Event()

    @property
    def waiting(self) -> int:
        return len(self._waiters)

    def check_room(self, count: int = 1) -> None:
        """Raise QueueFull now if `count` new images could neither run nor wait."""
        if self.running + self.waiting + self.reserved + count > self.running_limit + self.waiting_limit:
            raise QueueFull("queue full", limit=self.waiting_limit)

    def reserve(self, count: int = 1) -> Place:
        """Take `count` places now (one per image), or raise QueueFull: two jobs asking for the last place never
        both get it."""
        self.check_room(count)
        self.reserved += count
        return Place(self, count)

    @contextlib.asynccontextmanager
    async def slot(
        self, on_position: PositionCallback | None = None, *, place: Place | None = None
    ) -> AsyncIterator[None]:
        """Hold one running slot for the body; `on_position(n)` hears each new place in the queue while waiting.
        A job admitted with a `place` uses it; one without (resumed after a restart) needs a free one now."""
        if place is None or not place.take():
            self.check_room()
        ticket = object()
        self._waiters.append(ticket)
        shared_slot = None
        try:
            reported = None
            while not (self._waiters[0] is ticket and self.running < self.running_limit):
                position = self._waiters.index(ticket) + 1
                if on_position is not None and position != reported:
                    reported = position
                    await on_position(position)
                    continue  # the queue may have moved while we reported
                await self._changed.wait()
            if self.shared is not None:  # first here: wait for the cluster, keeping our turn

                async def first_in_line() -> None:
                    if on_position is not None and reported != 1:
                        await on_position(1)

                shared_slot = await self.shared.take(first_in_line)
            self._waiters.popleft()
            self.running += 1
        except BaseException:
            self._waiters.remove(ticket)
            self._notify()
            raise
        self._notify()
        try:
            yield
        finally:
            if self.shared is not None and shared_slot is not None:
                await self.shared.free(shared_slot)  # before our own waiters look: the first may take it
            self.running -= 1
            self._notify()

    def _notify(self) -> None:
        # Wake every waiter to re-check its place; a fresh event serves the next change.
        self._changed.set()
        self._changed = asyncio.Event()


class UserLimits:
    """Per user: at most `max_jobs` jobs in flight (a `count:4` request is one, as a grid is one job in other bots)
    and `cooldown` seconds between two starts."""

    def __init__(self, max_jobs: int, cooldown: float, clock: Callable[[], float] | None = None) -> None:
        self.max_jobs = max_jobs
        self.cooldown = cooldown
        self.clock = clock or (lambda: time.monotonic())  # looked up per call: tests swap the clock
        self._in_flight: dict[int, int] = {}
        self._last_start: dict[int, float] = {}

    def admit(self, user_id: int) -> Callable[..., None]:
        """Admit one job of `user_id` (or raise UserBusy / Cooldown); call the returned function when it ends,
        with `started=False` if it never started (its cooldown is then given back too)."""
        if self._in_flight.get(user_id, 0) >= self.max_jobs:
            raise UserBusy("too many jobs", limit=self.max_jobs)
        now = self.clock()
        wait = self._last_start.get(user_id, -float("inf")) + self.cooldown - now
        if wait > 0:
            raise Cooldown("cooldown", seconds=math.ceil(wait))  # rounded up: waiting that long is enough
        before = self._last_start.get(user_id)
        self._last_start[user_id] = now
        self._in_flight[user_id] = self._in_flight.get(user_id, 0) + 1
        released = False

        def release(started: bool = True) -> None:
            nonlocal released
            if not released:
                released = True
                self._in_flight[user_id] -= 1
                if not self._in_flight[user_id]:
                    del self._in_flight[user_id]
                if not started and self._last_start.get(user_id) == now:  # no later start since: undo ours
                    if before is None:
                        del self._last_start[user_id]
                    else:
                        self._last_start[user_id] = before

        return release
