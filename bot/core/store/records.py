"""What the store holds (guild settings, posted results, journalled jobs) and how rows encode them."""

from __future__ import annotations

import json
from dataclasses import dataclass, field, fields
from typing import Any

from ..content import AGE_RESTRICTED_POLICIES, ORDINARY_POLICIES

Row = dict[str, Any]

REROLL_MODES = ("requester", "anyone")


class StoreError(Exception):
    """The database failed (locked, disk full, unreachable); the driver's error is `__cause__`."""


@dataclass(frozen=True)
class Defaults:
    """Image defaults of one layer: a user's preferences, a channel's, a server's. None: not set (the next layer's, or
    the built-in one, applies)."""

    model: str | None = None
    sampler: str | None = None
    steps: int | None = None
    cfg: float | None = None
    negative_prompt: str | None = None
    aspect_ratio: str | None = None
    style: str | None = None


DEFAULT_FIELDS = tuple(f.name for f in fields(Defaults))  # what a server, a channel or a user may default


@dataclass(frozen=True)
class GuildSettings(Defaults):
    """A guild's image defaults and its policies."""

    reroll: str = "requester"
    blocked_words: tuple[str, ...] = ()
    daily_cap: int | None = None
    locale: str | None = None  # the language of public messages ("en", "ru"); None follows the server's locale
    nsfw: str = "block"  # results that may be sexual, in ordinary channels and DMs: block | spoiler
    nsfw_age_restricted: str = "allow"  # and in age-restricted channels: allow | block | spoiler


@dataclass(frozen=True)
class ResultRecord:
    """What a posted result was made from, keyed by its message id (for rerolls)."""

    message_id: int
    guild_id: int | None
    channel_id: int
    user_id: int
    request: dict[str, Any]
    created_at: float
    locale: str | None = None  # the language the result was posted in (None: from before it was kept)


@dataclass(frozen=True)
class JobRecord:
    """The durable job journal: one row per accepted request, so a restart can finish it."""

    id: str
    kind: str
    guild_id: int | None
    channel_id: int
    user_id: int
    request: dict[str, Any]
    state: str
    interaction_token: str | None = field(repr=False)  # a secret for its 15 minutes of life
    application_id: int | None
    interaction_created_at: float | None
    message_id: int | None
    reply_to: int | None
    prodia_job_id: str | None  # where Prodia knows it by; a batch's (`count:`): each image's, comma-joined in order
    error: str | None
    created_at: float
    updated_at: float
    attempts: int = 0
    price: float | None = None  # US dollars Prodia charged, where it said
    locale: str | None = None  # the language of its public messages (None: journaled before it was kept)
    input_url: str | None = field(default=None, repr=False)  # the upload it starts from (a signed URL), until it ends
    images: int = 1  # its `count:`: what it weighs under the daily caps


_SETTINGS_FIELDS = frozenset(f.name for f in fields(GuildSettings))
_JOB_FIELDS = tuple(f.name for f in fields(JobRecord))
_JOB_MUTABLE = frozenset(_JOB_FIELDS) - {"id", "created_at"}
_JOB_COLUMNS = ", ".join(_JOB_FIELDS)
_RESULT_COLUMNS = ", ".join(f.name for f in fields(ResultRecord))


def _dump(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def _job_from_row(row: Row) -> JobRecord:
    return JobRecord(**{**row, "request": json.loads(row["request"])})


def _result_from_row(row: Row) -> ResultRecord:
    return ResultRecord(**{**row, "request": json.loads(row["request"])})


def _settings_from_row(row: Row) -> GuildSettings:
    values = {name: value for name, value in row.items() if name in _SETTINGS_FIELDS and value is not None}
    if "blocked_words" in values:
        values["blocked_words"] = tuple(json.loads(values["blocked_words"]))
    return GuildSettings(**values)


def _encode_setting(name: str, value: Any) -> Any:
    if name == "reroll" and value not in (None, *REROLL_MODES):
        raise ValueError(f"reroll must be one of {REROLL_MODES}, not {value!r}")
    if name == "nsfw" and value not in (None, *ORDINARY_POLICIES):
        raise ValueError(f"nsfw must be one of {ORDINARY_POLICIES}, not {value!r}")
    if name == "nsfw_age_restricted" and value not in (None, *AGE_RESTRICTED_POLICIES):
        raise ValueError(f"nsfw_age_restricted must be one of {AGE_RESTRICTED_POLICIES}, not {value!r}")
    if name == "blocked_words":
        return _dump(list(value)) if value else None
    return value
