"""A local Prodia-compatible server on 127.0.0.1, for tests, the benchmark and trying the bot keyless.

It speaks Prodia v1 (submit + poll, ``X-Prodia-Key``) and v2 (one synchronous ``POST /v2/job``,
``Authorization: Bearer``), makes real deterministic images with Pillow, and misbehaves on demand
through :class:`Fault`. Job progress is computed from ``time.monotonic()`` at request time and all
waiting is ``asyncio.sleep``, so it runs unchanged under a simulated clock.

Run it standalone with ``python -m bot.local_prodia --help``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import fnmatch
import hashlib
import io
import json
import random
import signal
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from http import HTTPStatus
from typing import Any

import aiohttp
from aiohttp import web
from multidict import CIMultiDict
from PIL import Image, ImageDraw

from bot.model_lists import DEFAULT_SAMPLER, DEFAULT_SD_MODEL, SAMPLERS, SD_MODELS, SDXL_MODELS, V2_JOB_TYPES

DEFAULT_SDXL_MODEL = "sd_xl_base_1.0.safetensors [be9edd61]"
ASPECT_SIZES = {"square": (512, 512), "portrait": (512, 768), "landscape": (768, 512)}
STYLE_PRESETS = (
    "3d-model", "analog-film", "anime", "cinematic", "comic-book", "digital-art", "enhance",
    "fantasy-art", "isometric", "line-art", "low-poly", "neon-punk", "origami", "photographic",
    "pixel-art", "texture", "craft-clay",
)  # fmt: skip
MAX_SEED = 2**32 - 1
V1_SDXL_SIZE = (256, 2048)
V2_SIZE = (256, 1920)
# (max steps, default steps) per v2 job type; flux types take no negative prompt, cfg or sampler.
V2_STEPS = {
    "inference.flux-fast.schnell.txt2img.v2": (4, 4),
    "inference.flux.schnell.txt2img.v2": (4, 4),
    "inference.flux.dev.txt2img.v1": (50, 25),
    "inference.sdxl.txt2img.v1": (50, 25),
    "inference.sd15.txt2img.v1": (50, 25),
}
IMAGE_TYPES = {"png": "image/png", "jpeg": "image/jpeg", "webp": "image/webp"}
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
NOT_IMAGE = b"<html>not an image</html>"
# Faults checked in the middleware, before auth; the others apply where a job or image is made.
REQUEST_FAULTS = frozenset({"status", "malformed_json", "slow", "disconnect"})
JOB_FAULTS = frozenset({"job_fails", "never_finish"})
IMAGE_FAULTS = frozenset({"image_404", "image_huge", "not_image", "redirect"})
FAULT_KINDS = REQUEST_FAULTS | JOB_FAULTS | IMAGE_FAULTS


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

    def __post_init__(self) -> None:
        if self.kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {self.kind!r}; expected one of {sorted(FAULT_KINDS)}")


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
    image: bytes | None = None  # the v1 PNG, made on first download

    def status(self, now: float | None = None) -> str:
        elapsed = (time.monotonic() if now is None else now) - self.created_at
        if self.never_finish or elapsed < self.duration:
            return "queued" if elapsed < self.duration * self.queued_fraction else "generating"
        return "failed" if self.fail else "succeeded"

    @property
    def finished_wall(self) -> float | None:
        return None if self.never_finish else self.created_wall + self.duration


class InvalidParams(Exception):
    """A request field is missing or out of range; the message names the field."""


class LocalProdia:
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
                web.post("/v1/sd/generate", self._v1_generate),
                web.post("/v1/sdxl/generate", self._v1_generate),
                web.get("/v1/job/{job_id}", self._v1_job),
                web.get("/v1/sd/models", self._v1_list),
                web.get("/v1/sdxl/models", self._v1_list),
                web.get("/v1/sd/samplers", self._v1_list),
                web.get("/v1/sdxl/samplers", self._v1_list),
                web.get("/images/{job_id}.png", self._image),
                web.post("/v2/job", self._v2_job),
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

    # -- faults --------------------------------------------------------------------------------

    def add_fault(self, fault: Fault) -> None:
        self.faults.append(fault)

    def clear_faults(self) -> None:
        self.faults.clear()

    def _take_fault(self, path: str, kinds: frozenset[str]) -> Fault | None:
        """Return the first fault of these kinds matching path, consuming one of its uses."""
        for fault in self.faults:
            if fault.kind in kinds and fnmatch.fnmatchcase(path, fault.path):
                if fault.times is not None:
                    fault.times -= 1
                    if fault.times <= 0:
                        self.faults.remove(fault)
                return fault
        return None

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
                via_proxy=_is_absolute_form(request),
            )
        )
        fault = self._take_fault(request.path, REQUEST_FAULTS)
        if fault is None:
            return await handler(request)
        if fault.kind == "slow":
            await asyncio.sleep(fault.delay)
            return await handler(request)
        if fault.kind == "disconnect":
            return _drop_connection(request)
        if fault.kind == "malformed_json":
            return web.Response(text='{"job": "', content_type="application/json")
        headers = {} if fault.retry_after is None else {"Retry-After": f"{fault.retry_after:g}"}
        message = fault.message or _reason(fault.status)
        return web.json_response({"message": message}, status=fault.status, headers=headers)

    # -- jobs and images -----------------------------------------------------------------------

    def _new_job(self, request: web.Request, api: str, params: dict, width: int, height: int) -> Job:
        fault = self._take_fault(request.path, JOB_FAULTS)
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

    def image_for(self, params: dict, width: int, height: int, fmt: str) -> bytes:
        """Deterministic image bytes: a gradient and shapes derived from prompt, seed, model, size."""
        model = params.get("model") or params.get("type")
        key = json.dumps([params.get("prompt"), params.get("seed"), model, width, height])
        digest = hashlib.sha256(key.encode()).digest()
        mask = Image.linear_gradient("L").resize((width, height))
        image = Image.composite(
            Image.new("RGB", (width, height), tuple(digest[3:6])),
            Image.new("RGB", (width, height), tuple(digest[0:3])),
            mask,
        )
        rng = random.Random(digest)
        draw = ImageDraw.Draw(image)
        for _ in range(4):
            x0, x1 = sorted(rng.randrange(width) for _ in range(2))
            y0, y1 = sorted(rng.randrange(height) for _ in range(2))
            colour = tuple(rng.randrange(256) for _ in range(3))
            shape = draw.ellipse if rng.random() < 0.5 else draw.rectangle
            shape((x0, y0, x1, y1), fill=colour)
        out = io.BytesIO()
        if fmt == "png":
            image.save(out, "PNG", compress_level=1)  # speed over size: it runs for every job
        else:
            image.save(out, fmt.upper(), quality=85)
        return out.getvalue()

    # -- v1 ------------------------------------------------------------------------------------

    def _v1_authorized(self, request: web.Request) -> bool:
        return _key_ok(request.headers.get("X-Prodia-Key", ""), self.api_key)

    async def _v1_generate(self, request: web.Request) -> web.Response:
        if not self._v1_authorized(request):
            return _v1_unauthorized()
        sdxl = request.path.startswith("/v1/sdxl/")
        try:
            models = self.sdxl_models if sdxl else self.sd_models
            params = _validate_v1(_parse_json(await request.read()), sdxl=sdxl, models=models)
        except InvalidParams as exc:
            return web.json_response({"message": "Invalid Generation Parameters", "detail": str(exc)}, status=400)
        if sdxl:
            width, height = params["width"], params["height"]
        else:
            width, height = ASPECT_SIZES[params["aspect_ratio"]]
        job = self._new_job(request, "v1", params, width, height)
        return web.json_response({"job": job.id, "status": "queued", "params": params})

    async def _v1_job(self, request: web.Request) -> web.Response:
        if not self._v1_authorized(request):
            return _v1_unauthorized()
        job = self.jobs.get(request.match_info["job_id"])
        if job is None or job.api != "v1":
            return web.json_response({"message": "Job not found"}, status=404)
        job.polls += 1
        status = job.status()
        answer = {"job": job.id, "status": status, "params": job.params}
        if status == "succeeded":
            answer["imageUrl"] = f"{self.image_base_url or self.url}/images/{job.id}.png"
        return web.json_response(answer)

    async def _v1_list(self, request: web.Request) -> web.Response:
        if not self._v1_authorized(request):
            return _v1_unauthorized()
        if request.path.endswith("/samplers"):
            return web.json_response(list(SAMPLERS))
        return web.json_response(self.sdxl_models if "/sdxl/" in request.path else self.sd_models)

    async def _image(self, request: web.Request) -> web.StreamResponse:
        job = self.jobs.get(request.match_info["job_id"])
        if job is None or job.api != "v1" or job.status() != "succeeded":
            return web.json_response({"message": "Not Found"}, status=404)
        fault = self._take_fault(request.path, IMAGE_FAULTS)
        kind = fault.kind if fault else None
        if kind == "image_404":
            return web.json_response({"message": "Not Found"}, status=404)
        if kind == "redirect":
            return web.Response(status=302, headers={"Location": fault.location})
        if kind == "not_image":
            return web.Response(body=NOT_IMAGE, content_type="image/png")
        if kind == "image_huge":
            return await _stream_huge(request, fault.size)
        if job.image is None:
            job.image = self.image_for(job.params, job.width, job.height, "png")
        return web.Response(body=job.image, content_type="image/png")

    # -- v2 ------------------------------------------------------------------------------------

    async def _v2_job(self, request: web.Request) -> web.Response:
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not _key_ok(token.strip(), self.api_key):
            return web.json_response({"message": "token is invalid"}, status=401)
        body = _parse_json(await request.read())
        job_type = body.get("type") if isinstance(body, dict) else None
        if job_type not in V2_JOB_TYPES:
            detail = f"type must be one of: {', '.join(V2_JOB_TYPES)}"
            return web.json_response({"message": "unknown job type", "detail": detail}, status=400)
        try:
            config = _validate_v2(job_type, body.get("config"))
        except InvalidParams as exc:
            return web.json_response({"message": str(exc)}, status=400)
        job = self._new_job(request, "v2", {"type": job_type, **config}, config["width"], config["height"])
        if job.never_finish:
            await asyncio.Future()  # cancelled when the server closes
        await asyncio.sleep(job.duration)
        if job.fail:
            failed = {"id": job.id, "state": {"current": "failed"}, "error": "generation failed"}
            return web.json_response({"message": "job failed", "job": failed}, status=500)

        accept = request.headers.get("Accept", "")
        fmt = "png" if "image/png" in accept else "webp" if "image/webp" in accept else "jpeg"
        content_type = IMAGE_TYPES[fmt]
        fault = self._take_fault(request.path, IMAGE_FAULTS)
        if fault is not None and fault.kind == "image_huge":
            image, content_type = _huge_png(fault.size), "image/png"
        elif fault is not None and fault.kind == "not_image":
            image, content_type = NOT_IMAGE, "image/png"
        else:
            image = self.image_for(job.params, job.width, job.height, fmt)
        job.image = image  # what was served, so tests can compare bytes
        if "multipart/form-data" not in accept:
            return web.Response(body=image, content_type=content_type)

        elapsed = time.monotonic() - job.created_at
        steps = config["steps"]
        document = {
            "id": job.id,
            "type": job_type,
            "config": config,
            "created_at": _iso(job.created_wall),
            "updated_at": _iso(job.created_wall + elapsed),
            "metrics": {"elapsed": elapsed, "ips": steps / elapsed if elapsed > 0 else float(steps)},
            "state": {"current": "completed"},
        }
        extension = "jpg" if fmt == "jpeg" else fmt
        with aiohttp.MultipartWriter("form-data") as multipart:
            part = multipart.append_json(document)
            part.set_content_disposition("form-data", name="job", filename="job.json")
            part = multipart.append(image, {"Content-Type": content_type})
            part.set_content_disposition("form-data", name="output", filename=f"output.{extension}")
        return web.Response(body=multipart)  # its Content-Type carries the boundary

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


# -- validation --------------------------------------------------------------------------------


def _validate_v1(body: Any, *, sdxl: bool, models: list[str]) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise InvalidParams("the body must be a JSON object")
    params = {
        "prompt": _prompt(body, "prompt"),
        "model": _choice(body, "model", models, "model", default=None)
        or (DEFAULT_SDXL_MODEL if sdxl else DEFAULT_SD_MODEL),
        "negative_prompt": _string(body, "negative_prompt", "negative_prompt"),
        "steps": _integer(body, "steps", "steps", 1, 50, default=25),
        "cfg_scale": _number(body, "cfg_scale", "cfg_scale", 0, 20, default=7),
        "seed": _integer(body, "seed", "seed", -1, MAX_SEED, default=-1),
        "sampler": _choice(body, "sampler", SAMPLERS, "sampler", default=DEFAULT_SAMPLER),
        "upscale": _boolean(body, "upscale", "upscale"),
    }
    if params["seed"] == -1:
        params["seed"] = random.randint(0, MAX_SEED)
    if sdxl:
        if "aspect_ratio" in body:
            raise InvalidParams("aspect_ratio is not supported for sdxl: use width and height")
        params["width"] = _integer(body, "width", "width", *V1_SDXL_SIZE, default=1024)
        params["height"] = _integer(body, "height", "height", *V1_SDXL_SIZE, default=1024)
    else:
        if "width" in body or "height" in body:
            raise InvalidParams("width and height are not supported for sd: use aspect_ratio")
        params["aspect_ratio"] = _choice(body, "aspect_ratio", ASPECT_SIZES, "aspect_ratio", default="square")
    if "style_preset" in body:
        params["style_preset"] = _choice(body, "style_preset", STYLE_PRESETS, "style_preset", default=None)
    return params


def _validate_v2(job_type: str, raw: Any) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise InvalidParams("config is required and must be an object")
    max_steps, default_steps = V2_STEPS.get(job_type, (50, 25))
    config = {
        "prompt": _prompt(raw, "config.prompt"),
        "width": _integer(raw, "width", "config.width", *V2_SIZE, default=1024),
        "height": _integer(raw, "height", "config.height", *V2_SIZE, default=1024),
        "steps": _integer(raw, "steps", "config.steps", 1, max_steps, default=default_steps),
        "seed": _integer(raw, "seed", "config.seed", 0, MAX_SEED, default=None),
    }
    if config["seed"] is None:
        config["seed"] = random.randint(0, MAX_SEED)
    if "style_preset" in raw:
        config["style_preset"] = _choice(raw, "style_preset", STYLE_PRESETS, "config.style_preset", default=None)
    sd_only = ("negative_prompt", "cfg_scale", "sampler")
    if ".flux" in job_type:
        for name in sd_only:
            if name in raw:
                raise InvalidParams(f"config.{name} is not allowed for this job type")
    else:
        config["negative_prompt"] = _string(raw, "negative_prompt", "config.negative_prompt")
        config["cfg_scale"] = _number(raw, "cfg_scale", "config.cfg_scale", 0, 20, default=7)
        config["sampler"] = _choice(raw, "sampler", SAMPLERS, "config.sampler", default=DEFAULT_SAMPLER)
    return config


def _prompt(data: dict, label: str) -> str:
    value = data.get(label.rpartition(".")[2])
    if not isinstance(value, str) or not value.strip():
        raise InvalidParams(f"{label} is required and must be a non-empty string")
    return value


def _string(data: dict, key: str, label: str) -> str:
    value = data.get(key, "")
    if not isinstance(value, str):
        raise InvalidParams(f"{label} must be a string")
    return value


def _boolean(data: dict, key: str, label: str) -> bool:
    value = data.get(key, False)
    if not isinstance(value, bool):
        raise InvalidParams(f"{label} must be a boolean")
    return value


def _integer(data: dict, key: str, label: str, low: int, high: int, *, default: int | None) -> int | None:
    value = data.get(key, default)
    if value is default:
        return value
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise InvalidParams(f"{label} must be an integer from {low} to {high}")
    return value


def _number(data: dict, key: str, label: str, low: float, high: float, *, default: float) -> float:
    value = data.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
        raise InvalidParams(f"{label} must be a number from {low} to {high}")
    return value


def _choice(data: dict, key: str, allowed: Any, label: str, *, default: str | None) -> str | None:
    value = data.get(key, default)
    if value is not default and value not in allowed:
        raise InvalidParams(f"{label} {value!r} is not one of the supported values")
    return value


# -- helpers -----------------------------------------------------------------------------------


def _parse_json(body: bytes) -> Any | None:
    try:
        return json.loads(body) if body else None
    except ValueError:
        return None


def _is_absolute_form(request: web.BaseRequest) -> bool:
    # raw_path is the request-target as sent: absolute-form ("http://host/path") comes from a proxy.
    return request.raw_path.startswith(("http://", "https://"))


def _key_ok(given: str, expected: str | None) -> bool:
    return given == expected if expected is not None else bool(given)


def _v1_unauthorized() -> web.Response:
    return web.json_response({"message": "Invalid API key"}, status=401)


def _reason(status: int) -> str:
    with contextlib.suppress(ValueError):
        return HTTPStatus(status).phrase
    return "Error"


def _iso(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, UTC).isoformat()


def _drop_connection(request: web.Request) -> web.Response:
    """Close the socket without answering: the client sees a disconnect, not a status."""
    if request.transport is not None:
        request.transport.close()
    return web.Response()  # never sent: the transport is gone


def _huge_png(size: int) -> bytes:
    return PNG_SIGNATURE + bytes(max(0, size - len(PNG_SIGNATURE)))


async def _stream_huge(request: web.Request, size: int) -> web.StreamResponse:
    """Stream size bytes chunked, without Content-Length, so only a streaming cap catches it."""
    response = web.StreamResponse(headers={"Content-Type": "image/png"})
    response.enable_chunked_encoding()
    await response.prepare(request)
    data = _huge_png(size)
    chunk = 64 * 1024
    for start in range(0, len(data), chunk):
        await response.write(data[start : start + chunk])
    await response.write_eof()
    return response


# -- standalone --------------------------------------------------------------------------------


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bot.local_prodia",
        description="Serve a local Prodia-compatible API (v1 and v2) for trying the bot without Prodia.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8765, help="port to listen on; 0 picks a free one")
    parser.add_argument("--api-key", help="accept only this v1 key / v2 token (default: any non-empty one)")
    durations = parser.add_mutually_exclusive_group()
    durations.add_argument("--duration", type=float, default=0.0, help="seconds every job takes")
    durations.add_argument(
        "--duration-range",
        type=float,
        nargs=2,
        metavar=("MIN", "MAX"),
        help="draw each job's duration uniformly from MIN..MAX seconds, in creation order",
    )
    parser.add_argument("--seed", type=int, help="random seed for --duration-range, for repeatable runs")
    parser.add_argument("--image-scale", type=float, default=1.0, help="multiply image sizes (e.g. 0.25)")
    return parser.parse_args(argv)


def _durations(args: argparse.Namespace) -> float | Callable[[dict], float]:
    if args.duration_range is None:
        return args.duration
    low, high = args.duration_range
    rng = random.Random(args.seed)  # one generator, so durations follow job creation order
    return lambda params: rng.uniform(low, high)


async def _serve(args: argparse.Namespace) -> None:
    server = LocalProdia(
        api_key=args.api_key,
        job_duration=_durations(args),
        image_scale=args.image_scale,
        host=args.host,
        port=args.port,
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    async with server:
        print(
            f"Local Prodia server listening on {server.url} (v1: {server.v1_url}, v2: {server.v2_url})",
            flush=True,
        )
        await stop.wait()


def main(argv: list[str] | None = None) -> None:
    asyncio.run(_serve(_parse_args(argv)))


if __name__ == "__main__":
    main()
