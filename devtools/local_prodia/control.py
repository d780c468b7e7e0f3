"""The control API under ``/_control/``, for driving the server from outside its process.

``POST /faults`` adds a :class:`Fault` (its fields as JSON; 400 if bad), ``DELETE /faults`` clears them,
``GET /jobs`` lists the jobs with status and timings, ``POST /finish`` ends every running job now (the
benchmark's barrier; a JSON body ``{"spread": s, "seed": n}`` spreads the ends over the next s seconds) and
``POST /reset`` forgets jobs, recorded requests and faults. These requests are neither recorded nor faulted."""

from __future__ import annotations

import dataclasses
import time
from typing import TYPE_CHECKING

from aiohttp import web

from .faults import Fault

if TYPE_CHECKING:
    from .server import LocalProdia


class ControlApi:
    """The control handlers, on the server's shared state (jobs, faults, recorded requests)."""

    def __init__(self, server: LocalProdia) -> None:
        self.server = server

    def routes(self) -> list[web.RouteDef]:
        return [
            web.post("/_control/faults", self._add_fault),
            web.delete("/_control/faults", self._clear_faults),
            web.get("/_control/jobs", self._jobs),
            web.post("/_control/reset", self._reset),
            web.post("/_control/finish", self._finish),
        ]

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
        return web.json_response({"finished": self.server.finish_all(spread, seed)})

    async def _reset(self, request: web.Request) -> web.Response:
        self.server.jobs.clear()
        self.server.requests.clear()
        self.server.clear_faults()
        return web.Response(status=204)
