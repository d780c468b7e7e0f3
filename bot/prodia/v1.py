"""Prodia v1: submit a job, poll it until it succeeds or fails, download the image."""

from __future__ import annotations

import asyncio
import contextvars
import time
from typing import Any

import aiohttp

from ..catalog import PreparedJob
from ..config import Settings
from ..errors import BadResponse, JobFailed
from .base import ProdiaClient, Progress, ProgressCallback
from .polling import LearnedPolling, PollPolicy, PollRate

# The Retry-After of the last successful answer read in this task (the poll loop sets a holder).
_retry_after: contextvars.ContextVar[list[float | None] | None] = contextvars.ContextVar("retry_after", default=None)


class ProdiaV1(ProdiaClient):
    api = "v1"

    def __init__(
        self, session: aiohttp.ClientSession, settings: Settings, *, poll_policy: PollPolicy | None = None
    ) -> None:
        super().__init__(session, settings)
        self.poll_policy = poll_policy or LearnedPolling(settings.prodia_poll_interval)
        self.poll_rate = PollRate(settings.prodia_max_polls_per_second)

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

    async def read_capped(self, resp: aiohttp.ClientResponse, *, extra: int = 0) -> bytes:
        holder = _retry_after.get()
        if holder is not None:  # inside a poll: keep the server's pacing hint for the next delay
            holder[0] = _seconds(resp.headers.get("Retry-After"))
        return await super().read_capped(resp, extra=extra)

    async def wait(self, job_id: str, model: str, progress: ProgressCallback) -> str:
        """Poll GET /job/<id> until it succeeds (returns the image URL) or fails; statuses go to `progress`.

        The poll policy decides each delay; a Retry-After on a poll answer lengthens it. The duration it
        learns from is the midpoint between the last "not done" answer and the "done" poll when those
        are close, the time of the "done" poll if it was the first, and nothing otherwise."""
        started = time.monotonic()
        status: str | None = None
        retry_after: list[float | None] = [None]
        not_done_at: float | None = None  # the job was still running when this answer arrived (s since started)
        while True:
            wait = self.poll_policy.delay(model, time.monotonic() - started, status or "submitted")
            if retry_after[0] is not None:
                wait = max(wait, retry_after[0])
            await asyncio.sleep(wait)
            await self.poll_rate.turn()
            sent_at = time.monotonic() - started
            token = _retry_after.set(retry_after)
            try:
                retry_after[0] = None
                answer = (await self._call("GET", f"/job/{job_id}")).json()
            finally:
                _retry_after.reset(token)
            new_status = answer.get("status") if isinstance(answer, dict) else None
            if new_status == "succeeded":
                if not_done_at is None:  # done at the first poll: an upper bound, which lets a faster model be learned
                    self.poll_policy.observe(model, sent_at)
                elif sent_at - not_done_at <= max(0.5, 0.25 * sent_at):  # a narrow bracket: its midpoint
                    self.poll_policy.observe(model, (not_done_at + sent_at) / 2)
                # else: a wide bracket (a long sleep after early polls) says too little to learn from
                url = answer.get("imageUrl")
                if not isinstance(url, str):
                    raise BadResponse("succeeded job has no imageUrl")
                return url
            if new_status == "failed":
                raise JobFailed(f"job {job_id} failed", reason="")
            if new_status not in ("queued", "generating"):
                raise BadResponse(f"unknown job status {new_status!r}")
            not_done_at = time.monotonic() - started
            self.poll_policy.running(model, sent_at)
            if new_status != status:
                status = new_status
                await progress(Progress(status, job_id))


def _seconds(value: str | None) -> float | None:
    """A Retry-After in seconds (dates are not used by Prodia), bounded to a sane range."""
    if value is None:
        return None
    try:
        seconds = float(value)
    except ValueError:
        return None
    return min(seconds, 60.0) if seconds >= 0 else None
