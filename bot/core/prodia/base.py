"""What both Prodia clients share: retries, the deadline, the poll loop and guarded image downloads."""

from __future__ import annotations

import asyncio
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
    BadResponse,
    CapacityError,
    JobTimeout,
    NotSentAgain,
    ProdiaError,
    ServerError,
)
from ..images import ImageInfo, inspect_image
from .http import ERROR_BODY_LIMIT, MAX_RETRY_AFTER, ApiResponse, error_for, read_answer, read_capped
from .polling import HazardPolling, PollPolicy, PollRate

log = logging.getLogger(__name__)

MAX_REDIRECTS = 3


@dataclass(frozen=True)
class Progress:
    """A step of one job, reported to the caller's callback."""

    state: str  # "submitted", "queued", "generating" or "downloading"
    job_id: str | None = None


ProgressCallback = Callable[[Progress], Awaitable[None]]
T = TypeVar("T")


@dataclass
class Sends:
    """How often one job has been sent to Prodia (each send may be billed), across the runs of the job.

    `earlier`: the sends of runs before this one, as the journal counted them (a restart cut them off, so each
    may have run); `record` hears the new total before each send, so the journal counts a send before it leaves."""

    earlier: int = 0
    record: Callable[[int], Awaitable[None]] | None = None
    sent: int = 0  # sends in this run

    @property
    def total(self) -> int:
        return self.earlier + self.sent

    async def spend(self) -> None:
        self.sent += 1
        if self.record is not None:
            await self.record(self.total)


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


class ProdiaObserver:
    """Hears what a client does, for the bot's metrics; this one hears nothing. (The core knows no metrics library:
    the bot hands in an observer that records.)"""

    def polled(self) -> None:
        """One poll of a submitted job is about to be sent."""

    def retrying(self, error: ProdiaError) -> None:
        """A request failed with `error` (429, 5xx, dropped) and will be sent again."""


class ProdiaClient:
    """Base of the v1 and v2 clients. Uses the bot's one session; never logs the key."""

    api: str

    def __init__(
        self,
        session: aiohttp.ClientSession,
        settings: Settings,
        *,
        poll_policy: PollPolicy | None = None,
        observer: ProdiaObserver | None = None,
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
        self.poll_policy = poll_policy or HazardPolling(settings.prodia_poll_interval)
        self.poll_rate = PollRate(settings.prodia_max_polls_per_second)
        self._asleep: dict[str, set[asyncio.Future[bool]]] = {}  # per model: its pollers' sleeps (woken on relearning)
        self.observer = observer or ProdiaObserver()

    async def generate(
        self,
        job: PreparedJob,
        progress: ProgressCallback | None = None,
        *,
        job_id: str | None = None,
        sends: Sends | None = None,
    ) -> GenerationResult:
        """Run one job to its image bytes within the deadline. `job_id` resumes a job submitted before
        (a v1 job, or a v2 async job): it is never sent again; the progress callback hears the id as soon as
        Prodia gives one. `sends` counts the job's sends across its runs (see `_send_job`)."""
        started = time.monotonic()
        try:
            async with asyncio.timeout(self.timeout):
                out = await self._run(job, progress or _ignore, job_id, sends or Sends())
        except TimeoutError:
            raise JobTimeout(f"no result within {self.timeout:g} s", seconds=round(self.timeout)) from None
        info = await asyncio.to_thread(inspect_image, out.image)  # reads the whole image: off the event loop
        return GenerationResult(out.image, info, out.seed, out.job_id, time.monotonic() - started, out.price)

    async def _run(self, job: PreparedJob, progress: ProgressCallback, job_id: str | None, sends: Sends) -> Output:
        raise NotImplementedError

    async def classify(self, image: bytes) -> tuple[str, float | None] | None:
        """Prodia's NSFW label of `image` (neutral, low, medium, high) and what the check cost; None where this
        API has no classifier (v1). ProdiaError if it failed."""
        return None

    async def poll(self, job_id: str, model: str, progress: ProgressCallback, check: Check[T]) -> T:
        """Poll a submitted job until `check` returns its result; every new status goes to `progress`.

        The poll policy decides each delay and learns from what each poll found; a Retry-After on a poll
        answer sets the earliest time of the next poll. When a job's answer makes the policy relearn its model
        (its jobs run much shorter than it thought), the model's sleeping pollers wake and plan again."""
        started = time.monotonic()
        status: str | None = None
        not_before = 0.0  # no poll before this (s since started): the last Retry-After
        not_done_at: float | None = None  # the job was still running when this answer arrived (s since started)
        while True:
            elapsed = time.monotonic() - started
            wait = max(self.poll_policy.delay(model, elapsed, status or "submitted"), not_before - elapsed)
            if not await self._sleep_unless_relearned(model, wait):
                continue
            await self.poll_rate.turn()
            self.observer.polled()
            sent_at = time.monotonic() - started
            answer = await check()
            if answer.retry_after:
                not_before = time.monotonic() - started + answer.retry_after
            if answer.done:
                if self.poll_policy.finished(model, not_done_at, sent_at):
                    for sleep in self._asleep.pop(model, ()):
                        if not sleep.done():
                            sleep.set_result(False)
                return cast(T, answer.result)
            not_done_at = time.monotonic() - started
            self.poll_policy.running(model, sent_at)
            if answer.status != status:
                status = answer.status
                await progress(Progress(status, job_id))

    async def _sleep_unless_relearned(self, model: str, seconds: float) -> bool:
        """Sleep `seconds`; False if woken before because the policy relearned `model` (the delay is stale).
        A future and a timer, as `asyncio.sleep` is made (no task per sleep), with a timer callback of the same
        name, so that tools which recognise a sleeping task by it (simcord's settlement) see one."""
        if seconds <= 0:
            return True
        loop = asyncio.get_running_loop()
        sleep: asyncio.Future[bool] = loop.create_future()
        timer = loop.call_later(seconds, _set_result_unless_cancelled, sleep, True)
        sleepers = self._asleep.setdefault(model, set())
        sleepers.add(sleep)
        try:
            return await sleep
        finally:
            timer.cancel()
            sleepers.discard(sleep)
            if not sleepers and self._asleep.get(model) is sleepers:
                del self._asleep[model]

    # -- HTTP ---------------------------------------------------------------------------------

    def _auth_headers(self) -> dict[str, str]:
        raise NotImplementedError

    async def _send_job(
        self, sends: Sends, method: str, path: str, *, resends: int | None = None, **kwargs: Any
    ) -> ApiResponse:
        """Send a job to Prodia (a submission: it may be billed), by `_call`'s retry policy over the job's whole life:
        at most 1 + `max_retries` sends in all, and at most 1 + `resends` that may have run. A send of an earlier
        run (cut off by a restart) counts as one that may have run, so restarts never add to what the policy allows.
        Each send is counted (`sends.spend`, journaled) before it leaves."""
        resends = self.max_retries if resends is None else min(resends, self.max_retries)
        retries_left = self.max_retries - sends.total
        resends_left = min(resends - sends.earlier, retries_left)
        if retries_left < 0 or resends_left < 0:
            raise NotSentAgain(f"{method} {path}: sent {sends.total} times already; not sent again")
        return await self._call(
            method, path, resends=resends_left, retries=retries_left, before_send=sends.spend, **kwargs
        )

    async def _call(
        self,
        method: str,
        path: str,
        *,
        resends: int | None = None,
        retries: int | None = None,
        before_send: Callable[[], Awaitable[None]] | None = None,
        **kwargs: Any,
    ) -> ApiResponse:
        """One API call with bounded retries: 429 after Retry-After, 5xx and dropped connections
        after an exponential, jittered back-off. Returns a 2xx answer; raises a ProdiaError otherwise.

        `retries` caps the retries (`max_retries` at most); `resends` caps those after a 5xx or a dropped
        connection, where the request may already have run (and been billed); a 429 was not scheduled, so it is
        retried up to `retries`. `before_send` is awaited before each send, the first included."""
        url = self.base_url + path
        headers = {**kwargs.pop("headers", {}), **self._auth_headers()}
        retries = self.max_retries if retries is None else min(retries, self.max_retries)
        resends = retries if resends is None else min(resends, retries)
        attempt = sent_again = 0
        while True:
            if before_send is not None:
                await before_send()
            try:
                # No redirects: a redirect would carry the key (and the prompt) to wherever it points.
                async with self.session.request(
                    method, url, headers=headers, proxy=self.proxy, allow_redirects=False, **kwargs
                ) as resp:
                    if resp.status < 300:
                        # The body is an image at most, plus a little multipart framing or JSON.
                        return await read_answer(resp, self.max_image_bytes + ERROR_BODY_LIMIT)
                    error = await error_for(resp, self._redact)
                    wait = self._retry_wait(resp, attempt)
            except aiohttp.ClientError as exc:
                error = ServerError(f"{method} {path}: {type(exc).__name__}")
                wait = self._backoff(attempt)
            if wait is None or attempt >= retries or not isinstance(error, CapacityError | ServerError):
                raise error
            if isinstance(error, ServerError):
                if sent_again >= resends:
                    raise error
                sent_again += 1
            attempt += 1
            self.observer.retrying(error)
            log.info("Prodia %s %s: %s; retry %d/%d in %.2f s", method, path, error, attempt, retries, wait)
            await self.sleep(wait)

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

    def _redact(self, text: str) -> str:
        return text.replace(self._key, "[key]") if self._key else text

    # -- images --------------------------------------------------------------------------------

    def check_image_url(self, url: str) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or (parts.hostname or "").lower() not in self.allowed_hosts:
            raise BadResponse(f"image URL on a host that is not allowed: {parts.scheme}://{parts.hostname}")

    async def download_image(self, url: str) -> bytes:
        """GET an image from an allowed host, re-checking each redirect, capped while streaming. A 429, a 5xx or a
        dropped connection is tried again (at most PRODIA_MAX_RETRIES times, waiting as `_call` waits): the job is
        done and paid for by then, and a download is not billed."""
        attempt = 0
        while True:
            try:
                return await self._download(url, attempt)
            except _TryAgain as again:
                if attempt >= self.max_retries:
                    raise again.error from None
                attempt += 1
                self.observer.retrying(again.error)
                log.info("Prodia image download: %s; retry %d/%d in %.2f s", again.error, attempt, self.max_retries,
                         again.wait)  # fmt: skip
                await self.sleep(again.wait)

    async def _download(self, url: str, attempt: int) -> bytes:
        for _ in range(MAX_REDIRECTS + 1):
            self.check_image_url(url)
            try:
                async with self.session.get(url, allow_redirects=False, proxy=self.proxy) as resp:
                    if resp.status in (301, 302, 303, 307, 308) and "Location" in resp.headers:
                        url = urljoin(url, resp.headers["Location"])
                        continue
                    if resp.status != 200:
                        problem = f"image download answered HTTP {resp.status}"
                        wait = self._retry_wait(resp, attempt)
                        if wait is None:
                            raise BadResponse(problem)
                        raise _TryAgain(CapacityError(problem) if resp.status == 429 else ServerError(problem), wait)
                    return await read_capped(resp, self.max_image_bytes)
            except aiohttp.ClientError as exc:
                dropped = ServerError(f"image download failed: {type(exc).__name__}")
                raise _TryAgain(dropped, self._backoff(attempt)) from None
        raise BadResponse("image download redirected too often")


class _TryAgain(Exception):
    def __init__(self, error: ProdiaError, wait: float) -> None:
        super().__init__(str(error))
        self.error, self.wait = error, wait


async def _ignore(_: Progress) -> None:
    return None


def _set_result_unless_cancelled(future: asyncio.Future[bool], value: bool) -> None:
    """The timer end of `_sleep_unless_relearned` (named as asyncio.sleep's); a woken sleep is already done."""
    if not future.done():
        future.set_result(value)
