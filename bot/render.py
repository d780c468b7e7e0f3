"""What users see: progress text and the result embed, built from catalogue sentences."""

from __future__ import annotations

from dataclasses import dataclass

import discord

from .core.catalog import PreparedJob
from .core.messages import text
from .core.prodia import GenerationResult

REROLL_EMOJI = "\N{ANTICLOCKWISE DOWNWARDS AND UPWARDS OPEN CIRCLE ARROWS}"
EMBED_COLOUR = discord.Colour.from_rgb(124, 92, 255)
TITLE_MAX, FIELD_MAX, FOOTER_MAX, DESCRIPTION_MAX = 256, 1024, 2048, 4096
BAR_WIDTH = 10
# How far along each state is, for the progress bar (Prodia v1 reports no finer progress).
STATE_PROGRESS = {"waiting": 0.0, "submitted": 0.1, "queued": 0.2, "generating": 0.5, "downloading": 0.9}


def truncate(value: str, limit: int) -> str:
    return value if len(value) <= limit else value[: limit - 1] + "…"


@dataclass(frozen=True)
class ProgressState:
    state: str  # a key of STATE_PROGRESS
    started_at: float  # unix time the request arrived, shown as a live relative timestamp
    position: int | None = None  # place in the bot's queue while waiting


def progress_text(progress: ProgressState, locale: str | None) -> str:
    filled = round(STATE_PROGRESS[progress.state] * BAR_WIDTH)
    bar = "▰" * filled + "▱" * (BAR_WIDTH - filled)
    status = text(f"progress.{progress.state}", locale, position=progress.position or 0)
    # Discord renders <t:…:R> as a live "12 seconds ago": the elapsed time ticks without any edit.
    since = text("progress.started", locale, timestamp=f"<t:{int(progress.started_at)}:R>")
    return f"{bar} {status}\n{since}"


def result_embed(
    job: PreparedJob,
    result: GenerationResult,
    filename: str,
    *,
    requester: str,
    elapsed: float,
    locale: str | None,
) -> discord.Embed:
    request = job.request
    model = job.model
    embed = discord.Embed(title=truncate(request.prompt, TITLE_MAX), colour=EMBED_COLOUR)
    embed.set_image(url=f"attachment://{filename}")

    def field(key: str, value: object) -> None:
        embed.add_field(name=text(f"field.{key}", locale), value=truncate(str(value), FIELD_MAX), inline=True)

    field("model", model.name)
    if "sampler" not in model.ignores:
        field("sampler", request.sampler)
    field("steps", job.steps)
    if "cfg" not in model.ignores:
        field("cfg", f"{request.cfg:g}")
    field("seed", result.seed)
    field("aspect_ratio", text(f"aspect.{request.aspect_ratio}", locale))
    if request.negative_prompt and "negative_prompt" not in model.ignores:
        embed.add_field(
            name=text("field.negative_prompt", locale), value=truncate(request.negative_prompt, FIELD_MAX), inline=False
        )
    notes = job_notes(job, locale)
    if notes:
        embed.description = truncate("\n".join(notes), DESCRIPTION_MAX)
    footer = text("result.footer", locale, user=requester, seconds=f"{elapsed:.1f}")
    embed.set_footer(text=truncate(footer, FOOTER_MAX))
    return embed


def job_notes(job: PreparedJob, locale: str | None) -> list[str]:
    """What changed between the request and what was generated, so nothing is silently dropped."""
    notes = []
    if job.fallback_from:
        notes.append(text("note.unknown_model", locale, name=job.fallback_from, model=job.model.name))
    if job.ignored:
        names = ", ".join(text(f"field.{name}", locale) for name in job.ignored)
        notes.append(text("note.ignored", locale, model=job.model.name, names=names))
    if job.capped_steps is not None:
        notes.append(text("note.steps_capped", locale, model=job.model.name, asked=job.capped_steps, steps=job.steps))
    return notes
