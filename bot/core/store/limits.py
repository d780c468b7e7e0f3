"""The admission limits' queries: today's images per cap (both backends), and the places several processes on
one database share (tables `limit_reservations` and `prodia_slots`; unused by a single SQLite process)."""

from __future__ import annotations

import hashlib
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Collection, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

from .records import Row

Query = Callable[..., Awaitable[list[Row]]]

# Whose images a daily cap counts: a server's, a user's in direct messages, a user's everywhere.
_SCOPE_SQL = {"guild": "guild_id = ?", "dm": "user_id = ? AND guild_id IS NULL", "user": "user_id = ?"}
# What a journaled job weighs: each send to Prodia may be billed (`attempts` counts them), a job in flight weighs
# its images (one, or its `count:`), and a job that failed before any send weighs nothing.
_WEIGHT = "CASE WHEN attempts > images OR state = 'failed' THEN attempts ELSE images END"


@dataclass(frozen=True)
class CapScope:
    kind: Literal["guild", "dm", "user"]
    id: int  # the guild's id, or the user's

    def covers(self, user_id: int, guild_id: int | None) -> bool:
        """Whether a job of `user_id` in `guild_id` (None: a DM) counts towards this cap."""
        if self.kind == "guild":
            return guild_id == self.id
        return user_id == self.id and (self.kind == "user" or guild_id is None)


@dataclass(frozen=True)
class Claim:
    """One job asking for its places: it becomes a reservation row until the job ends."""

    job_id: str  # the id its journal row will have
    user_id: int
    guild_id: int | None
    caps: tuple[CapScope, ...]  # the daily caps to count
    images: int = 1  # what it weighs under the caps: its `count:` (in flight, a job is one)


@dataclass(frozen=True)
class Usage:
    """What a claim finds, under its locks: the user's jobs in flight, their last start, today's images per cap."""

    in_flight: int
    last_start: float | None
    made: tuple[int, ...]  # in `Claim.caps` order


class LimitTables(ABC):
    """The limits part of `Store` (a mixin), over the backend's `_query` and `_transaction`."""

    # SQL taking a lock on one key until the transaction ends (PostgreSQL); SQLite's write transaction locks it all.
    _limit_lock: ClassVar[str | None] = None
    _skip_locked: ClassVar[str] = ""  # PostgreSQL: concurrent takers of a Prodia slot pass over each other's

    @abstractmethod
    async def _query(self, sql: str, args: Sequence[Any] = ()) -> list[Row]: ...

    @abstractmethod
    def _transaction(self) -> AbstractAsyncContextManager[Query]: ...

    async def count_images(
        self, caps: Sequence[CapScope], since: float, *, besides: Collection[str] = ()
    ) -> tuple[int, ...]:
        """Per cap, the images of the jobs journaled since `since`, leaving out the jobs `besides` (the caller
        counts those itself)."""
        skip = f" AND id NOT IN ({', '.join('?' * len(besides))})" if besides else ""
        columns, args = [], []
        for n, scope in enumerate(caps):
            columns.append(
                f"(SELECT COALESCE(SUM({_WEIGHT}), 0) FROM jobs"
                f" WHERE {_SCOPE_SQL[scope.kind]} AND created_at >= ?{skip}) AS made_{n}"
            )
            args += [scope.id, since, *besides]
        row = (await self._query(f"SELECT {', '.join(columns)}", args))[0]
        return tuple(int(row[f"made_{n}"]) for n in range(len(caps)))

    async def reserve(
        self, claim: Claim, check: Callable[[Usage], None], *, owner: str, since: float, now: float, lease: float
    ) -> None:
        """In one transaction locked per user (and per capped server): read what `claim` finds, let `check` refuse
        it by raising, else record its reservation, leased to `owner` for `lease` seconds. Today's images count
        from `since`, and include the live reservations not journaled yet."""
        locks = {_lock_key("user", claim.user_id)}
        locks |= {_lock_key(scope.kind, scope.id) for scope in claim.caps if scope.kind == "guild"}
        columns = [
            "(SELECT COUNT(*) FROM limit_reservations WHERE user_id = ? AND lease_until > ?) AS in_flight",
            "(SELECT MAX(created_at) FROM jobs WHERE user_id = ?) AS last_job",
            "(SELECT MAX(created_at) FROM limit_reservations WHERE user_id = ? AND lease_until > ?) AS last_reserved",
        ]
        args: list[Any] = [claim.user_id, now, claim.user_id, claim.user_id, now]
        for n, scope in enumerate(claim.caps):
            where = _SCOPE_SQL[scope.kind]
            columns.append(
                f"(SELECT COALESCE(SUM({_WEIGHT}), 0) FROM jobs WHERE {where} AND created_at >= ?)"
                f" + (SELECT COALESCE(SUM(images), 0) FROM limit_reservations r WHERE {where} AND lease_until > ?"
                f" AND NOT EXISTS (SELECT 1 FROM jobs j WHERE j.id = r.job_id)) AS made_{n}"
            )
            args += [scope.id, since, scope.id, now]
        async with self._transaction() as query:
            if self._limit_lock:
                for key in sorted(locks):  # one order for every process: no deadlock
                    await query(self._limit_lock, (key,))
            row = (await query(f"SELECT {', '.join(columns)}", args))[0]
            starts = [start for start in (row["last_job"], row["last_reserved"]) if start is not None]
            made = tuple(int(row[f"made_{n}"]) for n in range(len(claim.caps)))
            check(Usage(int(row["in_flight"]), max(starts, default=None), made))
            await query(
                "INSERT INTO limit_reservations (job_id, user_id, guild_id, owner, created_at, lease_until, images)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                (claim.job_id, claim.user_id, claim.guild_id, owner, now, now + lease, claim.images),
            )

    async def end_reservation(self, job_id: str) -> None:
        await self._query("DELETE FROM limit_reservations WHERE job_id = ?", (job_id,))

    async def add_prodia_slots(self, pool: str, size: int) -> None:
        """Make sure `pool` has slots 0 to size - 1 (a process with a larger MAX_CONCURRENT_JOBS adds more)."""
        values = ", ".join("(?, ?)" for _ in range(size))
        args = [value for slot in range(size) for value in (pool, slot)]
        await self._query(f"INSERT INTO prodia_slots (pool, slot) VALUES {values} ON CONFLICT DO NOTHING", args)

    async def take_prodia_slot(self, pool: str, size: int, owner: str, *, now: float, lease: float) -> int | None:
        """Take a free (or expired) slot below `size` of `pool` for `lease` seconds; None if every one is held."""
        free = "(owner IS NULL OR lease_until <= ?)"
        rows = await self._query(
            f"UPDATE prodia_slots SET owner = ?, lease_until = ? WHERE pool = ? AND {free} AND slot ="
            f" (SELECT slot FROM prodia_slots WHERE pool = ? AND slot < ? AND {free}"
            f" ORDER BY slot LIMIT 1{self._skip_locked}) RETURNING slot",
            (owner, now + lease, pool, now, pool, size, now),
        )
        return rows[0]["slot"] if rows else None

    async def free_prodia_slot(self, pool: str, slot: int, owner: str) -> None:
        await self._query(
            "UPDATE prodia_slots SET owner = NULL, lease_until = NULL WHERE pool = ? AND slot = ? AND owner = ?",
            (pool, slot, owner),
        )

    async def renew_reservations(self, job_ids: Collection[str], *, now: float, lease: float) -> None:
        """Extend the reservations of `job_ids` (jobs still running) by `lease` seconds; forget the expired ones."""
        if job_ids:
            await self._query(
                f"UPDATE limit_reservations SET lease_until = ? WHERE job_id IN ({', '.join('?' * len(job_ids))})",
                (now + lease, *job_ids),
            )
        await self._query("DELETE FROM limit_reservations WHERE lease_until <= ?", (now,))

    async def renew_prodia_slots(
        self, pool: str, slots: Collection[int], owner: str, *, now: float, lease: float
    ) -> None:
        """Extend `owner`'s hold on `slots` of `pool` (its jobs at Prodia) by `lease` seconds."""
        if slots:
            await self._query(
                f"UPDATE prodia_slots SET lease_until = ? WHERE pool = ? AND owner = ?"
                f" AND slot IN ({', '.join('?' * len(slots))})",
                (now + lease, pool, owner, *slots),
            )

    async def release_limits(self, owner: str) -> None:
        """Drop everything `owner` holds (a process stopping cleanly), so the others need not wait for the leases."""
        await self._query("DELETE FROM limit_reservations WHERE owner = ?", (owner,))
        await self._query("UPDATE prodia_slots SET owner = NULL, lease_until = NULL WHERE owner = ?", (owner,))


def _lock_key(kind: str, id: int) -> int:
    """A signed 64-bit advisory lock key for one user or server, apart from other users of the database's locks."""
    digest = hashlib.blake2b(f"imagine-limits:{kind}:{id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)
