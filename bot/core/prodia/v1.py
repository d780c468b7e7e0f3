"""Prodia v1: submit a job, poll it until it succeeds or fails, download the image.

Every kind of job takes that path; only the endpoint and the body differ. A generation goes to
`/sd/generate` or `/sdxl/generate`; a variation to `/sd/transform` or `/sdxl/transform` by the model's family
(the official client's `transform`, prodia.ts: `imageUrl`|`imageData`, `denoising_strength`, no size: the
result takes the input's; prodiapy's `transform` posts the same to `/sdxl/transform`); an upscale to `/upscale`
with `resize` 2|4 (prodia-api.md section 2; prodiapy's `upscale`). The image goes as `imageData`, plain base64
(no `data:` prefix), as the third-party clients send it: the bot holds the bytes, and `imageUrl` would make
Prodia fetch a URL that may have expired.
"""

from __future__ import annotations

import base64
from typing import Any

from ..catalog import UPSCALE_FACTOR, PreparedJob
from ..errors import BadResponse, JobFailed
from .base import Output, PollAnswer, ProdiaClient, Progress, ProgressCallback, Sends


class ProdiaV1(ProdiaClient):
    api = "v1"

    def _auth_headers(self) -> dict[str, str]:
        return {"X-Prodia-Key": self._key}

    @staticmethod
    def path(job: PreparedJob) -> str:
        """Where the job is submitted."""
        if job.kind == "upscale":
            return "/upscale"
        family = "sdxl" if job.model.family == "sdxl" else "sd"
        return f"/{family}/{'transform' if job.kind == 'transform' else 'generate'}"

    @staticmethod
    def body(job: PreparedJob) -> dict[str, Any]:
        """The JSON body of the job's POST (note `cfg_scale`, not `cfg`)."""
        request = job.request
        if job.kind == "upscale":
            return {"imageData": _base64(job.input_image), "resize": UPSCALE_FACTOR}
        body: dict[str, Any] = {
            "prompt": request.prompt,
            "model": job.model.name,
            "steps": job.steps,
            "cfg_scale": request.cfg,
            "seed": request.seed,
            "sampler": request.sampler,
        }
        if request.negative_prompt:
            body["negative_prompt"] = request.negative_prompt
        if job.kind == "transform":
            body["imageData"] = _base64(job.input_image)
            body["denoising_strength"] = job.strength
        elif job.model.family == "sd":
            body["aspect_ratio"] = request.aspect_ratio
        else:
            body["width"], body["height"] = job.model.size(request.aspect_ratio)
        if request.style and job.kind == "generate":  # documented for the generate endpoints
            body["style_preset"] = request.style
        return body

    async def model_lists(self) -> tuple[list[str], list[str], list[str]]:
        """Prodia's live lists: SD models, SDXL models, SD samplers (BadResponse if not lists of names)."""
        lists = []
        for path in ("/sd/models", "/sdxl/models", "/sd/samplers"):
            names = (await self._call("GET", path)).json()
            if not isinstance(names, list) or not all(isinstance(n, str) and n for n in names):
                raise BadResponse(f"{path} is not a list of names")
            lists.append(names)
        return lists[0], lists[1], lists[2]

    async def submit(self, job: PreparedJob, sends: Sends | None = None) -> str:
        answer = (await self._send_job(sends or Sends(), "POST", self.path(job), json=self.body(job))).json()
        job_id = answer.get("job") if isinstance(answer, dict) else None
        if not isinstance(job_id, str) or not job_id:
            raise BadResponse("Prodia's submit answer has no job id")
        return job_id

    async def _run(self, job: PreparedJob, progress: ProgressCallback, job_id: str | None, sends: Sends) -> Output:
        if job_id is None:  # with an id (a restart resumes the job) it is polled, never sent again
            job_id = await self.submit(job, sends)
        await progress(Progress("submitted", job_id))
        image_url = await self.wait(job_id, job.poll_key, progress)
        await progress(Progress("downloading", job_id))
        return Output(await self.download_image(image_url), job.request.seed or 0, job_id)

    async def wait(self, job_id: str, model: str, progress: ProgressCallback) -> str:
        """Poll GET /job/<id> until it succeeds (returns the image URL) or fails."""

        async def check() -> PollAnswer[str]:
            answer = await self._call("GET", f"/job/{job_id}")
            document = answer.json()
            status = document.get("status") if isinstance(document, dict) else None
            if status == "succeeded":
                url = document.get("imageUrl")
                if not isinstance(url, str):
                    raise BadResponse("succeeded job has no imageUrl")
                return PollAnswer("done", url, answer.retry_after)
            if status == "failed":
                raise JobFailed(f"job {job_id} failed", reason="")
            if status not in ("queued", "generating"):
                raise BadResponse(f"unknown job status {status!r}")
            return PollAnswer(status, None, answer.retry_after)

        return await self.poll(job_id, model, progress, check)


def _base64(image: bytes | None) -> str:
    return base64.b64encode(image or b"").decode("ascii")
