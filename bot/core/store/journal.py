"""The job journal's queries (table `jobs`): one row per accepted request, so a restart can finish it."""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Collection, Sequence
from typing import Any

from .records import _JOB_COLUMNS, _JOB_FIELDS, _JOB_MUTABLE, JobRecord, Row, _dump, _job_from_row

FINAL_STATES = ("delivered", "failed")
# Unfinished jobs only, through the partial index `jobs_unfinished` (0004), whose WHERE this repeats exactly.
_UNFINISHED = "state NOT IN ('delivered', 'failed')"
UNFINISHED_JOBS = f"SELECT {_JOB_COLUMNS} FROM jobs WHERE {_UNFINISHED} ORDER BY created_at, id"


class JobJournal(ABC):
    """The journal part of `Store` (a mixin): it needs only `_query`, which each backend supplies."""

    @abstractmethod
    async def _query(self, sql: str, args: Sequence[Any] = ()) -> list[Row]:
        """Supplied by each backend: see `Store._query`."""

    async def add_job(self, job: JobRecord) -> None:
        values = [_dump(job.request) if name == "request" else getattr(job, name) for name in _JOB_FIELDS]
        await self._query(f"INSERT INTO jobs ({_JOB_COLUMNS}) VALUES ({', '.join('?' * len(values))})", values)

    async def update_job(self, job_id: str, **changes: Any) -> None:
        unknown = changes.keys() - _JOB_MUTABLE
        if unknown:
            raise TypeError(f"unknown or read-only job field(s): {', '.join(sorted(unknown))}")
        changes.setdefault("updated_at", time.time())
        if changes.get("state") in FINAL_STATES:  # the interaction token is of no more use: forget the secret
            changes["interaction_token"] = None
            changes["input_url"] = None  # nor the address of the user's upload
        if "request" in changes:
            changes["request"] = _dump(changes["request"])
        assignments = ", ".join(f"{name} = ?" for name in changes)
        await self._query(f"UPDATE jobs SET {assignments} WHERE id = ?", (*changes.values(), job_id))

    async def get_job(self, job_id: str) -> JobRecord | None:
        rows = await self._query(f"SELECT {_JOB_COLUMNS} FROM jobs WHERE id = ?", (job_id,))
        return _job_from_row(rows[0]) if rows else None

    async def unfinished_jobs(
        self, guild_ids: Collection[int] | None = None, *, include_dms: bool = True
    ) -> list[JobRecord]:
        """Jobs not yet delivered or failed, oldest first; DM jobs have no guild."""
        rows = await self._query(UNFINISHED_JOBS)
        # Unfinished jobs are few, so filtering here beats an IN list as long as the guild count.
        wanted = None if guild_ids is None else set(guild_ids)
        jobs = (_job_from_row(row) for row in rows)
        return [
            job for job in jobs if (include_dms if job.guild_id is None else wanted is None or job.guild_id in wanted)
        ]

    async def claim_job(self, job_id: str, owner: str, *, lease: float) -> bool:
        """Take an unfinished job for `lease` seconds unless another owner holds an unexpired lease.

        One conditional UPDATE, so two processes never both win; the owner may renew its own lease.
        """
        now = time.time()
        rows = await self._query(
            "UPDATE jobs SET lease_owner = ?, lease_until = ?"
            " WHERE id = ? AND state NOT IN ('delivered', 'failed')"
            " AND (lease_until IS NULL OR lease_until <= ? OR lease_owner = ?) RETURNING id",
            (owner, now + lease, job_id, now, owner),
        )
        return bool(rows)

    async def release_jobs(self, owner: str) -> None:
        """Drop every lease `owner` holds (a process stopping cleanly), so the next start resumes at once."""
        await self._query("UPDATE jobs SET lease_owner = NULL, lease_until = NULL WHERE lease_owner = ?", (owner,))

    async def forget_interaction_tokens(self, issued_before: float) -> int:
        """Clear the tokens of unfinished jobs whose interaction is older than `issued_before` (unix seconds): they
        no longer work, and a resumed job then edits its reply through the channel. One UPDATE; how many."""
        rows = await self._query(
            f"UPDATE jobs SET interaction_token = NULL WHERE {_UNFINISHED}"
            " AND interaction_token IS NOT NULL AND interaction_created_at < ? RETURNING id",
            (issued_before,),
        )
        return len(rows)

    async def purge_jobs(self, before: float, *, limit: int) -> int:
        """Delete up to `limit` finished jobs created before `before` (unix seconds); how many."""
        rows = await self._query(
            "DELETE FROM jobs WHERE id IN (SELECT id FROM jobs WHERE state IN ('delivered', 'failed')"
            " AND created_at < ? LIMIT ?) RETURNING id",
            (before, limit),
        )
        return len(rows)

    async def count_images_since(self, guild_id: int, since: float) -> int:
        rows = await self._query(
            "SELECT COALESCE(SUM(images), 0) AS n FROM jobs WHERE guild_id = ? AND state IN ('generated', 'delivered')"
            " AND created_at >= ?",
            (guild_id, since),
        )
        return int(rows[0]["n"])
