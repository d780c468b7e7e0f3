"""Prodia v1: submit a job, poll it until it succeeds or fails, download the image."""

from __future__ import annotations

from typing import Any

from ..catalog import PreparedJob
from ..errors import BadResponse, JobFailed
from .base import Output, PollAnswer, ProdiaClient, Progress, ProgressCallback, Sends


class ProdiaV1(ProdiaClient):
    api = "v1"

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
        path = "/sdxl/generate" if job.model.family == "sdxl" else "/sd/generate"
        answer = (await self._send_job(sends or Sends(), "POST", path, json=self.body(job))).json()
        job_id = answer.get("job") if isinstance(answer, dict) else None
        if not isinstance(job_id, str) or not job_id:
            raise BadResponse("Prodia's submit answer has no job id")
        return job_id

    async def _run(self, job: PreparedJob, progress: ProgressCallback, job_id: str | None, sends: Sends) -> Output:
        if job_id is None:  # with an id (a restart resumes the job) it is polled, never sent again
            job_id = await self.submit(job, sends)
        await progress(Progress("submitted", job_id))
        image_url = await self.wait(job_id, job.model.name, progress)
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
