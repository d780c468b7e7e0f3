"""The local server's core: lifecycle, recorded requests, faults on demand, jobs and the control API.

Job progress is computed from ``time.monotonic()`` at request time and all waiting is ``asyncio.sleep``,
so it runs unchanged under a simulated clock. The protocol handlers live in `v1` and `v2`."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import fnmatch
import json
import random
import time
import uuid
from collections.abc import Awaitable, Callable, Collection
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any

from aiohttp import web
from multidict import CIMultiDict

from bot.core.model_lists import SD_MODELS, SDXL_MODELS

from .drawing import NOT_IMAGE, draw, huge_png
from .schemas import JOB_TYPES
from .v1 import V1Api
from .v2 import V2Api, multipart_answer

# Faults checked in the middleware, before auth; the others apply where a job or image is made.
REQUEST_FAULTS = frozenset({"status", "malformed_json", "slow", "disconnect"})
JOB_FAULTS = frozenset({"job_fails", "never_finish"})
IMAGE_FAULTS = frozenset({"image_404", "image_huge", "not_image", "redirect"})
FAULT_KINDS = REQUEST_FAULTS | JOB_FAULTS | IMAGE_FAULTS
FAULT_SHAPES = frozenset({"json", "multipart", "text"})
MAX_SEED = 2**32 - 1


@dataclass
class RecordedRequest:
    method: str
    path: str
    query: dict[str, str]
    headers: CIMultiDict[str]  # names as received, case-insensitive lookup
    body: bytes
    json: Any | None  # the parsed JSON body, or None
    via_proxy: bool  # the request line was absolute-form, as a forward proxy sends it


@dataclass
class Fault:
    kind: str
    status: int = 500
    retry_after: float | None = None
    delay: float = 0.0
    size: int = 0
    location: str = ""
    message: str | None = None
    times: int | None = 1  # matching requests it applies to; None = forever
    path: str = "*"  # fnmatch pattern on the request path
    shape: str = "json"  # a status fault's body: {"message"} JSON, v2's multipart `job.error`, or plain text

    def __post_init__(self) -> None:
        if self.kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {self.kind!r}; expected one of {sorted(FAULT_KINDS)}")
        if self.shape not in FAULT_SHAPES:
            raise ValueError(f"unknown fault shape {self.shape!r}; expected one of {sorted(FAULT_SHAPES)}")


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
    polls: int = 0
    image: bytes | None = None  # the image served (v1: made on first download)
    extra: dict[str, Any] = field(default_factory=dict)  # v2: job type, config, inputs, async details

    def status(self, now: float | None = None) -> str:
        elapsed = (time.monotonic() if now is None else now) - self.created_at
        if self.never_finish or elapsed < self.duration:
            return "queued" if elapsed < self.duration * self.queued_fraction else "generating"
        return "failed" if self.fail else "succeeded"

    @property
    def finished_wall(self) -> float | None:
        return None if self.never_finish else self.created_wall + self.duration


class LocalProdia:
    IMAGE_FAULT_KINDS = IMAGE_FAULTS

    def __init__(
        self,
        *,
        api_key: str | None = None,
        job_duration: float | Callable[[dict], float] = 0.0,
        queued_fraction: float = 0.3,
        image_scale: float = 1.0,
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
        self.image_base_url = image_base_url
        self.host = host
        self.port = port
        self.requests: list[RecordedRequest] = []
        self.jobs: dict[str, Job] = {}
        self.faults: list[Fault] = []
        self._runner: web.AppRunner | None = None
        self._url: str | None = None

    # -- lifecycle -----------------------------------------------------------------------------

    async def start(self) -> None:
        app = web.Application(middlewares=[self._middleware])
        app.add_routes(
            [
                *V1Api(self).routes(),
                *V2Api(self).routes(),
                web.post("/_control/faults", self._control_add_fault),
                web.delete("/_control/faults", self._control_clear_faults),
                web.get("/_control/jobs", self._control_jobs),
                web.post("/_control/reset", self._control_reset),
                web.post("/_control/finish", self._control_finish),
            ]
        )
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
        return draw(params, width, height, fmt)

    image_for = draw  # the name tests and the benchmark know

    def new_job(self, request: web.Request, api: str, params: dict, width: int, height: int) -> Job:
        fault = self.take_fault(request.path, JOB_FAULTS)
        duration = self.job_duration(params) if callable(self.job_duration) else self.job_duration
        job = Job(
            id=str(uuid.uuid4()),
            api=api,
            params=params,
            width=self._scaled(width),
            height=self._scaled(height),
            created_at=time.monotonic(),
            created_wall=time.time(),
            duration=duration,
            queued_fraction=self.queued_fraction if api == "v1" else 0.0,
            fail=fault is not None and fault.kind == "job_fails",
            never_finish=fault is not None and fault.kind == "never_finish",
        )
        self.jobs[job.id] = job
        return job

    def _scaled(self, size: int) -> int:
        return max(8, round(size * self.image_scale))

    # -- faults --------------------------------------------------------------------------------

    def add_fault(self, fault: Fault) -> None:
        self.faults.append(fault)

    def clear_faults(self) -> None:
        self.faults.clear()

    def take_fault(self, path: str, kinds: Collection[str]) -> Fault | None:
        """Return the first fault of these kinds matching path, consuming one of its uses."""
        for fault in self.faults:
            if fault.kind in kinds and fnmatch.fnmatchcase(path, fault.path):
                if fault.times is not None:
                    fault.times -= 1
                    if fault.times <= 0:
                        self.faults.remove(fault)
                return fault
        return None

    def image_fault(self, path: str, kinds: Collection[str] = IMAGE_FAULTS) -> Awaitable[web.StreamResponse] | None:
        """The answer an image download gets instead of the image, if a fault says so."""
        fault = self.take_fault(path, kinds)
        if fault is None:
            return None
        return self._image_fault_answer(fault)

    async def _image_fault_answer(self, fault: Fault) -> web.StreamResponse:
        if fault.kind == "image_404":
            return web.json_response({"message": "Not Found"}, status=404)
        if fault.kind == "redirect":
            return web.Response(status=302, headers={"Location": fault.location})
        if fault.kind == "image_huge":
            return _StreamedHuge(fault.size)
        return web.Response(body=self.faulty_image(fault), content_type="image/png")

    @staticmethod
    def faulty_image(fault: Fault) -> bytes:
        return huge_png(fault.size) if fault.kind == "image_huge" else NOT_IMAGE

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Callable) -> web.StreamResponse:
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
        if fault.kind == "slow":
            await asyncio.sleep(fault.delay)
            return await handler(request)
        if fault.kind == "disconnect":
            if request.transport is not None:
                request.transport.close()  # the client sees a disconnect, not a status
            return web.Response()  # never sent: the transport is gone
        if fault.kind == "malformed_json":
            return web.Response(text='{"job": "', content_type="application/json")
        headers = {} if fault.retry_after is None else {"Retry-After": f"{fault.retry_after:g}"}
        message = fault.message or _reason(fault.status)
        if fault.shape == "text":
            return web.Response(text=message, status=fault.status, headers=headers)
        if fault.shape == "multipart":
            return multipart_answer({"id": str(uuid.uuid4()), "error": message}, status=fault.status, headers=headers)
        return web.json_response({"message": message}, status=fault.status, headers=headers)

    # -- control API ---------------------------------------------------------------------------

    async def _control_add_fault(self, request: web.Request) -> web.Response:
        try:
            fault = Fault(**await request.json())
        except (TypeError, ValueError) as exc:
            return web.json_response({"message": f"bad fault: {exc}"}, status=400)
        self.add_fault(fault)
        return web.json_response(dataclasses.asdict(fault), status=201)

    async def _control_clear_faults(self, request: web.Request) -> web.Response:
        self.clear_faults()
        return web.Response(status=204)

    async def _control_jobs(self, request: web.Request) -> web.Response:
        now = time.monotonic()
        return web.json_response(
            [
                {
                    "id": job.id,
                    "api": job.api,
                    "status": job.status(now),
                    "created_wall": job.created_wall,
                    "finished_wall": job.finished_wall,
                    "polls": job.polls,
                    "prompt": job.params.get("prompt"),
                    "duration": job.duration,
                }
                for job in self.jobs.values()
            ]
        )

    def finish_all(self) -> int:
        """Every running job (never-finishing ones aside) ends now, as it was going to: a barrier that
        lets a benchmark hold many jobs in flight and then release them at once. Returns how many."""
        now = time.monotonic()
        running = [job for job in self.jobs.values() if not job.never_finish and now - job.created_at < job.duration]
        for job in running:
            job.duration = now - job.created_at
        return len(running)

    async def _control_finish(self, request: web.Request) -> web.Response:
        return web.json_response({"finished": self.finish_all()})

    async def _control_reset(self, request: web.Request) -> web.Response:
        self.jobs.clear()
        self.requests.clear()
        self.clear_faults()
        return web.Response(status=204)


class _StreamedHuge(web.StreamResponse):
    """`size` bytes streamed chunked, without Content-Length, so only a streaming cap catches them."""

    def __init__(self, size: int) -> None:
        super().__init__(headers={"Content-Type": "image/png"})
        self.enable_chunked_encoding()
        self._data = huge_png(size)

    async def prepare(self, request: web.BaseRequest) -> Any:
        writer = await super().prepare(request)
        chunk = 64 * 1024
        for start in range(0, len(self._data), chunk):
            await self.write(self._data[start : start + chunk])
        await self.write_eof()
        return writer


def _parse_json(body: bytes) -> Any | None:
    try:
        return json.loads(body) if body else None
    except ValueError:
        return None


def _reason(status: int) -> str:
    with contextlib.suppress(ValueError):
        return HTTPStatus(status).phrase
    return "Error"
