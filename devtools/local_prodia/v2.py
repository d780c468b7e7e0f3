"""The v2 half of the local server: `POST /v2/job` (synchronous) and the async endpoints.

As the live API answers, by the evidence in ../shared/prodia-api.md (section 3a):
- requests are JSON, or multipart with a `job` part (what the official client always sends) and
  `input` parts for image inputs;
- a bad token is 401 with the plain text `token is invalid`; a missing or unknown job type is 429 on
  every try; a config that breaks the type's schema is a 400 multipart answer whose `job` part carries
  `error` and `id`;
- success is multipart (`job` + `output`) when Accept asks for it, else the raw image (JPEG by
  default, PNG or WebP when accepted); `?price=true` adds `price: {product, dollars}`;
- async: `POST /v2/job/async` answers 201 with the job JSON; `job.state.current` is plain text
  `processing`, `processed` or `failed`; `job.json`, `output` and `output/<name>`; 404 for an unknown
  or expired id; 400 for a type that does not permit async.

Jobs on images (img2img, upscale; see `schemas`) take their image from the `input` parts: the one the config
names (`image`, or the first of `images`), else the first. Our picks: a config naming a file that was not
uploaded, or an input that is not a decodable PNG, JPEG or WebP (of at most 4096x4096 pixels), is refused as a bad
config is (400, the reason in `job.error`); an img2img result has the input's size (or the config's width and
height), an upscale's is `upscale` times the input's.

Our picks where the real behaviour is unknown: a job that fails while generating answers a sync request
500 with a multipart `job` part whose state is `failed`; the 429 for an unknown type carries
`Retry-After: 1`; the async output list is a JSON array of file names; async jobs expire 300 s after
they finish; prices other than flux-fast's documented $0.0025 are made up.
"""

from __future__ import annotations

import asyncio
import email.parser
import email.policy
import json
import time
import uuid
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import aiohttp
from aiohttp import web

from .drawing import IMAGE_TYPES, BadInput, input_size
from .schemas import JobType, SchemaError, validate

EXPIRES_AFTER = 300.0  # seconds an async job stays readable after it finished (our pick)
PRICES = {  # dollars a job; only flux-fast's is documented
    "inference.flux-fast.schnell.txt2img.v1": 0.0025,
    "inference.flux-fast.schnell.txt2img.v2": 0.0025,
    "inference.flux.schnell.txt2img.v1": 0.0025,
    "inference.flux.dev.txt2img.v1": 0.02,
    "inference.upscale.v1": 0.001,  # 3P: "2x = $0.0010"
}

if TYPE_CHECKING:
    from .server import LocalProdia


class V2Api:
    """The v2 handlers, on the server's shared state (jobs, faults, recorded requests)."""

    def __init__(self, server: LocalProdia) -> None:
        self.server = server

    def routes(self) -> list[web.RouteDef]:
        return [
            web.post("/v2/job", self._v2_job),
            web.post("/v2/job/async", self._v2_async_job),
            web.get("/v2/job/async/{job_id}/job.state.current", self._v2_async_state),
            web.get("/v2/job/async/{job_id}/job.json", self._v2_async_document),
            web.get("/v2/job/async/{job_id}/output", self._v2_async_outputs),
            web.get("/v2/job/async/{job_id}/output/{name}", self._v2_async_output),
        ]

    # -- shared ------------------------------------------------------------------------------------

    def _authorized(self, request: web.Request) -> bool:
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        return scheme.lower() == "bearer" and self.server.key_ok(token.strip())

    async def _v2_accept(self, request: web.Request, *, is_async: bool) -> tuple[Any, web.Response | None]:
        """Authorize, parse and validate a job request: (the new job, None) or (None, the refusal)."""
        if not self._authorized(request):
            return None, web.Response(status=401, text="token is invalid")
        body, inputs = _read_job(request.headers.get("Content-Type", ""), await request.read())
        job_type = self.server.job_types.get(str(body.get("type"))) if isinstance(body, dict) else None
        if job_type is None:  # the live API answers 429 on every try (SDK tests)
            return None, web.Response(status=429, text="Too Many Requests", headers={"Retry-After": "1"})
        raw = body.get("config", {})
        if is_async and not job_type.permits_async:
            return None, _refusal(job_type.name, raw, "job type doesn't support async")
        try:
            config = validate(job_type, raw)
            action = _action(job_type, config, inputs)
        except SchemaError as exc:
            return None, _refusal(job_type.name, raw, str(exc))
        if "seed" in job_type.properties:
            config.setdefault("seed", self.server.random_seed())
        width, height = action.pop("size") if action else job_type.size(config)
        job = self.server.new_job(request, "v2", {"type": job_type.name, **config}, width, height, action=action)
        job.extra.update(type=job_type, config=config, inputs=inputs, priced=request.query.get("price") == "true")
        return job, None

    def _v2_document(self, job: Any, state: str) -> dict[str, Any]:
        now = time.monotonic()
        elapsed = max(0.0, min(now, job.created_at + job.duration) - job.created_at)
        steps = job.extra["config"].get("steps", 1)
        document: dict[str, Any] = {
            "id": job.id,
            "type": job.extra["type"].name,
            "config": job.extra["config"],
            "created_at": _iso(job.created_wall),
            "updated_at": _iso(job.created_wall + elapsed),
            "expires_at": _iso(job.created_wall + job.duration + EXPIRES_AFTER),
            "state": {"current": state},
        }
        if state in ("completed", "processed"):
            document["metrics"] = {"elapsed": elapsed, "ips": steps / elapsed if elapsed > 0 else float(steps)}
            if job.extra["priced"]:
                name = job.extra["type"].name
                product = name.removeprefix("inference.").replace(".", "-") + f"-steps-{steps}"
                document["price"] = {"product": product, "dollars": PRICES.get(name, 0.005)}
        if state == "failed":
            document["error"] = "generation failed"
        return document

    def _v2_image(self, job: Any, accept: str) -> tuple[bytes, str]:
        """The output bytes and their content type (image faults apply here)."""
        fmt = "png" if "image/png" in accept else "webp" if "image/webp" in accept else "jpeg"
        content_type = IMAGE_TYPES[fmt]
        if job.extra.get("kind") == "classify":  # its output is a label, not an image
            label = self.server.label_of(job.extra["source"])
            job.image = json.dumps({"label": label}).encode()
            return job.image, "application/json"
        fault = self.server.take_fault(job.extra.get("path", ""), self.server.IMAGE_FAULT_KINDS)
        if fault is not None and fault.kind in ("image_huge", "not_image"):
            image, content_type = self.server.faulty_image(fault), "image/png"
        else:
            image = self.server.render(job, fmt)
        job.image = image  # what was served, so tests can compare bytes
        return image, content_type

    # -- synchronous ----------------------------------------------------------------------------

    async def _v2_job(self, request: web.Request) -> web.Response:
        job, refusal = await self._v2_accept(request, is_async=False)
        if refusal is not None:
            return refusal
        if job.never_finish:
            await asyncio.Future()  # cancelled when the server closes
        if job.held:
            await self.server.until_released(job)
            await asyncio.sleep(max(0.0, job.created_at + job.duration - time.monotonic()))  # release set its end
        else:
            await asyncio.sleep(job.duration)
        if job.fail:
            return multipart_answer(self._v2_document(job, "failed"), status=500)
        job.extra["path"] = request.path
        accept = request.headers.get("Accept", "")
        image, content_type = self._v2_image(job, accept)
        if "multipart/form-data" not in accept:
            return web.Response(body=image, content_type=content_type)
        output = (image, content_type, "output." + content_type.split("/")[1].replace("jpeg", "jpg"))
        return multipart_answer(self._v2_document(job, "completed"), output=output)

    # -- asynchronous ---------------------------------------------------------------------------

    async def _v2_async_job(self, request: web.Request) -> web.Response:
        job, refusal = await self._v2_accept(request, is_async=True)
        if refusal is not None:
            return refusal
        job.extra["accept"] = request.headers.get("Accept", "")
        return web.json_response(self._v2_document(job, "processing"), status=201)

    def _async_job(self, request: web.Request) -> Any:
        """The async job named in the path; 401 and 404 (unknown or expired) as the live API answers them."""
        if not self._authorized(request):
            raise web.HTTPUnauthorized(text="token is invalid")
        job = self.server.jobs.get(request.match_info["job_id"])
        if job is None or job.api != "v2" or "accept" not in job.extra:
            raise web.HTTPNotFound(text="job not found")
        if not (job.never_finish or job.held) and time.monotonic() > job.created_at + job.duration + EXPIRES_AFTER:
            raise web.HTTPNotFound(text="job expired")
        return job

    @staticmethod
    def _async_state(job: Any) -> str:
        status = job.status()
        return "processed" if status == "succeeded" else "failed" if status == "failed" else "processing"

    async def _v2_async_state(self, request: web.Request) -> web.Response:
        job = self._async_job(request)
        job.polls += 1
        return web.Response(text=self._async_state(job))

    async def _v2_async_document(self, request: web.Request) -> web.Response:
        job = self._async_job(request)
        return web.json_response(self._v2_document(job, self._async_state(job)))

    @staticmethod
    def _output_name(job: Any) -> str:
        accept = job.extra["accept"]
        return "output." + ("png" if "image/png" in accept else "webp" if "image/webp" in accept else "jpg")

    async def _v2_async_outputs(self, request: web.Request) -> web.Response:
        job = self._async_job(request)
        return web.json_response([self._output_name(job)] if self._async_state(job) == "processed" else [])

    async def _v2_async_output(self, request: web.Request) -> web.StreamResponse:
        job = self._async_job(request)
        if self._async_state(job) != "processed" or request.match_info["name"] != self._output_name(job):
            raise web.HTTPNotFound(text="output not found")
        fault = self.server.image_fault(request.path, kinds=("image_404", "redirect"))
        if fault is not None:
            return await fault
        job.extra["path"] = request.path
        image, content_type = self._v2_image(job, job.extra["accept"] or "image/jpeg")
        return web.Response(body=image, content_type=content_type)


def _action(job_type: JobType, config: dict[str, Any], inputs: dict[str, bytes]) -> dict[str, Any] | None:
    """What a job on an image works on (see LocalProdia.new_job), with its output `size`; None for txt2img.
    SchemaError if no input came, the config names one that did not, or the image does not decode."""
    if not job_type.needs_inputs:
        return None
    if not inputs:
        raise SchemaError("no input images: send them as multipart parts named input")
    named = [config["image"]] if "image" in config else list(config.get("images", []))
    missing = [name for name in named if name not in inputs]
    if missing:
        raise SchemaError(f"input {missing[0]!r} was not uploaded: uploaded {', '.join(map(repr, inputs))}")
    name = named[0] if named else next(iter(inputs))
    try:
        width, height = input_size(inputs[name])
    except BadInput as exc:
        raise SchemaError(f"input {name!r}: {exc}") from None
    if job_type.kind == "classify":
        return {"kind": "classify", "source": inputs[name], "size": (width, height)}
    if job_type.kind == "upscale":
        factor = config["upscale"]
        return {"kind": "upscale", "source": inputs[name], "factor": factor, "size": (width * factor, height * factor)}
    size = (config.get("width", width), config.get("height", height))
    return {"kind": "transform", "source": inputs[name], "strength": config.get("strength", 0.5), "size": size}


def _read_job(content_type: str, body: bytes) -> tuple[Any, dict[str, bytes]]:
    """(the job JSON, {input filename: bytes}) of a JSON or multipart/form-data request."""
    if not content_type.lower().startswith("multipart/form-data"):
        return _json(body), {}
    head = f"Content-Type: {content_type}\r\nMIME-Version: 1.0\r\n\r\n".encode()
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(head + body)
    job: Any = None
    inputs: dict[str, bytes] = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        payload = part.get_payload(decode=True)
        data = payload if isinstance(payload, bytes) else b""
        if name == "job":
            job = _json(data)
        elif name == "input":
            inputs[part.get_filename() or f"input-{len(inputs)}"] = data
    return job, inputs


def _refusal(job_type: str, config: Any, error: str) -> web.Response:
    """A 400 as the live API gives it: multipart, the `job` part carrying `error` and `id`."""
    document = {"id": str(uuid.uuid4()), "type": job_type, "config": config, "state": {"current": "failed"}}
    return multipart_answer({**document, "error": error}, status=400)


def multipart_answer(
    document: dict[str, Any],
    *,
    status: int = 200,
    output: tuple[bytes, str, str] | None = None,
    headers: dict[str, str] | None = None,
) -> web.Response:
    with aiohttp.MultipartWriter("form-data") as multipart:
        part = multipart.append_json(document)
        part.set_content_disposition("form-data", name="job", filename="job.json")
        if output is not None:
            image, content_type, filename = output
            part = multipart.append(image, {"Content-Type": content_type})
            part.set_content_disposition("form-data", name="output", filename=filename)
    return web.Response(body=multipart, status=status, headers=headers)  # its Content-Type carries the boundary


def _json(body: bytes) -> Any:
    try:
        return json.loads(body) if body else None
    except ValueError:
        return None


def _iso(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, UTC).isoformat().replace("+00:00", "Z")
