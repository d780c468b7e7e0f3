"""The v1 half of the local server: submit to /sd|sdxl/generate, poll /job/<id>, download the image.

Shapes as the official client (npm `prodia`) and prodiapy use them: `X-Prodia-Key`, a 200 JSON job on
submit, statuses queued -> generating -> succeeded|failed, `imageUrl` once succeeded, the lists under
/sd/models, /sdxl/models, /sd/samplers, /sdxl/samplers and /models/list (the official `listModels`).
Our picks: /sd/generate takes `width`/`height` (prodiapy sends them; 128-1024 here) besides
`aspect_ratio`; errors are JSON `{"message", "detail"}` (v1's documented phrases, its bodies unknown);
the image is a PNG at `/images/<job>.png` (v1's URLs end so), or a JPEG at `.jpg` if the server says so.
"""

from __future__ import annotations

import json
import random
import time
from typing import TYPE_CHECKING, Any

from aiohttp import web

from bot.core.model_lists import DEFAULT_SAMPLER, DEFAULT_SD_MODEL, SAMPLERS

from .drawing import IMAGE_TYPES
from .schemas import STYLE_PRESETS

DEFAULT_SDXL_MODEL = "sd_xl_base_1.0.safetensors [be9edd61]"
ASPECT_SIZES = {"square": (512, 512), "portrait": (512, 768), "landscape": (768, 512)}
MAX_SEED = 2**32 - 1
SD_SIZE = (128, 1024)
SDXL_SIZE = (256, 2048)

if TYPE_CHECKING:
    from .server import LocalProdia


class InvalidParams(Exception):
    """A request field is missing or out of range; the message names the field."""


def validate_v1(body: Any, *, sdxl: bool, models: list[str]) -> dict[str, Any]:
    """The generation params with defaults and a drawn seed, as the job's `params` echo them."""
    if not isinstance(body, dict):
        raise InvalidParams("the body must be a JSON object")
    params = {
        "prompt": _prompt(body),
        "model": _choice(body, "model", models, default=None) or (DEFAULT_SDXL_MODEL if sdxl else DEFAULT_SD_MODEL),
        "negative_prompt": _string(body, "negative_prompt"),
        "steps": _integer(body, "steps", 1, 50, default=25),
        "cfg_scale": _number(body, "cfg_scale", 0, 20, default=7),
        "seed": _integer(body, "seed", -1, MAX_SEED, default=-1),
        "sampler": _choice(body, "sampler", SAMPLERS, default=DEFAULT_SAMPLER),
        "upscale": _boolean(body, "upscale"),
    }
    if params["seed"] == -1:
        params["seed"] = random.randint(0, MAX_SEED)
    if sdxl:
        if "aspect_ratio" in body:
            raise InvalidParams("aspect_ratio is not supported for sdxl: use width and height")
        params["width"] = _integer(body, "width", *SDXL_SIZE, default=1024)
        params["height"] = _integer(body, "height", *SDXL_SIZE, default=1024)
    else:
        params["aspect_ratio"] = _choice(body, "aspect_ratio", ASPECT_SIZES, default="square")
        for name in ("width", "height"):
            if name in body:
                params[name] = _integer({name: body[name] or False}, name, *SD_SIZE, default=None)  # null refused
    if "style_preset" in body:
        params["style_preset"] = _choice(body, "style_preset", STYLE_PRESETS, default=None)
    return params


def image_size(params: dict[str, Any]) -> tuple[int, int]:
    width, height = ASPECT_SIZES.get(params.get("aspect_ratio", "square"), (1024, 1024))
    return params.get("width", width), params.get("height", height)


class V1Api:
    """The v1 handlers, on the server's shared state (jobs, faults, recorded requests)."""

    def __init__(self, server: LocalProdia) -> None:
        self.server = server

    def routes(self) -> list[web.RouteDef]:
        return [
            web.post("/v1/sd/generate", self._v1_generate),
            web.post("/v1/sdxl/generate", self._v1_generate),
            web.get("/v1/job/{job_id}", self._v1_job),
            web.get("/v1/sd/models", self._v1_list),
            web.get("/v1/sdxl/models", self._v1_list),
            web.get("/v1/models/list", self._v1_list),
            web.get("/v1/sd/samplers", self._v1_list),
            web.get("/v1/sdxl/samplers", self._v1_list),
            web.get("/images/{job_id}.png", self._image),
            web.get("/images/{job_id}.jpg", self._image),
        ]

    def _v1_authorized(self, request: web.Request) -> bool:
        return self.server.key_ok(request.headers.get("X-Prodia-Key", ""))

    async def _v1_generate(self, request: web.Request) -> web.Response:
        if not self._v1_authorized(request):
            return _unauthorized()
        sdxl = request.path.startswith("/v1/sdxl/")
        try:
            models = self.server.sdxl_models if sdxl else self.server.sd_models
            params = validate_v1(_json_body(await request.read()), sdxl=sdxl, models=models)
        except InvalidParams as exc:
            return web.json_response({"message": "Invalid Generation Parameters", "detail": str(exc)}, status=400)
        job = self.server.new_job(request, "v1", params, *image_size(params))
        return web.json_response({"job": job.id, "status": "queued", "params": params})

    async def _v1_job(self, request: web.Request) -> web.Response:
        if not self._v1_authorized(request):
            return _unauthorized()
        job = self.server.jobs.get(request.match_info["job_id"])
        if job is None or job.api != "v1":
            return web.json_response({"message": "Job not found"}, status=404)
        job.polls += 1
        status = job.status()
        answer = {"job": job.id, "status": status, "params": job.params}
        if status == "succeeded":
            job.found_wall = job.found_wall or time.time()
            extension = "jpg" if job.image_format == "jpeg" else "png"
            answer["imageUrl"] = f"{self.server.image_base_url or self.server.url}/images/{job.id}.{extension}"
        return web.json_response(answer)

    async def _v1_list(self, request: web.Request) -> web.Response:
        if not self._v1_authorized(request):
            return _unauthorized()
        if request.path.endswith("/samplers"):
            return web.json_response(list(SAMPLERS))
        return web.json_response(self.server.sdxl_models if "/sdxl/" in request.path else self.server.sd_models)

    async def _image(self, request: web.Request) -> web.StreamResponse:
        job = self.server.jobs.get(request.match_info["job_id"])
        if job is None or job.api != "v1" or job.status() != "succeeded":
            return web.json_response({"message": "Not Found"}, status=404)
        fault = self.server.image_fault(request.path)
        if fault is not None:
            return await fault
        if job.image is None:
            job.image = self.server.draw(job.params, job.width, job.height, job.image_format)
        return web.Response(body=job.image, content_type=IMAGE_TYPES[job.image_format])


def _unauthorized() -> web.Response:
    return web.json_response({"message": "Invalid API key"}, status=401)


def _json_body(body: bytes) -> Any:
    try:
        return json.loads(body) if body else None
    except ValueError:
        return None


def _prompt(data: dict) -> str:
    value = data.get("prompt")
    if not isinstance(value, str) or not value.strip():
        raise InvalidParams("prompt is required and must be a non-empty string")
    return value


def _string(data: dict, key: str) -> str:
    value = data.get(key, "")
    if not isinstance(value, str):
        raise InvalidParams(f"{key} must be a string")
    return value


def _boolean(data: dict, key: str) -> bool:
    value = data.get(key, False)
    if not isinstance(value, bool):
        raise InvalidParams(f"{key} must be a boolean")
    return value


def _integer(data: dict, key: str, low: int, high: int, *, default: int | None) -> int | None:
    value = data.get(key, default)
    if value is default:
        return value
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise InvalidParams(f"{key} must be an integer from {low} to {high}")
    return value


def _number(data: dict, key: str, low: float, high: float, *, default: float) -> float:
    value = data.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
        raise InvalidParams(f"{key} must be a number from {low} to {high}")
    return value


def _choice(data: dict, key: str, allowed: Any, *, default: str | None) -> str | None:
    value = data.get(key, default)
    if value is not default and value not in allowed:
        raise InvalidParams(f"{key} {value!r} is not one of the supported values")
    return value
