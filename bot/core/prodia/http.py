"""Reading Prodia's answers: bodies under a byte cap, multipart split with aiohttp's parser, and the
typed error for any non-2xx answer, with Prodia's reason in whichever shape it came."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import aiohttp

from ..errors import (
    AuthError,
    BadResponse,
    CapacityError,
    InvalidRequest,
    JobFailed,
    ProdiaError,
    QuotaError,
    ServerError,
)

MAX_RETRY_AFTER = 60.0  # seconds; a longer Retry-After is treated as "busy" at once
ERROR_BODY_LIMIT = 64 * 1024


@dataclass(frozen=True)
class ApiResponse:
    status: int
    content_type: str
    body: bytes  # the whole body; empty when it was multipart (see `parts`)
    parts: dict[str, bytes] | None = None  # a multipart body by part name
    retry_after: float | None = None  # the server's pacing hint on a 2xx answer (seconds)

    def json(self) -> Any:
        return _json(self.body, "Prodia answered malformed JSON")

    def part_json(self, name: str) -> Any:
        if self.parts is None or name not in self.parts:
            raise BadResponse(f"Prodia's answer has no {name} part")
        return _json(self.parts[name], f"Prodia's {name} part is malformed JSON")


async def read_answer(resp: aiohttp.ClientResponse, limit: int) -> ApiResponse:
    """The body of an answer, split into its parts when it is multipart; at most `limit` bytes."""
    content_type = resp.headers.get("Content-Type", "")
    retry_after = retry_after_seconds(resp.headers.get("Retry-After"))
    if content_type.lower().startswith("multipart/"):
        return ApiResponse(resp.status, content_type, b"", await read_multipart(resp, limit), retry_after)
    return ApiResponse(resp.status, content_type, await read_capped(resp, limit), None, retry_after)


async def error_for(resp: aiohttp.ClientResponse, redact: Callable[[str], str]) -> ProdiaError:
    """The typed error for a non-2xx answer, with Prodia's reason in any of its shapes: a
    multipart body whose `job` part carries `error`, JSON with `message`/`detail`/`error`, or text."""
    status = resp.status
    try:
        answer = await read_answer(resp, ERROR_BODY_LIMIT)
    except (BadResponse, aiohttp.ClientError):
        answer = ApiResponse(status, "", b"")
    job = _job_of(answer)
    if answer.parts is not None:
        reason = _reason(job) or ""
    else:
        payload: Any = None
        with contextlib.suppress(ValueError):
            payload = json.loads(answer.body)
        reason = _reason(payload) or ("" if payload is not None else answer.body.decode("utf-8", "replace"))
    reason = clean_reason(redact(reason))
    detail = f"HTTP {status} from {resp.method} {urlsplit(str(resp.url)).path}: {reason or '(no reason given)'}"
    if job is not None and ((job.get("state") or {}).get("current") == "failed" and status >= 500):
        error: ProdiaError = JobFailed(detail, reason=reason)  # it ran and failed: sending it again is no cure
    elif status in (400, 422):
        error = InvalidRequest(detail, reason=reason or f"HTTP {status}")
    elif status in (401, 403):
        error = AuthError(detail)
    elif status == 402:
        error = QuotaError(detail)
    elif status == 429:
        error = CapacityError(detail)
    elif status >= 500:
        error = ServerError(detail)
    else:
        error = BadResponse(detail)
    error.status = status
    return error


async def read_capped(resp: aiohttp.ClientResponse, limit: int) -> bytes:
    if resp.content_length is not None and resp.content_length > limit:
        raise BadResponse(f"answer of {resp.content_length} bytes is over the {limit}-byte cap")
    chunks, size = [], 0
    async for chunk in resp.content.iter_chunked(64 * 1024):
        size += len(chunk)
        if size > limit:
            raise BadResponse(f"answer is over the {limit}-byte cap")
        chunks.append(chunk)
    return b"".join(chunks)  # one copy: a growing bytearray costs twice the CPU on a 1.5 MB image


async def read_multipart(resp: aiohttp.ClientResponse, limit: int) -> dict[str, bytes]:
    """A multipart body as {part name: bytes}, read with aiohttp's parser, at most `limit` bytes in all."""
    parts: dict[str, bytes] = {}
    total = 0
    try:
        reader = aiohttp.MultipartReader.from_response(resp)
        while (part := await reader.next()) is not None:
            if not isinstance(part, aiohttp.BodyPartReader):
                raise BadResponse("nested multipart answer")
            data = bytearray()
            while chunk := await part.read_chunk(64 * 1024):
                total += len(chunk)
                if total > limit:
                    raise BadResponse(f"answer is over the {limit}-byte cap")
                data += chunk
            if part.name:
                parts.setdefault(part.name, bytes(data))
    except (ValueError, AssertionError, RuntimeError, KeyError) as exc:
        raise BadResponse(f"malformed multipart answer: {type(exc).__name__}") from None
    return parts


def clean_reason(text: str, limit: int = 300) -> str:
    """Prodia's words made safe to show: one line, no control characters, cut at a word within `limit`."""
    text = " ".join("".join(c if c.isprintable() else " " for c in text).split())
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    if " " in cut[limit // 2 :]:
        cut = cut[: cut.rindex(" ")]
    return cut.rstrip(" ,;:") + "…"


def retry_after_seconds(value: str | None) -> float | None:
    """A Retry-After in seconds (Prodia sends no dates), bounded to a sane range; None if absent or odd."""
    if value is None:
        return None
    try:
        seconds = float(value)
    except ValueError:
        return None
    return min(seconds, MAX_RETRY_AFTER) if seconds >= 0 else None


def _json(data: bytes, problem: str) -> Any:
    try:
        return json.loads(data)
    except ValueError:
        raise BadResponse(problem) from None


def _job_of(answer: ApiResponse) -> dict[str, Any] | None:
    """The job document of an answer: a multipart `job` part, or a JSON body's `job` object."""
    with contextlib.suppress(BadResponse):
        if answer.parts is not None:
            job = answer.part_json("job")
        else:
            payload = answer.json()
            job = payload.get("job") if isinstance(payload, dict) else None
        return job if isinstance(job, dict) else None
    return None


def _reason(payload: Any) -> str | None:
    """Prodia's own words from an error body: `message`, `detail` or `error`."""
    if not isinstance(payload, dict):
        return None
    parts = [str(payload[k]) for k in ("message", "detail", "error") if isinstance(payload.get(k), str | int)]
    return ": ".join(parts) or None
