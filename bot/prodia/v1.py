"""Prodia v1: submit a job, poll it until it succeeds or fails, download the image."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import aiohttp

from ..catalog import PreparedJob
from ..config import Settings
from ..errors import BadResponse, JobFailed
from .base import ProdiaClient, Progress, ProgressCallback
from .polling import PollPolicy


class ProdiaV1(ProdiaClient):
    api = "v1"

    def __init__(
        self, session: aiohttp.ClientSession, settings: Settings, *, poll_policy: PollPolicy | None = None
    ) -> None:
        super().__init__(session, settings)
        self.poll_policy = poll_policy or PollPolicy(settings.prodia_poll_interval)

    def _auth_headers(self) -> dict[str, str]:
        return {"X-Prodia-Key": self._key}

    @staticmethod
    def body(job: PreparedJob) -> dict[str, Any]:
        """The JSON body of POST /sd/generate or /sdxl/generate (note `cfg_scale`, not `cfg`)."""
        request = job.request
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
        if job.model.family == "sd":
            body["aspect_ratio"] = request.aspect_ratio
        else:
            body["width"], body["height"] = job.model.size(request.aspect_ratio)
        return body

    async def submit(self, job: PreparedJob) -> str:
        path = "/sdxl/generate" if job.model.family == "sdxl" else "/sd/generate"
        answer = (await self._call("POST", path, json=self.body(job))).json()
        job_id = answer.get("job") if isinstance(answer, dict) else None
        if not isinstance(job_id, str) or not job_id:
            raise BadResponse("Prodia's submit answer has no job id")
        return job_id

    async def _run(
        self, job: PreparedJob, progress: ProgressCallback, job_id: str | None
    ) -> tuple[bytes, int, str | None]:
        if job_id is None:
            job_id = await self.submit(job)
        await progress(Progress("submitted", job_id))
        image_url = await self.wait(job_id, job.model.name, progress)
        await progress(Progress("downloading", job_id))
        return await self.download_image(image_url), job.request.seed or 0, job_id

    async def wait(self, job_id: str, model: str, progress: ProgressCallback) -> str:
        """Poll GET /job/<id> until it succeeds (returns the image URL) or fails; statuses go to `progress`."""
        started = time.monotonic()
        status: str | None = None
        while True:
            await asyncio.sleep(self.poll_policy.delay(model, time.monotonic() - started, status or "submitted"))
            answer = (await self._call("GET", f"/job/{job_id}")).json()
            new_status = answer.get("status") if isinstance(answer, dict) else None
            if new_status == "succeeded":
                self.poll_policy.observe(model, time.monotonic() - started)
                url = answer.get("imageUrl")
                if not isinstance(url, str):
                    raise BadResponse("succeeded job has no imageUrl")
                return url
            if new_status == "failed":
                raise JobFailed(f"job {job_id} failed", reason="")
            if new_status not in ("queued", "generating"):
                raise BadResponse(f"unknown job status {new_status!r}")
            if new_status != status:
                status = new_status
                await progress(Progress(status, job_id))
