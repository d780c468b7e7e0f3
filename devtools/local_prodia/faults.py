"""Faults on demand: what a :class:`Fault` can be, which requests it hits, and the answers it gives.

Request faults (``status``, ``malformed_json``, ``slow``, ``disconnect``) are taken in the server's
middleware, before auth; job faults (``job_fails``, ``never_finish``) when a job is made; image faults
(``image_404``, ``image_huge``, ``not_image``, ``redirect``) when an image is served. A status fault's
body comes in three shapes: ``{"message"}`` JSON, v2's multipart ``job`` part with ``error``, or text."""

from __future__ import annotations

import asyncio
import contextlib
import fnmatch
import uuid
from collections.abc import Callable, Collection
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

from aiohttp import web

from .drawing import NOT_IMAGE, huge_png
from .v2 import multipart_answer

REQUEST_FAULTS = frozenset({"status", "malformed_json", "slow", "disconnect"})
JOB_FAULTS = frozenset({"job_fails", "never_finish"})
IMAGE_FAULTS = frozenset({"image_404", "image_huge", "not_image", "redirect"})
FAULT_KINDS = REQUEST_FAULTS | JOB_FAULTS | IMAGE_FAULTS
FAULT_SHAPES = frozenset({"json", "multipart", "text"})
# Caps on a fault's numbers, so a control request cannot make the server allocate or wait without bound: `size`
# above MAX_IMAGE_BYTES's own maximum (100 MiB) still fits, and an hour outlasts any test or benchmark.
MAX_FAULT_SIZE = 128 * 1024 * 1024  # bytes
MAX_FAULT_SECONDS = 3600.0  # `delay`, `retry_after`
MAX_FAULT_TIMES = 1_000_000
_LIMITS = {  # field: (least, most, whole numbers only)
    "status": (100, 599, True),
    "delay": (0, MAX_FAULT_SECONDS, False),
    "retry_after": (0, MAX_FAULT_SECONDS, False),  # or None
    "size": (0, MAX_FAULT_SIZE, True),
    "times": (1, MAX_FAULT_TIMES, True),  # or None
}


@dataclass
class Fault:
    kind: str
    status: int = 500
    retry_after: float | None = None
    delay: float = 0.0
    size: int = 0
    location: str = ""  # a redirect's target; on a status fault, sent as its Location header
    message: str | None = None
    times: int | None = 1  # matching requests it applies to; None = forever
    path: str = "*"  # fnmatch pattern on the request path
    shape: str = "json"  # a status fault's body: {"message"} JSON, v2's multipart `job.error`, or plain text

    def __post_init__(self) -> None:
        if self.kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {self.kind!r}; expected one of {sorted(FAULT_KINDS)}")
        if self.shape not in FAULT_SHAPES:
            raise ValueError(f"unknown fault shape {self.shape!r}; expected one of {sorted(FAULT_SHAPES)}")
        for name, (low, high, whole) in _LIMITS.items():
            value = getattr(self, name)
            if value is None and name in ("retry_after", "times"):
                continue
            kind = int if whole else int | float
            if isinstance(value, bool) or not isinstance(value, kind) or not low <= value <= high:
                what = "a whole number" if whole else "a number"
                raise ValueError(f"{name} must be {what} from {low:g} to {high:g}, got {value!r}")


class Faults(list[Fault]):
    """The faults waiting to be served, in the order added; a plain list to tests."""

    def take(self, path: str, kinds: Collection[str]) -> Fault | None:
        """Return the first fault of these kinds matching path, consuming one of its uses."""
        for fault in self:
            if fault.kind in kinds and fnmatch.fnmatchcase(path, fault.path):
                if fault.times is not None:
                    fault.times -= 1
                    if fault.times <= 0:
                        self.remove(fault)
                return fault
        return None


async def request_fault_answer(fault: Fault, request: web.Request, handler: Callable) -> web.StreamResponse:
    """What a request gets under a request fault (a ``slow`` one still reaches the handler)."""
    if fault.kind == "slow":
        await asyncio.sleep(fault.delay)
        return await handler(request)
    if fault.kind == "disconnect":
        if request.transport is not None:
            request.transport.close()  # the client sees a disconnect, not a status
        return web.Response()  # never sent: the transport is gone
    if fault.kind == "malformed_json":
        return web.Response(text='{"job": "', content_type="application/json")
    headers = {} if fault.retry_after is None else {"Retry-After": f"{fault.retry_after:g}"}
    if fault.location:
        headers["Location"] = fault.location
    message = fault.message or _reason(fault.status)
    if fault.shape == "text":
        return web.Response(text=message, status=fault.status, headers=headers)
    if fault.shape == "multipart":
        return multipart_answer({"id": str(uuid.uuid4()), "error": message}, status=fault.status, headers=headers)
    return web.json_response({"message": message}, status=fault.status, headers=headers)


async def image_fault_answer(fault: Fault, on_streamed: Callable[[int], None] | None = None) -> web.StreamResponse:
    """What an image download gets instead of the image; `on_streamed` hears how many bytes of an ``image_huge``
    answer were written before it ended (all of them, or fewer when the client hung up)."""
    if fault.kind == "image_404":
        return web.json_response({"message": "Not Found"}, status=404)
    if fault.kind == "redirect":
        return web.Response(status=302, headers={"Location": fault.location})
    if fault.kind == "image_huge":
        return StreamedHuge(fault.size, on_streamed)
    return web.Response(body=faulty_image(fault), content_type="image/png")


def faulty_image(fault: Fault) -> bytes:
    """The bytes served as the image under an ``image_huge`` (a whole PNG of `size` bytes) or ``not_image``
    fault."""
    return huge_png(fault.size) if fault.kind == "image_huge" else NOT_IMAGE


class StreamedHuge(web.StreamResponse):
    """A PNG of `size` bytes streamed chunked, without Content-Length, so only a streaming cap catches it.
    `on_streamed` hears the bytes written before the answer ended: a client that stops reading and hangs up
    leaves the rest unsent."""

    def __init__(self, size: int, on_streamed: Callable[[int], None] | None = None) -> None:
        super().__init__(headers={"Content-Type": "image/png"})
        self.enable_chunked_encoding()
        self._data = huge_png(size)
        self._on_streamed = on_streamed

    async def prepare(self, request: web.BaseRequest) -> Any:
        writer = await super().prepare(request)
        chunk, written = 64 * 1024, 0
        try:
            for start in range(0, len(self._data), chunk):
                await self.write(self._data[start : start + chunk])
                written += len(self._data[start : start + chunk])
            await self.write_eof()
        finally:
            if self._on_streamed is not None:
                self._on_streamed(written)
        return writer


def _reason(status: int) -> str:
    with contextlib.suppress(ValueError):
        return HTTPStatus(status).phrase
    return "Error"
