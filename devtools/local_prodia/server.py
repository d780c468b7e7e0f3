"""The local server's core: lifecycle, recorded requests, jobs and the helpers the handlers share.

Job progress is computed from ``time.monotonic()`` at request time and all waiting is ``asyncio.sleep``,
so it runs unchanged under a simulated clock. A test that must know jobs are running, however fast or slow the
machine, holds them at a gate instead (`LocalProdia.hold`): they start and do not finish until it releases them.
The protocol handlers live in `v1` and `v2`, the control API in `control`, faults and their answers in `faults`."""

from __future__ import annotations

import asyncio
import hashlib
import json
import random
import re
import time
import uuid
from collections.abc import Awaitable, Callable, Collection
from dataclasses import dataclass, field
from email.message import MIMEPart
from email.parser import BytesParser
from email.policy import HTTP
from typing import Any

from aiohttp import web
from multidict import CIMultiDict

from bot.core.model_lists import SD_MODELS, SDXL_MODELS

from .control import ControlApi
from .drawing import draw, upscale, vary
from .faults import (
    IMAGE_FAULTS,
    JOB_FAULTS,
    REQUEST_FAULTS,
    Fault,
    Faults,
    faulty_image,
    image_fault_answer,
    request_fault_answer,
)
from .schemas import JOB_TYPES
from .v1 import V1Api
from .v2 import V2Api

MAX_SEED = 2**32 - 1
# Our pick: a request body may be this large (aiohttp's default, 1 MiB, would refuse an input image in base64 or
# multipart; Prodia documents no limit).
MAX_REQUEST_BYTES = 64 * 1024 * 1024


@dataclass
class RecordedRequest:
    method: str
    path: str
    query: dict[str, str]
    headers: CIMultiDict[str]  # names as received, case-insensitive lookup
    body: bytes
    json: Any | None  # the parsed JSON body, or None
    via_proxy: bool  # the request line was absolute-form, as a forward proxy sends it

    def form_parts(self) -> dict[str, MIMEPart]:
        """The parts of a multipart/form-data body, by name (ValueError if the body is not one): what a test reads
        of a job sent with its image."""
        content_type = self.headers.get("Content-Type", "")
        if not content_type.startswith("multipart/form-data; boundary="):
            raise ValueError(f"not a multipart/form-data request: {content_type!r}")
        message = BytesParser(policy=HTTP).parsebytes(f"Content-Type: {content_type}\r\n\r\n".encode() + self.body)
        return {str(part.get_param("name", header="content-disposition")): part for part in message.iter_parts()}


@dataclass
class Job:
    id: str
    api: str  # "v1" or "v2"
    params: dict[str, Any]  # v1: the resolved generation params; v2: {"type": ..., **config}
    width: int  # size of the image actually made (after image_scale)
    height: int
    created_at: float  # time.monotonic()
    created_wall: float  # time.time()
    duration: float
    queued_fraction: float = 0.0
    fail: bool = False
    never_finish: bool = False
    held: bool = False  # at the gate (`LocalProdia.hold`): running until released
    polls: int = 0
    found_wall: float | None = None  # v1: time.time() of the first poll answered "succeeded"
    image_format: str = "png"  # v1: what its imageUrl serves, "png" or "jpeg"
    image: bytes | None = None  # the image served (v1: made on first download)
    # v2: job type, config, inputs, async details; both: an action's `kind` ("transform" or "upscale"), its input
    # image (`source`) and `strength` or `factor`
    extra: dict[str, Any] = field(default_factory=dict)

    def status(self, now: float | None = None) -> str:
        elapsed = (time.monotonic() if now is None else now) - self.created_at
        if self.never_finish or self.held or elapsed < self.duration:
            return "queued" if elapsed < self.duration * self.queued_fraction else "generating"
        return "failed" if self.fail else "succeeded"

    @property
    def finished_wall(self) -> float | None:
        return None if self.never_finish or self.held else self.created_wall + self.duration


class LocalProdia:
    IMAGE_FAULT_KINDS = IMAGE_FAULTS

    def __init__(
        self,
        *,
        api_key: str | None = None,
        job_duration: float | Callable[[dict], float] = 0.0,
        queued_fraction: float = 0.3,
        image_scale: float = 1.0,
        image_format: str = "png",
        image_grain: float = 0.0,
        image_base_url: str | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self.api_key = api_key
        self.job_duration = job_duration
        self.sd_models = list(SD_MODELS)  # what /v1/sd/models lists and /sd/generate accepts; tests change it
        self.sdxl_models = list(SDXL_MODELS)
        self.job_types = dict(JOB_TYPES)  # the v2 job types it accepts; tests change a schema or drop a type
        self.queued_fraction = queued_fraction
        self.image_scale = image_scale
        if image_format not in ("png", "jpeg", "mix"):
            raise ValueError(f"image_format must be png, jpeg or mix, got {image_format!r}")
        self.image_format = image_format  # v1 results; "mix": PNG and JPEG in turn, in job order
        self.image_grain = image_grain  # see drawing.draw
        # What the NSFW classifier job answers for each image this server made (by its SHA-256): a prompt holding
        # "label-low", "label-medium" or "label-high" makes its images so (their variations and upscales too);
        # any other image is "neutral". A deterministic stand-in for Prodia's classifier, so tests can steer it.
        self.labels: dict[str, str] = {}
        self.image_base_url = image_base_url
        self.host = host
        self.port = port
        self.requests: list[RecordedRequest] = []
        self.jobs: dict[str, Job] = {}
        self.faults = Faults()  # a list: tests read and compare it
        self.streamed: list[int] = []  # bytes of each ``image_huge`` answer written before it ended, in order
        self.gate_listeners: list[Callable[[], None]] = []  # called on the server's loop when the gate changes
        self._to_hold: int | None = 0  # image jobs the gate still holds: 0 none, None every one
        self._gate_changed = asyncio.Event()  # set (and replaced) on each change at the gate
        self._runner: web.AppRunner | None = None
        self._url: str | None = None

    # -- lifecycle -----------------------------------------------------------------------------

    async def start(self) -> None:
        app = web.Application(middlewares=[self._record], client_max_size=MAX_REQUEST_BYTES)
        app.add_routes([*V1Api(self).routes(), *V2Api(self).routes(), *ControlApi(self).routes()])
        # A short shutdown timeout: close() cancels jobs that never finish instead of waiting 60 s.
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.1)
        await self._runner.setup()
        await web.TCPSite(self._runner, self.host, self.port).start()
        self.port = self._runner.addresses[0][1]
        self._url = f"http://{self.host}:{self.port}"

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> LocalProdia:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    @property
    def url(self) -> str:
        if self._url is None:
            raise RuntimeError("LocalProdia is not started")
        return self._url

    @property
    def v1_url(self) -> str:
        return self.url + "/v1"

    @property
    def v2_url(self) -> str:
        return self.url + "/v2"

    # -- what the handlers share ---------------------------------------------------------------

    def key_ok(self, given: str) -> bool:
        return given == self.api_key if self.api_key is not None else bool(given)

    @staticmethod
    def random_seed() -> int:
        return random.randint(0, MAX_SEED)

    def draw(self, params: dict[str, Any], width: int, height: int, fmt: str) -> bytes:
        return draw(params, width, height, fmt, self.image_grain)

    def render(self, job: Job, fmt: str) -> bytes:
        """A finished job's image: the placeholder, or derived from the input image of a transform or upscale."""
        kind = job.extra.get("kind")
        if kind == "upscale":
            image = upscale(job.extra["source"], job.extra["factor"], fmt)
        elif kind == "transform":
            image = vary(job.extra["source"], job.params, job.extra["strength"], fmt, self.image_grain)
        else:
            image = self.draw(job.params, job.width, job.height, fmt)
        source = job.extra.get("source")
        marked = re.search(r"\blabel-(low|medium|high)\b", str(job.params.get("prompt", "")))
        label = marked[1] if marked else self.label_of(source) if source else "neutral"
        if label != "neutral":
            self.labels[hashlib.sha256(image).hexdigest()] = label
        return image

    def image_posts(self) -> list[RecordedRequest]:
        """The POSTs that asked for an image: every POST but the NSFW classifier's jobs."""
        return [r for r in self.requests if r.method == "POST" and b'"inference.vit.img2label.' not in r.body]

    @property
    def image_jobs(self) -> dict[str, Job]:
        """The jobs that made an image: every job but the NSFW classifier's (which only labels one)."""
        return {job_id: job for job_id, job in self.jobs.items() if job.extra.get("kind") != "classify"}

    def label_of(self, image: bytes) -> str:
        """The classifier's label for `image` (see `labels`)."""
        return self.labels.get(hashlib.sha256(image).hexdigest(), "neutral")

    def new_job(
        self, request: web.Request, api: str, params: dict, width: int, height: int, action: dict | None = None
    ) -> Job:
        """A job; `action` (kind, source, strength or factor) for a transform or upscale, whose size is what the
        input makes, not scaled by `image_scale`."""
        fault = self.take_fault(request.path, JOB_FAULTS)
        duration = self.job_duration(params) if callable(self.job_duration) else self.job_duration
        if action and action.get("kind") == "classify" and not callable(self.job_duration):
            duration = 0.0  # labelling an image is quick next to making one; a callable job_duration decides itself
        fmt = self.image_format
        if fmt == "mix":
            fmt = "jpeg" if len(self.jobs) % 2 else "png"
        job = Job(
            id=str(uuid.uuid4()),
            api=api,
            params=params,
            width=width if action else self._scaled(width),
            height=height if action else self._scaled(height),
            created_at=time.monotonic(),
            created_wall=time.time(),
            duration=duration,
            queued_fraction=self.queued_fraction if api == "v1" else 0.0,
            fail=fault is not None and fault.kind == "job_fails",
            never_finish=fault is not None and fault.kind == "never_finish",
            image_format=fmt,
            extra=dict(action or {}),
        )
        self.jobs[job.id] = job
        if self._to_hold != 0 and job.extra.get("kind") != "classify":
            job.held = True
            if self._to_hold is not None:
                self._to_hold -= 1
            self._gate_change()
        return job

    def _scaled(self, size: int) -> int:
        return max(8, round(size * self.image_scale))

    def finish_all(self, spread: float = 0.0, seed: int | None = None) -> int:
        """Every running job (never-finishing ones aside) ends now, as it was going to: a barrier that
        lets a benchmark hold many jobs in flight and then release them at once. With `spread`, each
        ends at a moment drawn uniformly from the next `spread` seconds instead. Returns how many."""
        now = time.monotonic()
        rng = random.Random(seed)
        running = [job for job in self.jobs.values() if not job.never_finish and now - job.created_at < job.duration]
        for job in running:
            job.duration = now - job.created_at + rng.uniform(0.0, spread)
        return len(running)

    # -- the gate: jobs that run until a test lets them finish ----------------------------------

    def hold(self, jobs: int | None = None) -> None:
        """Hold the next `jobs` image jobs (every one until `release()`, if None) at a gate: each starts as
        usual (v1 and v2 async answer it queued or generating, v2 sync keeps its request open) and does not
        finish until `release()`. A test that needs jobs running at a moment waits for them (`wait_held`)
        instead of counting on a duration the machine's speed decides. The NSFW classifier's jobs pass."""
        self._to_hold = jobs

    @property
    def held(self) -> list[Job]:
        """The jobs waiting at the gate, oldest first."""
        return [job for job in self.jobs.values() if job.held]

    async def wait_held(self, count: int) -> list[Job]:
        """Wait until `count` jobs are held at the gate (a test bounds how long with its own timeout)."""
        while len(self.held) < count:
            await self._gate_changed.wait()
        return self.held

    def release(self) -> int:
        """Open the gate: the held jobs finish now (or when their `job_duration` ends, if later), and later jobs
        are not held. Returns how many were held."""
        self._to_hold = 0
        now = time.monotonic()
        held = self.held
        for job in held:
            job.held = False
            job.duration = max(job.duration, now - job.created_at)
        self._gate_change()
        return len(held)

    async def until_released(self, job: Job) -> None:
        """Return once `job` is not held (v2 sync answers then)."""
        while job.held:
            await self._gate_changed.wait()

    def _gate_change(self) -> None:
        self._gate_changed.set()
        self._gate_changed = asyncio.Event()  # a fresh one for the next change; waiters on this one wake
        for listener in self.gate_listeners:
            listener()

    # -- faults --------------------------------------------------------------------------------

    def add_fault(self, fault: Fault) -> None:
        self.faults.append(fault)

    def clear_faults(self) -> None:
        self.faults.clear()

    def take_fault(self, path: str, kinds: Collection[str]) -> Fault | None:
        """Return the first fault of these kinds matching path, consuming one of its uses."""
        return self.faults.take(path, kinds)

    def image_fault(self, path: str, kinds: Collection[str] = IMAGE_FAULTS) -> Awaitable[web.StreamResponse] | None:
        """The answer an image download gets instead of the image, if a fault says so."""
        fault = self.take_fault(path, kinds)
        return None if fault is None else image_fault_answer(fault, self.streamed.append)

    @staticmethod
    def faulty_image(fault: Fault) -> bytes:
        return faulty_image(fault)

    # -- recording -----------------------------------------------------------------------------

    @web.middleware
    async def _record(self, request: web.Request, handler: Callable) -> web.StreamResponse:
        if request.path.startswith("/_control/"):
            return await handler(request)
        body = await request.read()  # cached by aiohttp, so handlers can read it again
        self.requests.append(
            RecordedRequest(
                method=request.method,
                path=request.path,
                query=dict(request.query),
                headers=CIMultiDict(request.headers),
                body=body,
                json=_parse_json(body),
                via_proxy=request.raw_path.startswith(("http://", "https://")),  # absolute-form: via a proxy
            )
        )
        fault = self.take_fault(request.path, REQUEST_FAULTS)
        if fault is None:
            return await handler(request)
        return await request_fault_answer(fault, request, handler)


def _parse_json(body: bytes) -> Any | None:
    try:
        return json.loads(body) if body else None
    except ValueError:
        return None
