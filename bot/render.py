"""What users see: progress text and the result embed, built from catalogue sentences."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import discord

from .core.catalog import UPSCALE_FACTOR, PreparedJob
from .core.messages import text
from .core.prodia import GenerationResult

REROLL_EMOJI = "\N{ANTICLOCKWISE DOWNWARDS AND UPWARDS OPEN CIRCLE ARROWS}"
EMBED_COLOUR = discord.Colour.from_rgb(124, 92, 255)
TITLE_MAX, FIELD_MAX, FOOTER_MAX, DESCRIPTION_MAX = 256, 1024, 2048, 4096
NAME_MAX = 200  # a name quoted in a sentence (a model or search as typed, a blocked word): 100 typed, escaped
BAR_WIDTH = 10
# How far along each state is, for the progress bar (Prodia v1 reports no finer progress).
STATE_PROGRESS = {"waiting": 0.0, "submitted": 0.1, "queued": 0.2, "generating": 0.5, "downloading": 0.9}


def truncate(value: str, limit: int) -> str:
    return value if len(value) <= limit else value[: limit - 1] + "…"


# What Discord's markdown could make of text someone typed, each escaped with a backslash (Discord shows the
# character alone): emphasis, code, spoilers and masked links ([text](url)) anywhere; mentions, channels,
# timestamps and custom emoji (<...>), @everyone and @here; headings, quotes and lists at the start of a line.
# A web address is kept whole (its link would carry the backslashes) but for characters that could start markup
# if Discord's own link ends sooner: it never holds [ ] < > @ | ` * or a backslash.
_MARKUP = re.compile(
    r"(?P<url>https?://[\w\-.~/?#%&=+:;,!$'()]+)|(?P<char>[\\*_~|`\[\]<>@])|^(?P<indent>[ \t]*)(?P<line>[#+-]|\d+\.)",
    re.MULTILINE,
)


def _escape(match: re.Match[str]) -> str:
    if match["url"]:
        return match["url"]
    if match["char"]:
        return "\\" + match["char"]
    line = match["line"]
    return match["indent"] + (line[:-1] + "\\." if line.endswith(".") else "\\" + line)


def shown(value: str, limit: int) -> str:
    """Text someone typed (a prompt, a negative prompt, a model name, a blocked word), fit for a message or an
    embed: markup escaped, so it reads as typed (no masked link, no mention, no formatting), and cut to `limit`
    characters with "…", never inside an escape. The one place user text is made safe to show; a footer is the
    exception (Discord renders no markup there: escapes would show)."""
    escaped = _MARKUP.sub(_escape, value)
    if len(escaped) <= limit:
        return escaped
    cut = escaped[: limit - 1]
    backslashes = len(cut) - len(cut.rstrip("\\"))
    return cut[:-1] + "…" if backslashes % 2 else cut + "…"  # an escape cut in two loses its backslash


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
    input_url: str | None = None,
    seeds: Sequence[int] | None = None,
) -> discord.Embed:
    """The result's embed; `input_url`: the upload an /imagine image: job started from, shown as its thumbnail;
    `seeds`: a batch's (`count:`), each image's in order, in place of the one seed."""
    request = job.request
    model = job.model
    embed = discord.Embed(title=shown(request.prompt, TITLE_MAX), colour=EMBED_COLOUR)
    embed.set_image(url=f"attachment://{filename}")

    def field(key: str, value: object) -> None:
        embed.add_field(name=text(f"field.{key}", locale), value=truncate(str(value), FIELD_MAX), inline=True)

    field("model", model.short_name)  # as people know it; the checkpoint's full name below, where it differs
    if model.short_name != model.name:
        field("checkpoint", model.name)
    if "sampler" not in model.ignores:
        field("sampler", request.sampler)
    field("steps", job.steps)
    if "cfg" not in model.ignores:
        field("cfg", f"{request.cfg:g}")
    if seeds is None:
        field("seed", result.seed)
    else:
        field("seeds", ", ".join(map(str, seeds)))
    field("aspect_ratio", text(f"aspect.{request.aspect_ratio}", locale))
    if request.style and "style" not in job.ignored:
        field("style", request.style)
    if request.negative_prompt and "negative_prompt" not in model.ignores:
        embed.add_field(
            name=text("field.negative_prompt", locale), value=shown(request.negative_prompt, FIELD_MAX), inline=False
        )
    if input_url:
        embed.set_thumbnail(url=input_url)
    notes = job_notes(job, locale, from_upload=bool(input_url))
    if notes:
        embed.description = truncate("\n".join(notes), DESCRIPTION_MAX)
    # A footer renders no markup or mentions: the requester's name goes in as it is (escapes would show).
    footer = text("result.footer", locale, user=requester, seconds=f"{elapsed:.1f}")
    embed.set_footer(text=truncate(footer, FOOTER_MAX))
    return embed


def job_notes(job: PreparedJob, locale: str | None, *, from_upload: bool = False) -> list[str]:
    """What changed between the request and what was generated, so nothing is silently dropped."""
    notes = []
    if job.fallback_from:
        name = shown(job.fallback_from, NAME_MAX)  # as the user typed it: escaped
        notes.append(text("note.unknown_model", locale, name=name, model=job.model.name))
    if job.ignored:
        names = ", ".join(text(f"field.{name}", locale) for name in job.ignored)
        notes.append(text("note.ignored", locale, model=job.model.name, names=names))
    if job.capped_steps is not None:
        notes.append(text("note.steps_capped", locale, model=job.model.name, asked=job.capped_steps, steps=job.steps))
    if job.kind == "transform":
        key = "note.from_upload" if from_upload else "note.variation"
        notes.append(text(key, locale, strength=f"{job.strength:g}"))
    elif job.kind == "upscale":
        notes.append(text("note.upscaled", locale, factor=UPSCALE_FACTOR))
    return notes


GALLERY_URL = "https://prodia.com/"  # embeds sharing a URL show their images as one grid (the title links there)


def gallery(first: discord.Embed, filenames: Sequence[str]) -> list[discord.Embed]:
    """`first` (a batch's result embed, its image the first) and one embed per other image, sharing one URL: Discord
    shows up to four such images as one grid under the first embed's text. One image: `first` as it is."""
    if not filenames:
        return [first]
    first.url = GALLERY_URL
    others = [discord.Embed(url=GALLERY_URL, colour=EMBED_COLOUR) for _ in filenames]
    for embed, filename in zip(others, filenames, strict=True):
        embed.set_image(url=f"attachment://{filename}")
    return [first, *others]


# -- buttons ---------------------------------------------------------------------------------------

# Under a result, in this order; `result_actions` picks those that apply.
RESULT_ACTIONS = {
    "reroll": REROLL_EMOJI,
    "edit": "\N{PENCIL}\ufe0f",
    "vary": "\N{ARTIST PALETTE}",
    "upscale": "\N{UPWARDS BLACK ARROW}\ufe0f",
    "delete": "\N{WASTEBASKET}\ufe0f",
}
CANCEL_EMOJI = "\N{HEAVY MULTIPLICATION X}\ufe0f"


def result_actions(job: PreparedJob, *, can_upscale: bool) -> tuple[str, ...]:
    """The buttons a result of `job` gets: vary where its model can, upscale where the API can; an upscaled
    result neither (it is the end of that road: a second upscale would rarely fit Discord's upload limit)."""
    hidden = set()
    if job.kind == "upscale" or not job.model.can_vary:
        hidden.add("vary")
    if job.kind == "upscale" or not can_upscale:
        hidden.add("upscale")
    return tuple(action for action in RESULT_ACTIONS if action not in hidden)


class ResultButton(
    discord.ui.DynamicItem[discord.ui.Button],
    template=r"imagine:(?P<action>reroll|edit|vary|upscale|delete)(?::(?P<image>[0-9]))?",
):
    """A button under a result. Its custom_id names only the action, and for a batch's vary and upscale the image
    (its place among the attachments, from 0): the message clicked is the result, looked up in the store like the
    🔄 reaction, so buttons of results posted before a restart work, and no view is kept in memory per result
    (discord.py stores none for a view made only of dynamic items). A click is handed on as the `result_action`
    event (`cogs.actions`)."""

    def __init__(self, action: str, label: str = "", *, image: int | None = None, row: int | None = None) -> None:
        style = discord.ButtonStyle.danger if action == "delete" else discord.ButtonStyle.secondary
        custom_id = f"imagine:{action}" if image is None else f"imagine:{action}:{image}"
        button: discord.ui.Button = discord.ui.Button(
            custom_id=custom_id, label=label or None, emoji=RESULT_ACTIONS[action], style=style, row=row
        )
        super().__init__(button)
        self.action = action
        self.image = image or 0

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction, item: discord.ui.Item, match: re.Match[str]
    ) -> ResultButton:
        return cls(match["action"], image=int(match["image"]) if match["image"] else None)

    async def callback(self, interaction: discord.Interaction) -> None:
        interaction.client.dispatch("result_action", self.action, interaction, self.image)


class CancelButton(discord.ui.DynamicItem[discord.ui.Button], template=r"imagine:cancel:(?P<job>[0-9a-f]{32})"):
    """✖️ on a job's progress message, naming the job (its journal id): a `job_cancel` event when clicked."""

    def __init__(self, job_id: str, label: str = "") -> None:
        button: discord.ui.Button = discord.ui.Button(
            custom_id=f"imagine:cancel:{job_id}", label=label or None, emoji=CANCEL_EMOJI
        )
        super().__init__(button)
        self.job_id = job_id

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction, item: discord.ui.Item, match: re.Match[str]
    ) -> CancelButton:
        return cls(match["job"])

    async def callback(self, interaction: discord.Interaction) -> None:
        interaction.client.dispatch("job_cancel", self.job_id, interaction)


PER_IMAGE = ("vary", "upscale")  # a batch's actions that work on one of its images: a button per image


def result_buttons(
    locale: str | None, actions: tuple[str, ...] = tuple(RESULT_ACTIONS), *, images: int = 1
) -> discord.ui.View:
    """The action row under a result; under a batch of `images`, a row more for each of `PER_IMAGE`, one button per
    image, numbered as the grid reads (left to right, top to bottom)."""
    view = discord.ui.View(timeout=None)
    for action in actions:
        if images == 1 or action not in PER_IMAGE:
            view.add_item(ResultButton(action, text(f"action.{action}", locale), row=0 if images > 1 else None))
    for row, action in enumerate((action for action in actions if action in PER_IMAGE and images > 1), start=1):
        for image in range(images):
            label = text(f"action.{action}_image", locale, number=image + 1)
            view.add_item(ResultButton(action, label, image=image, row=row))
    return view


def cancel_button(job_id: str, locale: str | None) -> discord.ui.View:
    """The ✖️ Cancel button under a job's progress."""
    view = discord.ui.View(timeout=None)
    view.add_item(CancelButton(job_id, text("action.cancel", locale)))
    return view
