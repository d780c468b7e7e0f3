"""The control API under ``/_control/``, for driving the server from outside its process.

``POST /faults`` adds a :class:`Fault` (its fields as JSON; 400 if bad), ``DELETE /faults`` clears them,
``GET /jobs`` lists the jobs with status and timings, ``POST /finish`` ends every running job now (the
benchmark's barrier; a JSON body ``{"spread": s, "seed": n}`` spreads the ends over the next s seconds) and
``POST /reset`` forgets jobs, recorded requests, streamed byte counts and faults. These requests are neither
recorded nor faulted.

It is for programs on this machine only. Requests whose ``Host`` is not a loopback name with the server's own
port (``127.0.0.1:PORT``, ``localhost:PORT``, ``[::1]:PORT``) are refused with 403: a web page whose domain an
attacker re-points at 127.0.0.1 (DNS rebinding) can make a browser send requests here, but with its own name
in ``Host``. Numbers are capped (see `faults`): a fault's ``size`` at 128 MiB, ``delay`` and ``retry_after`` at
3600 s, ``times`` at 1,000,000, ``status`` within 100-599, and ``/finish``'s ``spread`` at 3600 s; past a cap
the answer is 400."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from aiohttp import web

from .faults import MAX_FAULT_SECONDS, Fault

if TYPE_CHECKING:
    from .server import LocalProdia


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
LOOPBACK_NAMES = frozenset({"127.0.0.1", "localhost", "::1"})


class ControlApi:
    """The control handlers, on the server's shared state (jobs, faults, recorded requests)."""

    def __init__(self, server: LocalProdia) -> None:
        self.server = server

    def routes(self) -> list[web.RouteDef]:
        local = self._loopback_only
        return [
            web.post("/_control/faults", local(self._add_fault)),
            web.delete("/_control/faults", local(self._clear_faults)),
            web.get("/_control/jobs", local(self._jobs)),
            web.post("/_control/reset", local(self._reset)),
            web.post("/_control/finish", local(self._finish)),
        ]

    def _loopback_only(self, handler: Handler) -> Handler:
        async def guarded(request: web.Request) -> web.StreamResponse:
            if not self._addressed_by_loopback_name(request.headers.get("Host", "")):
                return web.json_response({"message": "the control API answers loopback hosts only"}, status=403)
            return await handler(request)

        return guarded

    def _addressed_by_loopback_name(self, host: str) -> bool:
        try:
            parts = urlsplit(f"//{host}")
            return parts.hostname in LOOPBACK_NAMES and parts.port == self.server.port
        except ValueError:  # a malformed port
            return False

    async def _add_fault(self, request: web.Request) -> web.Response:
        try:
            fault = Fault(**await request.json())
        except (TypeError, ValueError) as exc:
            return web.json_response({"message": f"bad fault: {exc}"}, status=400)
        self.server.add_fault(fault)
        return web.json_response(dataclasses.asdict(fault), status=201)

    async def _clear_faults(self, request: web.Request) -> web.Response:
        self.server.clear_faults()
        return web.Response(status=204)

    async def _jobs(self, request: web.Request) -> web.Response:
        now = time.monotonic()
        return web.json_response(
            [
                {
                    "id": job.id,
                    "api": job.api,
                    "status": job.status(now),
                    "created_wall": job.created_wall,
                    "finished_wall": job.finished_wall,
                    "found_wall": job.found_wall,
                    "polls": job.polls,
                    "prompt": job.params.get("prompt"),
                    "duration": job.duration,
                }
                for job in self.server.jobs.values()
            ]
        )

    async def _finish(self, request: web.Request) -> web.Response:
        body = await request.json() if request.can_read_body else {}
        spread, seed = body.get("spread", 0.0), body.get("seed")
        if isinstance(spread, bool) or not isinstance(spread, int | float) or not 0 <= spread <= MAX_FAULT_SECONDS:
            return web.json_response({"message": f"spread must be 0 to {MAX_FAULT_SECONDS:g} seconds"}, status=400)
        return web.json_response({"finished": self.server.finish_all(spread, seed)})

    async def _reset(self, request: web.Request) -> web.Response:
        self.server.jobs.clear()
        self.server.requests.clear()
        self.server.streamed.clear()
        self.server.clear_faults()
        return web.Response(status=204)
