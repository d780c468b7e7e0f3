"""Where a job came from, as one small frozen value: who asked, where the result goes, how it may be answered.

Discord-free (plain ids and the interaction's token as text), so the pipeline, the journal and recovery
after a restart all build and read the same thing. Every entry point (the slash command, the 🔄
reaction, recovery) describes its job with one `Origin` and hands it to the pipeline.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

DEFAULT_UPLOAD_LIMIT = 10 * 1024 * 1024  # Discord's attachment limit without boosts


class JobKind(enum.StrEnum):
    IMAGINE = "imagine"  # /imagine
    REROLL = "reroll"  # 🔄 on a result (its reaction or its button)
    EDIT = "edit"  # ✏️ on a result: its request as the user changed it
    VARY = "vary"  # 🎨 on a result: its image varied (image-to-image); the result is the journal's `reply_to`
    UPSCALE = "upscale"  # ⬆️ on a result: its image upscaled


class JobState(enum.StrEnum):
    """A job's place in the journal; `delivered` and `failed` are final."""

    ACCEPTED = "accepted"  # journaled, not yet at Prodia
    SUBMITTED = "submitted"  # Prodia gave it an id
    GENERATED = "generated"  # the image is here, not yet accepted by Discord
    DELIVERED = "delivered"
    FAILED = "failed"


@dataclass(frozen=True)
class Origin:
    kind: JobKind
    user_id: int
    channel_id: int
    guild_id: int | None
    # The language of the job's public messages (progress, result, errors): in a server its language
    # (`bot.core.messages.server_language`), in a DM the requester's; journaled, so a resumed job keeps it.
    locale: str | None
    started_at: float  # unix seconds: when the user asked (progress shows the time since)
    upload_limit: int = DEFAULT_UPLOAD_LIMIT
    input_url: str | None = None  # /imagine image: where Discord keeps the upload the job starts from
    # What may be posted there (`bot.core.content`): "allow", "block" or "spoiler"; unknown: the safest.
    content_policy: str = "block"
    user_name: str = ""  # shown in the result's footer
    # The interaction whose reply shows the job, while its token lives (15 minutes); a secret.
    interaction_token: str | None = None
    application_id: int | None = None
    interaction_created_at: float | None = None
    reply_to: int | None = None  # the message a reroll answers
    reply_image: int = 0  # a vary or upscale of a batch: which of `reply_to`'s images (from 0) it works on
