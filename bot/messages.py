"""Every sentence the bot writes, one catalogue per language. English is the fallback."""

from __future__ import annotations

import logging
from typing import Any

from .errors import ImagineError

log = logging.getLogger(__name__)

EN: dict[str, str] = {
    # Errors: what happened and what the user can do.
    "error.unexpected": "Something went wrong on the bot's side. Please try again in a moment.",
    "error.prodia_unavailable": "The image service is not answering right now. Please try again in a few minutes.",
    "error.prodia_invalid_request": "The image service refused these settings ({reason}). Change them and try again.",
    "error.prodia_auth": "The bot is not set up correctly for the image service. The bot's owner has been told.",
    "error.prodia_quota": "The bot's image service account is out of credit. Please tell the bot's owner.",
    "error.prodia_busy": "The image service is busy. Please try again in a minute.",
    "error.job_failed": "The image service could not make this image. Try another prompt or seed.",
    "error.job_timeout": "The image took longer than {seconds} seconds, so the bot gave up. Please try again.",
    "error.bad_response": "The image service sent back something that is not a usable image. Please try again.",
    "input.prompt_empty": "The prompt is empty. Describe the image you want.",
    "input.too_long": "The {name} is too long: at most {limit} characters.",
    "input.range": "{name} must be between {low} and {high}.",
    "input.choice": "{name} must be one of: {allowed}.",
    "input.unknown_model": "There is no model called “{name}”. Pick one from the list.",
    # Limits.
    "limit.queue_full": "The bot is at capacity ({limit} images waiting). Please try again in a minute.",
    "limit.user_jobs": "You already have {limit} images in progress. Wait for one to finish.",
    "limit.cooldown": "Slow down a little: you can ask again in {seconds} s.",
    # Progress.
    "progress.waiting": "Waiting in the bot's queue: position {position}",
    "progress.submitted": "Sent to the image service",
    "progress.queued": "Queued at the image service",
    "progress.generating": "Generating",
    "progress.downloading": "Fetching the image",
    "progress.started": "Started {timestamp}",
    # The result.
    "field.model": "Model",
    "field.sampler": "Sampler",
    "field.steps": "Steps",
    "field.cfg": "CFG",
    "field.seed": "Seed",
    "field.aspect_ratio": "Aspect ratio",
    "field.negative_prompt": "Negative prompt",
    "aspect.square": "Square",
    "aspect.portrait": "Portrait",
    "aspect.landscape": "Landscape",
    "result.footer": "Requested by {user} · {seconds} s",
    "result.no_reaction": "React with 🔄 to reroll (the bot could not add the reaction itself here).",
    "note.unknown_model": "There is no model “{name}”, so {model} was used.",
    "note.ignored": "{model} does not use: {names}.",
    "note.steps_capped": "{model} takes at most {steps} steps, so {steps} were used instead of {asked}.",
    "reroll.started": "🔄 Rerolling for {user}…",
    # /settings.
    "settings.saved": "Saved. The defaults for this server are now:",
    "settings.reset": "The defaults for this server are back to the built-in ones.",
    "settings.show": "Defaults for this server:",
    "settings.builtin": "built-in: {value}",
    "settings.reroll.requester": "only the requester",
    "settings.reroll.anyone": "anyone",
    "settings.field.reroll": "Who may reroll",
    "settings.no_permission": "You need the Manage Server permission to change the bot's settings.",
    "settings.guild_only": "Server settings can only be changed in a server.",
}

CATALOGUES: dict[str, dict[str, str]] = {"en": EN}


def text(key: str, locale: str | None = None, **params: Any) -> str:
    """The sentence for `key` in `locale` (e.g. "ru", "en-US"), falling back to English."""
    language = (locale or "en").split("-")[0].lower()
    template = CATALOGUES.get(language, EN).get(key) or EN.get(key)
    if template is None:
        log.error("Message key %r is missing", key)
        template = EN["error.unexpected"]
    try:
        return template.format(**params)
    except (KeyError, IndexError):
        log.error("Message key %r lacks a parameter; got %s", key, sorted(params))
        return template


def error_text(error: BaseException, locale: str | None = None) -> str:
    """What a user is told about `error`: catalogue text only, never the exception's own detail."""
    if isinstance(error, ImagineError):
        return text(error.key, locale, **error.params)
    return text("error.unexpected", locale)
