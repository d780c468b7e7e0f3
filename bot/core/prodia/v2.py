"""Prodia v2: a job runs synchronously (one `POST /job` answering with the image) or asynchronously
(`POST /job/async`, then poll its state by id and fetch the output).

Sync is one request, but a job cut off by a restart can only be sent again (and billed again); async
costs a few small requests more and survives restarts: the journal keeps the id and resumes it.
`PRODIA_V2_MODE` picks `sync`, `async` or `auto` (async where the job type accepts it, learned per type).
Either way a POST that may have run (5xx, dropped connection) is sent again at most once.

A variation runs the model's img2img job type, an upscale `inference.upscale.v1` (see `bot.core.catalog` for the
evidence); their image can only go as multipart (prodia-api.md 3a), so such a job is sent as the official client
sends every job (prodia-js v2/index.ts): an `input` part with the image, then a `job` part (`job.json`,
`application/json`)."""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any
from urllib.parse import quote

import aiohttp

from ..catalog import UPSCALE_FACTOR, UPSCALERS, PreparedJob
from ..config import Settings
from ..content import CLASSIFIER_JOB_TYPE, label_of
from ..errors import BadResponse, InvalidRequest, JobFailed, ProdiaError
from .base import Output, PollAnswer, ProdiaClient, Progress, ProgressCallback, Sends
from .http import ApiResponse, clean_reason

log = logging.getLogger(__name__)

ACCEPT = "multipart/form-data; image/png"  # what the official client asks for: the job's JSON and the image
POST_RESENDS = 1  # a job POST answered 5xx or cut off may have run: send it again once, never more
PRICED = {"price": "true"}  # asks Prodia to put the job's price in its JSON
UPSCALE_JOB_TYPE = UPSCALERS["v2"][0]
# An input part's filename and type by the image's first bytes; its config names it (`image`, as third-party code
# does for `inference.upscale.v1`, like `images` in the documented FLUX.2 img2img schema).
INPUT_TYPES = (
    (b"\x89PNG\r\n\x1a\n", "input.png", "image/png"),
    (b"\xff\xd8\xff", "input.jpg", "image/jpeg"),
    (b"RIFF", "input.webp", "image/webp"),
)


class JobGone(JobFailed):
    """Prodia no longer knows an async job id (404: unknown or expired)."""


class ProdiaV2(ProdiaClient):
    api = "v2"
    accept = ACCEPT

    def __init__(self, session: aiohttp.ClientSession, settings: Settings, **kwargs: Any) -> None:
        super().__init__(session, settings, **kwargs)
        self.mode = settings.prodia_v2_mode
        self.sync_only: set[str] = set()  # job types whose async endpoint refused them (auto mode)

    def _auth_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self._key}"}

    @staticmethod
    def body(job: PreparedJob) -> dict[str, Any]:
        """The job JSON: only the config fields the job type documents (a variation's type has no size: the
        result takes the input's)."""
        request, model = job.request, job.model
        if job.kind == "upscale":
            return {"type": UPSCALE_JOB_TYPE, "config": {"image": input_file(job)[0], "upscale": UPSCALE_FACTOR}}
        job_type, fields = (
            (model.img2img_type, model.img2img_fields) if job.kind == "transform" else (model.job_type, model.fields)
        )
        config: dict[str, Any] = {"prompt": request.prompt, "seed": request.seed}
        if "steps" in fields:
            config["steps"] = job.steps
        if "width" in fields:
            config["width"], config["height"] = model.size(request.aspect_ratio)
        if "negative_prompt" in fields and request.negative_prompt:
            config["negative_prompt"] = request.negative_prompt
        if "guidance" in fields:
            config["guidance"] = request.cfg
        if "strength" in fields:
            config["strength"] = job.strength
        if "style_preset" in fields and request.style:
            config["style_preset"] = request.style
        return {"type": job_type, "config": config}

    def payload(self, job: PreparedJob) -> dict[str, Any]:
        """The request body, as `session.request` takes it: JSON, or multipart where an image goes with it."""
        body = self.body(job)
        if job.input_image is None:
            return {"json": body}
        multipart = aiohttp.MultipartWriter("form-data")
        name, content_type = input_file(job)
        multipart.append(job.input_image, {"Content-Type": content_type}).set_content_disposition(
            "form-data", name="input", filename=name
        )
        multipart.append(json.dumps(body), {"Content-Type": "application/json"}).set_content_disposition(
            "form-data", name="job", filename="job.json"
        )
        return {"data": multipart}

    async def classify(self, image: bytes) -> tuple[str, float | None]:
        """One synchronous classifier job (`bot.core.content.CLASSIFIER_JOB_TYPE`) with `image` as its input part.
        Its output's format is not documented: `content.label_of` reads the likely ones."""
        name, content_type = _input_type(image)
        multipart = aiohttp.MultipartWriter("form-data")
        multipart.append(image, {"Content-Type": content_type}).set_content_disposition(
            "form-data", name="input", filename=name
        )
        body = {"type": CLASSIFIER_JOB_TYPE, "config": {}}
        multipart.append(json.dumps(body), {"Content-Type": "application/json"}).set_content_disposition(
            "form-data", name="job", filename="job.json"
        )
        answer = await self._send_job(
            Sends(), "POST", "/job", data=multipart, params=PRICED,
            headers={"Accept": "multipart/form-data; application/json"}, resends=POST_RESENDS,
        )  # fmt: skip
        if answer.parts is None:
            return label_of(answer.body), None
        if "output" not in answer.parts:
            raise BadResponse("Prodia's classifier answer has no output part")
        return label_of(answer.parts["output"]), _price(answer.part_json("job"))

    def uses_async(self, job_type: str) -> bool:
        return self.mode == "async" or (self.mode == "auto" and job_type not in self.sync_only)

    async def _run(self, job: PreparedJob, progress: ProgressCallback, job_id: str | None, sends: Sends) -> Output:
        if job_id is not None:
            # Resuming an async job after a restart: pick it up by id. Prodia accepted (and billed) it, so it is
            # never sent again, even if Prodia no longer knows it (JobGone: the job fails).
            return await self._finish(job, job_id, progress)
        job_type = self.body(job)["type"] or ""
        if not self.uses_async(job_type):
            return await self._run_sync(job, progress, sends)
        try:
            job_id = await self._submit(job, sends)
        except InvalidRequest:
            if self.mode != "auto":
                raise
            # The async endpoint refused it: the type may not permit async. Sync tells: a bad config is
            # refused there too (and not scheduled, so not billed); success means sync is this type's way.
            out = await self._run_sync(job, progress, sends)
            log.info("Job type %s is not accepted asynchronously; it runs synchronously from now on", job_type)
            self.sync_only.add(job_type)
            return out
        await progress(Progress("submitted", job_id))
        return await self._finish(job, job_id, progress)

    async def _run_sync(self, job: PreparedJob, progress: ProgressCallback, sends: Sends) -> Output:
        await progress(Progress("generating"))
        answer = await self._send_job(
            sends, "POST", "/job", **self.payload(job), params=PRICED, headers={"Accept": self.accept},
            resends=POST_RESENDS,
        )  # fmt: skip
        seed = job.request.seed or 0
        if answer.parts is None:
            return Output(answer.body, seed)  # a raw image: Prodia may answer so when multipart is not needed
        if "output" not in answer.parts:
            raise BadResponse("Prodia's multipart answer has no output part")
        document = answer.part_json("job")
        return Output(answer.parts["output"], _seed(document, seed), _id(document), _price(document))

    async def _submit(self, job: PreparedJob, sends: Sends | None = None) -> str:
        """POST /job/async: Prodia answers 201 with the job's JSON at once."""
        answer = await self._send_job(
            sends or Sends(), "POST", "/job/async", **self.payload(job), params=PRICED,
            headers={"Accept": "application/json"}, resends=POST_RESENDS,
        )  # fmt: skip
        job_id = _id(_document(answer))
        if job_id is None:
            raise BadResponse("Prodia's async answer has no job id")
        return job_id

    async def _finish(self, job: PreparedJob, job_id: str, progress: ProgressCallback) -> Output:
        """Poll an async job's state until processed, then read its JSON and download its output."""
        root = f"/job/async/{quote(job_id, safe='')}"

        async def check() -> PollAnswer[None]:
            answer = await self._get(f"{root}/job.state.current")
            state = answer.body.decode("utf-8", "replace").strip().strip('"')
            if state == "processed":
                return PollAnswer("done", None, answer.retry_after)
            if state == "failed":
                document = _document(await self._get(f"{root}/job.json"))
                reason = clean_reason(self._redact(str(document.get("error") or "")))
                raise JobFailed(f"job {job_id} failed: {reason}", reason=reason)
            if state in ("queued", "pending"):
                return PollAnswer("queued", None, answer.retry_after)
            if state == "processing":
                return PollAnswer("generating", None, answer.retry_after)
            raise BadResponse(f"unknown job state {clean_reason(state, 40)!r}")

        await self.poll(job_id, job.poll_key, progress, check)
        await progress(Progress("downloading", job_id))
        job_json, output_list = await asyncio.gather(self._get(f"{root}/job.json"), self._get(f"{root}/output"))
        document, names = _document(job_json), output_list.json()
        if not isinstance(names, list) or not names or not all(isinstance(n, str) and n for n in names):
            raise BadResponse("Prodia's output list of a processed job is not a list of names")
        image = await self._get(f"{root}/output/{quote(names[0], safe='')}")
        return Output(image.body, _seed(document, job.request.seed or 0), job_id, _price(document))

    async def _get(self, path: str) -> ApiResponse:
        try:
            return await self._call("GET", path)
        except ProdiaError as exc:
            if exc.status == 404:
                raise JobGone(str(exc), reason="") from None
            raise


def input_file(job: PreparedJob) -> tuple[str, str]:
    """The filename and content type of a job's input part (`input.png`, `image/png` ...)."""
    return _input_type(job.input_image or b"")


def _input_type(image: bytes) -> tuple[str, str]:
    for magic, name, content_type in INPUT_TYPES:
        if image.startswith(magic):
            return name, content_type
    return "input", "application/octet-stream"  # Prodia judges it: an image it cannot read is refused (400)


def _document(answer: ApiResponse) -> dict[str, Any]:
    document = answer.json()
    if not isinstance(document, dict):
        raise BadResponse("Prodia's job JSON is not an object")
    return document


def _id(document: Any) -> str | None:
    job_id = document.get("id") if isinstance(document, dict) else None
    return job_id if isinstance(job_id, str) and job_id else None


def _seed(document: Any, default: int) -> int:
    config = document.get("config") if isinstance(document, dict) else None
    seed = config.get("seed") if isinstance(config, dict) else None
    return seed if isinstance(seed, int) and not isinstance(seed, bool) else default


def _price(document: Any) -> float | None:
    """`price.dollars` of a job asked for with `?price=true`, if Prodia gave it."""
    price = document.get("price") if isinstance(document, dict) else None
    dollars = price.get("dollars") if isinstance(price, dict) else None
    return float(dollars) if isinstance(dollars, int | float) and not isinstance(dollars, bool) else None
