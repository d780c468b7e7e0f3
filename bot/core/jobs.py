"""Admission for generation jobs: a global cap with a bounded FIFO queue, and per-user limits.

Nothing here knows Discord: callers pass ids and callbacks.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import re
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable

from .errors import ImagineError
from .store import GuildSettings, Store, StoreError

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


class Restarting(ImagineError):
    """The bot is stopping (a deploy, a restart): it takes no new job now."""

    key = "limit.restarting"


PositionCallback = Callable[[int], Awaitable[None]]
MAX_BLOCKED_WORDS = 100
BLOCKED_WORD_MAX = 100  # characters in one blocked word or phrase


def parse_blocked_words(raw: str) -> tuple[str, ...]:
    """ "cat, Big Dog ,cat" -> ("cat", "big dog"): comma-separated, trimmed, lower-cased, de-duplicated."""
    words: dict[str, None] = {}
    for part in raw.split(","):
        word = " ".join(part.split()).lower()
        if word:
            words[word[:BLOCKED_WORD_MAX]] = None
    return tuple(words)[:MAX_BLOCKED_WORDS]


def find_blocked(prompt: str, blocked: tuple[str, ...]) -> str | None:
    """The first blocked word or phrase found in `prompt` as whole words, ignoring case; None if none."""
    for word in blocked:
        if re.search(rf"(?<!\w){re.escape(word)}(?!\w)", prompt, re.IGNORECASE):
            return word
    return None


async def check_guild_limits(store: Store, guild_id: int, settings: GuildSettings, prompt: str) -> None:
    """Raise BlockedWord or DailyCap if the guild's own limits refuse this prompt now (a store that
    cannot count does not block: logged, and the image goes ahead)."""
    if word := find_blocked(prompt, settings.blocked_words):
        raise BlockedWord("blocked word", word=word)
    if settings.daily_cap:
        try:
            made = await store.count_images_since(guild_id, start_of_day(time.time()))
        except StoreError:
            log.exception("Could not count today's images of guild %s; not capping", guild_id)
            return
        if made >= settings.daily_cap:
            raise DailyCap("daily cap", limit=settings.daily_cap)


def start_of_day(now: float) -> float:
    """Midnight UTC before `now`: the daily cap counts from there."""
    return now - now % 86400


class JobQueue:
    """At most `running` jobs at Prodia at once; at most `waiting` more wait behind them, first come first served."""

    def __init__(self, running: int, waiting: int) -> None:
        self.running_limit = running
        self.waiting_limit = waiting
        self.running = 0
        self._waiters: deque[object] = deque()
        self._changed = asyncio.Event()

    @property
    def waiting(self) -> int:
        return len(self._waiters)

    def check_room(self) -> None:
        """Raise QueueFull now if a new job could neither run nor wait."""
        if self.running >= self.running_limit and self.waiting >= self.waiting_limit:
            raise QueueFull("queue full", limit=self.waiting_limit)

    @contextlib.asynccontextmanager
    async def slot(self, on_position: PositionCallback | None = None) -> AsyncIterator[None]:
        """Hold one running slot for the body; `on_position(n)` hears each new place in the queue while waiting."""
        self.check_room()
        ticket = object()
        self._waiters.append(ticket)
        try:
            reported = None
            while not (self._waiters[0] is ticket and self.running < self.running_limit):
                position = self._waiters.index(ticket) + 1
                if on_position is not None and position != reported:
                    reported = position
                    await on_position(position)
                    continue  # the queue may have moved while we reported
                await self._changed.wait()
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
            self.running -= 1
            self._notify()

    def _notify(self) -> None:
        # Wake every waiter to re-check its place; a fresh event serves the next change.
        self._changed.set()
        self._changed = asyncio.Event()


class UserLimits:
    """Per user: at most `max_jobs` in flight and `cooldown` seconds between two starts."""

    def __init__(self, max_jobs: int, cooldown: float, clock: Callable[[], float] | None = None) -> None:
        self.max_jobs = max_jobs
        self.cooldown = cooldown
        self.clock = clock or (lambda: time.monotonic())  # looked up per call: tests swap the clock
        self._in_flight: dict[int, int] = {}
        self._last_start: dict[int, float] = {}

    def admit(self, user_id: int) -> Callable[[], None]:
        """Admit one job of `user_id` (or raise UserBusy / Cooldown); call the returned function when it ends."""
        if self._in_flight.get(user_id, 0) >= self.max_jobs:
            raise UserBusy("too many jobs", limit=self.max_jobs)
        now = self.clock()
        wait = self._last_start.get(user_id, -float("inf")) + self.cooldown - now
        if wait > 0:
            raise Cooldown("cooldown", seconds=math.ceil(wait))  # rounded up: waiting that long is enough
        self._last_start[user_id] = now
        self._in_flight[user_id] = self._in_flight.get(user_id, 0) + 1
        released = False

        def release() -> None:
            nonlocal released
            if not released:
                released = True
                self._in_flight[user_id] -= 1
                if not self._in_flight[user_id]:
                    del self._in_flight[user_id]

        return release
