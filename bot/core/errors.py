"""One small error hierarchy. Each error names a message key; `bot.core.messages` turns it into user text.

`str(error)` is detail for logs (never a key or token); users only ever see the catalogue text.
"""

from __future__ import annotations

from typing import Any


class ImagineError(Exception):
    """Base of every error the bot explains to a user."""

    key = "error.unexpected"

    def __init__(self, detail: str = "", **params: Any) -> None:
        super().__init__(detail or self.key)
        self.params = params


class InvalidInput(ImagineError):
    """The user's input is out of range or malformed; `problem` picks the message (`input.<problem>`)."""

    def __init__(self, detail: str = "", *, problem: str, **params: Any) -> None:
        super().__init__(detail, **params)
        self.key = f"input.{problem}"


class ImageGone(ImagineError):
    """The image a job works on (a result's attachment) could not be read back."""

    key = "action.image_gone"


class ProdiaError(ImagineError):
    """Prodia did not give us an image."""

    key = "error.prodia_unavailable"
    status: int | None = None


class InvalidRequest(ProdiaError):
    """400: Prodia rejected the parameters (`params["reason"]` is Prodia's own words, key-free)."""

    key = "error.prodia_invalid_request"


class AuthError(ProdiaError):
    """401/403: the bot's key is wrong or lacks access: the owner's problem, not the user's."""

    key = "error.prodia_auth"


class QuotaError(ProdiaError):
    """402: the account has no credit or no API access."""

    key = "error.prodia_quota"


class CapacityError(ProdiaError):
    """429 after every retry: Prodia is busy."""

    key = "error.prodia_busy"


class ServerError(ProdiaError):
    """5xx or an unreachable server after every retry."""

    key = "error.prodia_unavailable"


class JobFailed(ProdiaError):
    """Prodia ran the job and reported failure."""

    key = "error.job_failed"


class NotSentAgain(ProdiaError):
    """A job cut off (by restarts) after it was sent as often as the retry policy allows: sending it again could
    bill it once more."""

    key = "error.job_interrupted"


class JobTimeout(ProdiaError):
    """The job did not finish before the deadline."""

    key = "error.job_timeout"


class BadResponse(ProdiaError):
    """Prodia answered something we cannot use: malformed JSON, no image, a foreign or oversized image."""

    key = "error.bad_response"
