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
from typing import Any
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


@dataclass(frozen=True)
class ApiResponse:
    status: int
    content_type: str
    body: bytes

    def json(self) -> Any:
        try:
            return json.loads(self.body)
        except ValueError:
            raise BadResponse("Prodia answered malformed JSON") from None


@dataclass(frozen=True)
class GenerationResult:
    image: bytes
    info: ImageInfo
    seed: int  # the seed Prodia used
    job_id: str | None
    elapsed: float  # seconds from submit to having the bytes


class ProdiaClient:
    """Base of the v1 and v2 clients. Uses the bot's one session; never logs the key."""

    api: str

    def __init__(self, session: aiohttp.ClientSession, settings: Settings) -> None:
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

    async def generate(
        self, job: PreparedJob, progress: ProgressCallback | None = None, *, job_id: str | None = None
    ) -> GenerationResult:
        """Run one job to its image bytes within the deadline. `job_id` resumes a submitted v1 job."""
        started = time.monotonic()
        try:
            async with asyncio.timeout(self.timeout):
                image, seed, job_id = await self._run(job, progress or _ignore, job_id)
        except TimeoutError:
            raise JobTimeout(f"no result within {self.timeout:g} s", seconds=round(self.timeout)) from None
        info = inspect_image(image)
        return GenerationResult(image, info, seed, job_id, time.monotonic() - started)

    async def _run(
        self, job: PreparedJob, progress: ProgressCallback, job_id: str | None
    ) -> tuple[bytes, int, str | None]:
        raise NotImplementedError

    # -- HTTP ---------------------------------------------------------------------------------

    def _auth_headers(self) -> dict[str, str]:
        raise NotImplementedError

    async def _call(self, method: str, path: str, **kwargs: Any) -> ApiResponse:
        """One API call with bounded retries: 429 after Retry-After, 5xx and dropped connections
        after an exponential, jittered back-off. Returns a 2xx answer; raises a ProdiaError otherwise."""
        url = self.base_url + path
        headers = {**kwargs.pop("headers", {}), **self._auth_headers()}
        attempt = 0
        while True:
            try:
                async with self.session.request(method, url, headers=headers, proxy=self.proxy, **kwargs) as resp:
                    if resp.status < 400:
                        # The body is an image at most (v2), plus a little multipart framing.
                        body = await self.read_capped(resp, extra=ERROR_BODY_LIMIT)
                        return ApiResponse(resp.status, resp.headers.get("Content-Type", ""), body)
                    error = await self._error_for(resp)
                    wait = self._retry_wait(resp, attempt)
            except aiohttp.ClientError as exc:
                error = ServerError(f"{method} {path}: {type(exc).__name__}")
                wait = self._backoff(attempt)
            if wait is None or attempt >= self.max_retries or not isinstance(error, CapacityError | ServerError):
                raise error
            attempt += 1
            log.info("Prodia %s %s: %s; retry %d/%d in %.2f s", method, path, error, attempt, self.max_retries, wait)
            await self.sleep(wait)

    def _backoff(self, attempt: int) -> float:
        return self.retry_delay * 2**attempt * random.uniform(0.5, 1.0)

    def _retry_wait(self, resp: aiohttp.ClientResponse, attempt: int) -> float | None:
        if resp.status == 429:
            try:
                wait = float(resp.headers.get("Retry-After", "1"))
            except ValueError:
                wait = 1.0
            return wait if 0 <= wait <= MAX_RETRY_AFTER else None
        if resp.status in (500, 502, 503, 504):
            return self._backoff(attempt)
        return None

    async def _error_for(self, resp: aiohttp.ClientResponse) -> ProdiaError:
        body = await resp.content.read(ERROR_BODY_LIMIT)
        payload: Any = None
        with contextlib.suppress(ValueError):
            payload = json.loads(body)
        reason = self._redact(_reason(payload) or body.decode("utf-8", "replace"))[:300]
        detail = f"HTTP {resp.status} from {resp.method} {urlsplit(str(resp.url)).path}: {reason}"
        status = resp.status
        job = payload.get("job") if isinstance(payload, dict) else None
        if isinstance(job, dict) and (job.get("state") or {}).get("current") == "failed":
            error: ProdiaError = JobFailed(detail, reason=self._redact(str(job.get("error") or reason))[:300])
        elif status == 400:
            error = InvalidRequest(detail, reason=reason)
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

    async def read_capped(self, resp: aiohttp.ClientResponse, *, extra: int = 0) -> bytes:
        """Read a body, refusing it as soon as it passes the image size cap (plus `extra` bytes)."""
        limit = self.max_image_bytes + extra
        if resp.content_length is not None and resp.content_length > limit:
            raise BadResponse(f"answer of {resp.content_length} bytes is over the {limit}-byte cap")
        data = bytearray()
        async for chunk in resp.content.iter_chunked(64 * 1024):
            data += chunk
            if len(data) > limit:
                raise BadResponse(f"answer is over the {limit}-byte cap")
        return bytes(data)


def _reason(payload: Any) -> str | None:
    """Prodia's own words from an error body: `message`, `detail` or `error`."""
    if not isinstance(payload, dict):
        return None
    parts = [str(payload[k]) for k in ("message", "detail", "error") if isinstance(payload.get(k), str | int)]
    return ": ".join(parts) or None


async def _ignore(_: Progress) -> None:
    return None
