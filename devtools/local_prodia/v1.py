"""The v1 half of the local server: submit to /sd|sdxl/generate, poll /job/<id>, download the image.

Shapes as the official client (npm `prodia`) and prodiapy use them: `X-Prodia-Key`, a 200 JSON job on
submit, statuses queued -> generating -> succeeded|failed, `imageUrl` once succeeded, the lists under
/sd/models, /sdxl/models, /sd/samplers, /sdxl/samplers and /models/list (the official `listModels`).
Our picks: /sd/generate takes `width`/`height` (prodiapy sends them; 128-1024 here) besides
`aspect_ratio`; errors are JSON `{"message", "detail"}` (v1's documented phrases, its bodies unknown);
the image is a PNG at `/images/<job>.png` (v1's URLs end so), or a JPEG at `.jpg` if the server says so.

Actions on an image, submitted and polled like generations (the official client's `transform` posts to
/sd/transform and polls with `wait`): /sd/transform and /sdxl/transform take the generation fields (no size)
plus `denoising_strength` (0-1) and the image as `imageUrl` or `imageData` (prodia.ts `ImageInput`); /upscale
takes the image and `resize` 2|4 (prodia-api.md section 2) and an optional upscaler `model` (third-party code
sends `ESRGAN_4x`, `SwinIR 4x`). Our picks: `imageData` is base64, with or without a `data:` prefix; exactly one
of the two is sent; `imageUrl` is read only where it names an image this server made (it fetches nothing from
elsewhere); the image must decode as PNG, JPEG or WebP of at most 4096x4096 pixels; `denoising_strength` defaults
to 0.7 and `resize` to 2; a transform's result has the input's size, an upscale's `resize` times it.
"""

from __future__ import annotations

import base64
import binascii
import json
import random
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from aiohttp import web

from bot.core.model_lists import DEFAULT_SAMPLER, DEFAULT_SD_MODEL, SAMPLERS

from .drawing import IMAGE_TYPES, BadInput, input_size
from .schemas import STYLE_PRESETS

DEFAULT_SDXL_MODEL = "sd_xl_base_1.0.safetensors [be9edd61]"
ASPECT_SIZES = {"square": (512, 512), "portrait": (512, 768), "landscape": (768, 512)}
MAX_SEED = 2**32 - 1
SD_SIZE = (128, 1024)
SDXL_SIZE = (256, 2048)
DEFAULT_DENOISING = 0.7  # our pick (third-party code sends 0.7)
UPSCALE_RESIZES = (2, 4)
DEFAULT_RESIZE = 2  # our pick

# What a submission handler makes of the body (and whether it is an sdxl endpoint): the job's params, its image
# size and, for an action on an image, the action (see LocalProdia.new_job).
Parse = Callable[[Any, bool], tuple[dict[str, Any], tuple[int, int], dict[str, Any] | None]]

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


def validate_transform(body: Any, *, sdxl: bool, models: list[str]) -> dict[str, Any]:
    """A transform's params: a generation's without the size (the input's is kept), plus `denoising_strength`."""
    params = validate_v1(body, sdxl=sdxl, models=models)
    for name in ("aspect_ratio", "width", "height"):
        params.pop(name, None)
    params["denoising_strength"] = _number(body, "denoising_strength", 0, 1, default=DEFAULT_DENOISING)
    return params


def validate_upscale(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise InvalidParams("the body must be a JSON object")
    resize = body.get("resize", DEFAULT_RESIZE)
    if isinstance(resize, bool) or not isinstance(resize, int) or resize not in UPSCALE_RESIZES:
        raise InvalidParams(f"resize must be one of {', '.join(map(str, UPSCALE_RESIZES))}")
    params: dict[str, Any] = {"resize": resize}
    if "model" in body:
        params["model"] = _string(body, "model")
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
            web.post("/v1/sd/transform", self._v1_transform),
            web.post("/v1/sdxl/transform", self._v1_transform),
            web.post("/v1/upscale", self._v1_upscale),
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
        return await self._v1_submit(request, self._generation)

    async def _v1_transform(self, request: web.Request) -> web.Response:
        return await self._v1_submit(request, self._transform)

    async def _v1_upscale(self, request: web.Request) -> web.Response:
        return await self._v1_submit(request, self._upscale)

    async def _v1_submit(self, request: web.Request, parse: Parse) -> web.Response:
        """Every v1 submission: authorize, validate (400 in v1's words), make the job, answer it queued."""
        if not self._v1_authorized(request):
            return _unauthorized()
        try:
            params, size, action = parse(_json_body(await request.read()), request.path.startswith("/v1/sdxl/"))
        except InvalidParams as exc:
            return web.json_response({"message": "Invalid Generation Parameters", "detail": str(exc)}, status=400)
        job = self.server.new_job(request, "v1", params, *size, action=action)
        return web.json_response({"job": job.id, "status": "queued", "params": params})

    def _models(self, sdxl: bool) -> list[str]:
        return self.server.sdxl_models if sdxl else self.server.sd_models

    def _generation(self, body: Any, sdxl: bool) -> tuple[dict[str, Any], tuple[int, int], None]:
        params = validate_v1(body, sdxl=sdxl, models=self._models(sdxl))
        return params, image_size(params), None

    def _transform(self, body: Any, sdxl: bool) -> tuple[dict[str, Any], tuple[int, int], dict[str, Any]]:
        params = validate_transform(body, sdxl=sdxl, models=self._models(sdxl))
        source, size = self._input_image(body)
        return params, size, {"kind": "transform", "source": source, "strength": params["denoising_strength"]}

    def _upscale(self, body: Any, sdxl: bool) -> tuple[dict[str, Any], tuple[int, int], dict[str, Any]]:
        params = validate_upscale(body)
        source, (width, height) = self._input_image(body)
        factor = params["resize"]
        return params, (width * factor, height * factor), {"kind": "upscale", "source": source, "factor": factor}

    def _input_image(self, body: dict[str, Any]) -> tuple[bytes, tuple[int, int]]:
        """The image of an action (`imageData` or `imageUrl`, exactly one) and its size; InvalidParams if absent,
        not base64, not one of this server's images, or not a decodable image."""
        data, url = body.get("imageData"), body.get("imageUrl")
        if (data is None) == (url is None):
            raise InvalidParams("send the image as imageData (base64) or as imageUrl, one of the two")
        source = _base64_image(data) if data is not None else self._own_image(url)
        try:
            return source, input_size(source)
        except BadInput as exc:
            raise InvalidParams(f"{'imageData' if data is not None else 'imageUrl'}: {exc}") from None

    def _own_image(self, url: Any) -> bytes:
        """The bytes behind an imageUrl this server gave out (`/images/<job>.png|.jpg` of a succeeded job)."""
        path = urlsplit(url).path if isinstance(url, str) else ""
        name = path.removeprefix("/images/").rpartition(".")[0] if path.startswith("/images/") else ""
        job = self.server.jobs.get(name)
        if job is None or job.api != "v1" or job.status() != "succeeded":
            raise InvalidParams("imageUrl could not be fetched (this server reads only images it made)")
        if job.image is None:
            job.image = self.server.render(job, job.image_format)
        return job.image

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
            job.image = self.server.render(job, job.image_format)
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


def _base64_image(data: Any) -> bytes:
    if isinstance(data, str) and data.startswith("data:") and ";base64," in data:
        data = data.partition(";base64,")[2]
    try:
        if not isinstance(data, str) or not data:
            raise ValueError
        return base64.b64decode(data, validate=True)
    except (ValueError, binascii.Error):
        raise InvalidParams("imageData must be a base64-encoded image") from None


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
