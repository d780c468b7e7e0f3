"""A job's places, taken together at admission (before the reply is public) and given back when the job ends, or
at once if it never starts: the user's place in flight, the cooldown, and today's place under each daily cap.

Two ways to hold them. `LocalLimits` keeps them in this process's memory: one process on SQLite, no database
round trip unless a daily cap applies. `SharedLimits` keeps each reservation as a row, taken in one locked
transaction, so that every process on one PostgreSQL counts the others' (`SharedProdiaSlots` does the same for
the places at Prodia). Daily caps count the journal's jobs since midnight UTC plus the reservations not in it yet.
Nothing here knows Discord.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import math
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Protocol

from .errors import ImagineError
from .jobs import Cooldown, DailyCap, DmDailyCap, LimitsUnavailable, Place, UserBusy, UserDailyCap, UserLimits
from .store import CapScope, Claim, Store, StoreError, Usage

log = logging.getLogger(__name__)

CAP_ERRORS: dict[str, type[ImagineError]] = {"guild": DailyCap, "dm": DmDailyCap, "user": UserDailyCap}
SLOT_POLL = (0.05, 0.25)  # seconds between two tries for a Prodia slot another process holds (jittered)
SLOT_PATIENCE = 30.0  # seconds of store failures a job waiting for a Prodia slot bears before it gives up
_pending: set[asyncio.Task[None]] = set()  # clean-ups in flight (a reference keeps each alive until it ends)


def start_of_day(now: float) -> float:
    """Midnight UTC before `now`: the daily caps count from there."""
    return now - now % 86400


@dataclass(frozen=True)
class DailyLimit:
    scope: CapScope
    limit: int

    def refuse(self, now: float) -> ImagineError:
        reset = int(start_of_day(now) + 86400)  # shown to the user as the time it resets
        return CAP_ERRORS[self.scope.kind]("daily cap", limit=self.limit, reset=reset)


@dataclass(eq=False)
class Reservation:
    """An admitted job's places until `release()`: after the job ends, or instead of it if it never started (then
    its cooldown comes back too, and it counts for no daily cap)."""

    job_id: str  # the id its journal row gets
    give_back: Callable[[bool], Awaitable[None]]  # called once, with `started`
    place: Place | None = None  # its place in this process's queue
    started: bool = False  # journaled: from now on the journal counts it
    released: bool = field(default=False, init=False)

    async def release(self) -> None:
        if self.released:
            return
        self.released = True
        if self.place is not None:
            self.place.release()
        await self.give_back(self.started)


class Limits(Protocol):
    """`LocalLimits` or `SharedLimits`: `reserve` raises the ImagineError that refuses a claim, or takes its places."""

    async def reserve(self, claim: Claim, caps: tuple[DailyLimit, ...]) -> Reservation: ...

    async def renew(self) -> None: ...

    async def close(self) -> None: ...


class LocalLimits:
    """One process's limits, in memory; the daily caps count the journal, plus the reservations held here."""

    def __init__(self, store: Store, users: UserLimits) -> None:
        self.store = store
        self.users = users
        self._held: dict[str, Claim] = {}  # job id -> its claim, until the job ends

    async def reserve(self, claim: Claim, caps: tuple[DailyLimit, ...]) -> Reservation:
        user_release = self.users.admit(claim.user_id)  # UserBusy, Cooldown
        self._held[claim.job_id] = claim

        async def give_back(started: bool) -> None:
            self._held.pop(claim.job_id, None)
            user_release(started)

        reservation = Reservation(claim.job_id, give_back)
        try:
            if caps:
                await self._check(claim, caps)
        except BaseException:
            await reservation.release()
            raise
        return reservation

    async def _check(self, claim: Claim, caps: tuple[DailyLimit, ...]) -> None:
        # Every reservation held now counts, this one too, whether or not its job is journaled yet; the journal
        # counts the rest. Taken before the query, with nothing in between, so two requests never both pass.
        held = list(self._held.values())
        counted = {c.job_id for c in held if any(cap.scope.covers(c.user_id, c.guild_id) for cap in caps)}
        now = time.time()
        try:
            made = await self.store.count_images([cap.scope for cap in caps], start_of_day(now), besides=counted)
        except StoreError as exc:
            log.error("Could not count today's images (%s); refusing the job", exc)
            raise LimitsUnavailable("cannot count today's images") from exc
        for cap, journaled in zip(caps, made, strict=True):
            if journaled + sum(c.images for c in held if cap.scope.covers(c.user_id, c.guild_id)) > cap.limit:
                raise cap.refuse(now)

    async def renew(self) -> None:
        return None  # nothing held outside this process

    async def close(self) -> None:
        return None


class SharedLimits:
    """Limits every process on the database shares: each job's reservation is a row, taken in one transaction under
    the user's (and capped server's) lock, and leased to this process until the job ends. A process that dies
    leaves its reservations to expire with their lease."""

    def __init__(self, store: Store, *, max_jobs: int, cooldown: float, owner: str, lease: float) -> None:
        self.store = store
        self.max_jobs = max_jobs
        self.cooldown = cooldown
        self.owner = owner
        self.lease = lease
        self._held: set[str] = set()  # the job ids whose reservations this process renews

    async def reserve(self, claim: Claim, caps: tuple[DailyLimit, ...]) -> Reservation:
        now = time.time()

        def check(usage: Usage) -> None:
            if usage.in_flight >= self.max_jobs:
                raise UserBusy("too many jobs", limit=self.max_jobs)
            # At most the cooldown, whatever another host's clock said when it started the user's last job.
            wait = min(self.cooldown, (usage.last_start or -math.inf) + self.cooldown - now)
            if wait > 0:
                raise Cooldown("cooldown", seconds=math.ceil(wait))
            for cap, made in zip(caps, usage.made, strict=True):
                if made + claim.images > cap.limit:
                    raise cap.refuse(now)

        try:
            await self.store.reserve(claim, check, owner=self.owner, since=start_of_day(now), now=now, lease=self.lease)
        except StoreError as exc:
            log.error("Could not reserve the limits of a job (%s); refusing it", exc)
            raise LimitsUnavailable("cannot reserve") from exc
        except asyncio.CancelledError:  # out of time: the row may be in, and must not hold the user's place
            self._later(self.store.end_reservation(claim.job_id))
            raise
        self._held.add(claim.job_id)

        async def give_back(started: bool) -> None:
            self._held.discard(claim.job_id)  # no longer renewed, whether or not the row goes now
            try:
                await self.store.end_reservation(claim.job_id)
            except StoreError:
                log.exception("Could not end reservation %s; its lease expires on its own", claim.job_id)

        return Reservation(claim.job_id, give_back)

    async def renew(self) -> None:
        try:
            await self.store.renew_reservations(list(self._held), now=time.time(), lease=self.lease)
        except StoreError:
            log.exception("Could not renew this process's reservations; they expire on their own")

    async def close(self) -> None:
        try:
            await self.store.release_limits(self.owner)
        except StoreError:
            log.exception("Could not release this process's reservations; they expire on their own")

    @staticmethod
    def _later(work: Awaitable[None]) -> None:
        async def run() -> None:
            try:
                await work
            except StoreError:
                log.exception("A reservation clean-up failed; its lease expires on its own")

        task = asyncio.ensure_future(run())
        _pending.add(task)
        task.add_done_callback(_pending.discard)


class SharedProdiaSlots:
    """MAX_CONCURRENT_JOBS places at Prodia for every process on the database using one key: rows leased to the
    process whose job holds them, taken with SKIP LOCKED so that concurrent takers never wait on each other."""

    def __init__(self, store: Store, *, api_key: str, size: int, owner: str, lease: float) -> None:
        self.store = store
        self.pool = prodia_pool(api_key)
        self.size = size
        self.owner = owner
        self.lease = lease
        self._ready = False
        self._held: set[int] = set()  # the slots this process's jobs hold

    async def take(self, on_wait: Callable[[], Awaitable[None]]) -> int:
        """A slot, once one is free (`on_wait()` hears that this one must wait); LimitsUnavailable if the store
        keeps failing for SLOT_PATIENCE seconds."""
        failing_since: float | None = None
        told = False
        while True:
            try:
                if not self._ready:
                    await self.store.add_prodia_slots(self.pool, self.size)
                    self._ready = True
                slot = await self.store.take_prodia_slot(
                    self.pool, self.size, self.owner, now=time.time(), lease=self.lease
                )
                failing_since = None
            except StoreError as exc:
                if failing_since is None:
                    failing_since = time.monotonic()
                    log.warning("Could not take a Prodia slot (%s); trying again", exc)
                elif time.monotonic() - failing_since > SLOT_PATIENCE:
                    raise LimitsUnavailable("cannot take a Prodia slot") from exc
                slot = None
            if slot is not None:
                self._held.add(slot)
                return slot
            if not told:
                told = True
                await on_wait()
            await asyncio.sleep(random.uniform(*SLOT_POLL))  # every process's slot is taken: try again soon

    async def free(self, slot: int) -> None:
        self._held.discard(slot)
        try:
            await self.store.free_prodia_slot(self.pool, slot, self.owner)
        except StoreError:
            log.exception("Could not free Prodia slot %s; its lease expires on its own", slot)

    async def renew(self) -> None:
        try:
            await self.store.renew_prodia_slots(
                self.pool, list(self._held), self.owner, now=time.time(), lease=self.lease
            )
        except StoreError:
            log.exception("Could not renew this process's Prodia slots; they expire on their own")


def prodia_pool(api_key: str) -> str:
    """Names the slots of one Prodia key (its concurrency is the key's) without keeping the key."""
    return hashlib.sha256(f"imagine-prodia-slots:{api_key}".encode()).hexdigest()[:16]
