"""Prodia v2: one synchronous POST /job answering with the image (multipart with the job, or raw bytes)."""

from __future__ import annotations

import json
from typing import Any

from ..catalog import PreparedJob
from ..errors import BadResponse
from .base import ProdiaClient, Progress, ProgressCallback

ACCEPT = "multipart/form-data; image/png"  # what the official client asks for: the job's JSON and the image


class ProdiaV2(ProdiaClient):
    api = "v2"
    accept = ACCEPT

    def _auth_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self._key}"}

    @staticmethod
    def body(job: PreparedJob) -> dict[str, Any]:
        request = job.request
        width, height = job.model.size(request.aspect_ratio)
        config: dict[str, Any] = {
            "prompt": request.prompt,
            "seed": request.seed,
            "steps": job.steps,
            "width": width,
            "height": height,
        }
        if "negative_prompt" not in job.model.ignores and request.negative_prompt:
            config["negative_prompt"] = request.negative_prompt
        if "cfg" not in job.model.ignores:
            config["cfg_scale"] = request.cfg
        if "sampler" not in job.model.ignores:
            config["sampler"] = request.sampler
        return {"type": job.model.job_type, "config": config}

    async def _run(
        self, job: PreparedJob, progress: ProgressCallback, job_id: str | None
    ) -> tuple[bytes, int, str | None]:
        # v2 has no job to resume: a restarted job is simply sent again with the same seed.
        await progress(Progress("generating"))
        answer = await self._call("POST", "/job", json=self.body(job), headers={"Accept": self.accept})
        seed = job.request.seed or 0
        if not answer.content_type.startswith("multipart/"):
            return answer.body, seed, None
        parts = parse_multipart(answer.content_type, answer.body)
        if "output" not in parts:
            raise BadResponse("Prodia's multipart answer has no output part")
        try:
            meta = json.loads(parts.get("job", b"{}"))
        except ValueError:
            raise BadResponse("Prodia's job part is malformed JSON") from None
        used_seed = (meta.get("config") or {}).get("seed") if isinstance(meta, dict) else None
        job_id = meta.get("id") if isinstance(meta, dict) else None
        return parts["output"], used_seed if isinstance(used_seed, int) else seed, job_id


def parse_multipart(content_type: str, body: bytes) -> dict[str, bytes]:
    """Split a multipart/form-data body into {part name: bytes}, byte-exact."""
    boundary = next(
        (p.split("=", 1)[1].strip().strip('"') for p in content_type.split(";") if p.strip().startswith("boundary=")),
        None,
    )
    if not boundary:
        raise BadResponse("multipart answer without a boundary")
    parts: dict[str, bytes] = {}
    for chunk in body.split(b"--" + boundary.encode())[1:]:
        if chunk.startswith(b"--"):
            break  # the closing delimiter
        head, sep, content = chunk.partition(b"\r\n\r\n")
        if not sep:
            raise BadResponse("malformed multipart part")
        name = _part_name(head.decode("latin-1"))
        if name:
            parts[name] = content.removesuffix(b"\r\n")
    return parts


def _part_name(head: str) -> str | None:
    for line in head.split("\r\n"):
        if line.lower().startswith("content-disposition"):
            for param in line.split(";"):
                key, _, value = param.strip().partition("=")
                if key == "name":
                    return value.strip('"')
    return None
