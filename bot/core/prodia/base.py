"""What both Prodia clients share: retries, error mapping, the deadline and guarded image downloads."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar, cast
from urllib.parse import urljoin, urlsplit

import aiohttp

from ..catalog import PreparedJob
from ..config import Settings
from ..errors import (
    AuthError,
    BadResponse,
    CapacityError,
    InvalidRequest,
    JobFailed,
    JobTimeout,
    ProdiaError,
    QuotaError,
    ServerError,
)
from ..images import ImageInfo, inspect_image
from .polling import LearnedPolling, PollPolicy, PollRate

log = logging.getLogger(__name__)

MAX_RETRY_AFTER = 60.0  # seconds; a longer Retry-After is treated as "busy" at once
MAX_REDIRECTS = 3
ERROR_BODY_LIMIT = 64 * 1024


@dataclass(frozen=True)
class Progress:
    """A step of one job, reported to the caller's callback."""

    state: str  # "submitted", "queued", "generating" or "downloading"
    job_id: str | None = None


ProgressCallback = Callable[[Progress], Awaitable[None]]
T = TypeVar("T")


@dataclass(frozen=True)
class PollAnswer(Generic[T]):
    """One poll of a job: not done yet (`status` "queued" or "generating"), or done with `result`."""

    status: str
    result: T | None = None
    retry_after: float | None = None

    @property
    def done(self) -> bool:
        return self.status == "done"


Check = Callable[[], Awaitable[PollAnswer[T]]]


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


@dataclass(frozen=True)
class Output:
    """What a client's run of one job brings back."""

    image: bytes
    seed: int  # the seed Prodia used
    job_id: str | None = None
    price: float | None = None  # US dollars, where Prodia said (v2 `?price=true`)


@dataclass(frozen=True)
class GenerationResult:
    image: bytes
    info: ImageInfo
    seed: int  # the seed Prodia used
    job_id: str | None
    elapsed: float  # seconds from submit to having the bytes
    price: float | None = None  # US dollars, where Prodia said


class ProdiaClient:
    """Base of the v1 and v2 clients. Uses the bot's one session; never logs the key."""

    api: str

    def __init__(
        self, session: aiohttp.ClientSession, settings: Settings, *, poll_policy: PollPolicy | None = None
    ) -> None:
        self.session = session
        self.base_url = settings.prodia_base_url
        self.proxy = settings.prodia_proxy
        self.timeout = settings.prodia_timeout
        self.max_retries = settings.prodia_max_retries
        self.retry_delay = settings.prodia_retry_delay
        self.max_image_bytes = settings.max_image_bytes
        self.allowed_hosts = settings.allowed_image_hosts
        self._key = settings.prodia_api_key.reveal() if settings.prodia_api_key else ""
        self.sleep = asyncio.sleep  # how retries wait; tests observe it
        self.poll_policy = poll_policy or LearnedPolling(settings.prodia_poll_interval)
        self.poll_rate = PollRate(settings.prodia_max_polls_per_second)

    async def generate(
        self, job: PreparedJob, progress: ProgressCallback | None = None, *, job_id: str | None = None
    ) -> GenerationResult:
        """Run one job to its image bytes within the deadline. `job_id` resumes a job submitted before
        (a v1 job, or a v2 async job); the progress callback hears the id as soon as Prodia gives one."""
        started = time.monotonic()
        try:
            async with asyncio.timeout(self.timeout):
                out = await self._run(job, progress or _ignore, job_id)
        except TimeoutError:
            raise JobTimeout(f"no result within {self.timeout:g} s", seconds=round(self.timeout)) from None
        info = inspect_image(out.image)
        return GenerationResult(out.image, info, out.seed, out.job_id, time.monotonic() - started, out.price)

    async def _run(self, job: PreparedJob, progress: ProgressCallback, job_id: str | None) -> Output:
        raise NotImplementedError

    async def poll(self, job_id: str, model: str, progress: ProgressCallback, check: Check[T]) -> T:
        """Poll a submitted job until `check` returns its result; every new status goes to `progress`.

        The poll policy decides each delay; a Retry-After on a poll answer lengthens it. The duration it
        learns from is the midpoint between the last "not done" answer and the "done" poll when those
        are close, the time of the "done" poll if it was the first, and nothing otherwise."""
        started = time.monotonic()
        status: str | None = None
        retry_after: float | None = None
        not_done_at: float | None = None  # the job was still running when this answer arrived (s since started)
        while True:
            wait = self.poll_policy.delay(model, time.monotonic() - started, status or "submitted")
            await asyncio.sleep(max(wait, retry_after or 0.0))
            await self.poll_rate.turn()
            sent_at = time.monotonic() - started
            answer = await check()
            retry_after = answer.retry_after
            if answer.done:
                if not_done_at is None:  # done at the first poll: an upper bound, which lets a faster model be learned
                    self.poll_policy.observe(model, sent_at)
                elif sent_at - not_done_at <= max(0.5, 0.25 * sent_at):  # a narrow bracket: its midpoint
                    self.poll_policy.observe(model, (not_done_at + sent_at) / 2)
                # else: a wide bracket (a long sleep after early polls) says too little to learn from
                return cast(T, answer.result)
            not_done_at = time.monotonic() - started
            self.poll_policy.running(model, sent_at)
            if answer.status != status:
                status = answer.status
                await progress(Progress(status, job_id))

    # -- HTTP ---------------------------------------------------------------------------------

    def _auth_headers(self) -> dict[str, str]:
        raise NotImplementedError

    async def _call(self, method: str, path: str, *, resends: int | None = None, **kwargs: Any) -> ApiResponse:
        """One API call with bounded retries: 429 after Retry-After, 5xx and dropped connections
        after an exponential, jittered back-off. Returns a 2xx answer; raises a ProdiaError otherwise.

        `resends` caps the retries after a 5xx or a dropped connection, where the request may already
        have run (and been billed); a 429 was not scheduled, so it is retried up to `max_retries`."""
        url = self.base_url + path
        headers = {**kwargs.pop("headers", {}), **self._auth_headers()}
        resends = self.max_retries if resends is None else min(resends, self.max_retries)
        attempt = sent_again = 0
        while True:
            try:
                # No redirects: a redirect would carry the key (and the prompt) to wherever it points.
                async with self.session.request(
                    method, url, headers=headers, proxy=self.proxy, allow_redirects=False, **kwargs
                ) as resp:
                    if resp.status < 300:
                        # The body is an image at most, plus a little multipart framing or JSON.
                        return await self._read_answer(resp, self.max_image_bytes + ERROR_BODY_LIMIT)
                    error = await self._error_for(resp)
                    wait = self._retry_wait(resp, attempt)
            except aiohttp.ClientError as exc:
                error = ServerError(f"{method} {path}: {type(exc).__name__}")
                wait = self._backoff(attempt)
            if wait is None or attempt >= self.max_retries or not isinstance(error, CapacityError | ServerError):
                raise error
            if isinstance(error, ServerError):
                if sent_again >= resends:
                    raise error
                sent_again += 1
            attempt += 1
            log.info("Prodia %s %s: %s; retry %d/%d in %.2f s", method, path, error, attempt, self.max_retries, wait)
            await self.sleep(wait)

    async def _read_answer(self, resp: aiohttp.ClientResponse, limit: int) -> ApiResponse:
        """The body of an answer, split into its parts when it is multipart; at most `limit` bytes."""
        content_type = resp.headers.get("Content-Type", "")
        retry_after = retry_after_seconds(resp.headers.get("Retry-After"))
        if content_type.lower().startswith("multipart/"):
            return ApiResponse(resp.status, content_type, b"", await read_multipart(resp, limit), retry_after)
        return ApiResponse(resp.status, content_type, await self.read_capped(resp, limit=limit), None, retry_after)

    def _backoff(self, attempt: int) -> float:
        return self.retry_delay * 2**attempt * random.uniform(0.5, 1.0)

    def _retry_wait(self, resp: aiohttp.ClientResponse, attempt: int) -> float | None:
        if resp.status == 429:
            value = resp.headers.get("Retry-After", "1")
            try:
                wait = float(value)
            except ValueError:
                wait = 1.0
            return wait if 0 <= wait <= MAX_RETRY_AFTER else None
        if resp.status in (500, 502, 503, 504):
            return self._backoff(attempt)
        return None

    async def _error_for(self, resp: aiohttp.ClientResponse) -> ProdiaError:
        """The typed error for a non-2xx answer, with Prodia's reason in any of its shapes: a
        multipart body whose `job` part carries `error`, JSON with `message`/`detail`/`error`, or text."""
        status = resp.status
        try:
            answer = await self._read_answer(resp, ERROR_BODY_LIMIT)
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
        reason = clean_reason(self._redact(reason))
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

    def _redact(self, text: str) -> str:
        return text.replace(self._key, "[key]") if self._key else text

    # -- images --------------------------------------------------------------------------------

    def check_image_url(self, url: str) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or (parts.hostname or "").lower() not in self.allowed_hosts:
            raise BadResponse(f"image URL on a host that is not allowed: {parts.scheme}://{parts.hostname}")

    async def download_image(self, url: str) -> bytes:
        """GET an image from an allowed host, re-checking each redirect, capped while streaming."""
        for _ in range(MAX_REDIRECTS + 1):
            self.check_image_url(url)
            try:
                async with self.session.get(url, allow_redirects=False, proxy=self.proxy) as resp:
                    if resp.status in (301, 302, 303, 307, 308) and "Location" in resp.headers:
                        url = urljoin(url, resp.headers["Location"])
                        continue
                    if resp.status != 200:
                        raise BadResponse(f"image download answered HTTP {resp.status}")
                    return await self.read_capped(resp)
            except aiohttp.ClientError as exc:
                raise ServerError(f"image download failed: {type(exc).__name__}") from None
        raise BadResponse("image download redirected too often")

    async def read_capped(self, resp: aiohttp.ClientResponse, *, limit: int | None = None) -> bytes:
        """Read a body, refusing it as soon as it passes `limit` bytes (the image size cap by default)."""
        return await read_capped(resp, self.max_image_bytes if limit is None else limit)


async def read_capped(resp: aiohttp.ClientResponse, limit: int) -> bytes:
    if resp.content_length is not None and resp.content_length > limit:
        raise BadResponse(f"answer of {resp.content_length} bytes is over the {limit}-byte cap")
    data = bytearray()
    async for chunk in resp.content.iter_chunked(64 * 1024):
        data += chunk
        if len(data) > limit:
            raise BadResponse(f"answer is over the {limit}-byte cap")
    return bytes(data)


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


async def _ignore(_: Progress) -> None:
    return None
