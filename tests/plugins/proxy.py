"""A minimal plain-HTTP forward proxy on 127.0.0.1, to prove a client really uses its ``proxy=``."""

from __future__ import annotations

from collections.abc import Mapping

import aiohttp
from aiohttp import web
from yarl import URL

# Headers that describe one connection, not the message (RFC 9110 section 7.6.1), plus those the
# proxy's own client and server recompute.
HOP_BY_HOP = frozenset(
    h.lower()
    for h in (
        "Connection", "Keep-Alive", "Proxy-Authenticate", "Proxy-Authorization", "Proxy-Connection",
        "TE", "Trailer", "Transfer-Encoding", "Upgrade", "Host", "Content-Length",
    )
)  # fmt: skip


def _end_to_end(headers: Mapping[str, str]) -> dict[str, str]:
    return {name: value for name, value in headers.items() if name.lower() not in HOP_BY_HOP}


class ForwardProxy:
    def __init__(self) -> None:
        self.seen: list[str] = []  # absolute URLs forwarded, in order
        self._runner: web.ServerRunner | None = None
        self._session: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        # No auto-decompression: bodies pass through byte for byte, Content-Encoding intact.
        self._session = aiohttp.ClientSession(auto_decompress=False)
        self._runner = web.ServerRunner(web.Server(self._forward), access_log=None, shutdown_timeout=0.1)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def __aenter__(self) -> ForwardProxy:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    @property
    def url(self) -> str:
        if self._runner is None:
            raise RuntimeError("ForwardProxy is not started")
        host, port = self._runner.addresses[0][:2]
        return f"http://{host}:{port}"

    async def _forward(self, request: web.BaseRequest) -> web.StreamResponse:
        target = request.raw_path  # the request-target exactly as sent
        if not target.startswith("http://"):
            return web.Response(status=400, text="a forward proxy needs an absolute-form http:// request line")
        self.seen.append(target)
        assert self._session is not None
        url = URL(target, encoded=True)
        try:
            # Sent to the target as if it were the next proxy, so the request line stays absolute-form
            # (servers must accept it) and LocalProdia can tell the request came through a proxy.
            upstream = await self._session.request(
                request.method,
                url,
                proxy=url.origin(),
                headers=_end_to_end(request.headers),
                data=await request.read(),
                allow_redirects=False,
            )
        except aiohttp.ClientError as exc:
            return web.Response(status=502, text=f"upstream failed: {exc!r}")
        async with upstream:
            response = web.StreamResponse(status=upstream.status, headers=_end_to_end(upstream.headers))
            if upstream.content_length is not None:
                response.content_length = upstream.content_length
            await response.prepare(request)
            async for chunk in upstream.content.iter_any():
                await response.write(chunk)
            await response.write_eof()
            return response
