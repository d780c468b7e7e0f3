"""Image downloads (`ProdiaClient.download_image`) against an image host on 127.0.0.1 that answers what a test
asks: every redirect status followed (each hop checked), at most MAX_REDIRECTS of them, and which answers are tried
again after how long (the client's `sleep` is observed, never waited on)."""

from __future__ import annotations

import aiohttp
import pytest
from aiohttp import web

from bot.core.errors import BadResponse, CapacityError, ServerError
from bot.core.prodia.base import MAX_REDIRECTS
from tests.unit.core.prodia.test_clients import make_client

PNG = b"\x89PNG\r\n\x1a\n" + bytes(32)


class ImageHost:
    """`/hops/{status}/{n}`: n redirects with `status` (a relative Location), then the image. `/fail/{status}`: the
    first request answers `status` (with `?retry_after=` as its Retry-After), the next ones the image."""

    def __init__(self) -> None:
        self.paths: list[str] = []
        app = web.Application()
        app.router.add_get("/hops/{status}/{n}", self._hops)
        app.router.add_get("/fail/{status}", self._fail)
        self.runner = web.AppRunner(app)

    async def _hops(self, request: web.Request) -> web.Response:
        self.paths.append(request.path)
        status, n = int(request.match_info["status"]), int(request.match_info["n"])
        if n == 0:
            return web.Response(body=PNG, content_type="image/png")
        return web.Response(status=status, headers={"Location": f"/hops/{status}/{n - 1}"})

    async def _fail(self, request: web.Request) -> web.Response:
        self.paths.append(request.path)
        if self.paths.count(request.path) > 1:
            return web.Response(body=PNG, content_type="image/png")
        headers = {"Retry-After": request.query["retry_after"]} if "retry_after" in request.query else {}
        return web.Response(status=int(request.match_info["status"]), headers=headers)

    async def __aenter__(self) -> ImageHost:
        await self.runner.setup()
        await web.TCPSite(self.runner, "127.0.0.1", 0).start()
        self.url = f"http://127.0.0.1:{self.runner.addresses[0][1]}"
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.runner.cleanup()


@pytest.fixture
async def host():
    async with ImageHost() as host:
        yield host


@pytest.fixture
async def client(prodia):
    async with aiohttp.ClientSession() as session:
        client = make_client(session, prodia, "v1")  # 127.0.0.1 is the API's host: its images are allowed there
        client.waits = []

        async def sleep(seconds: float) -> None:
            client.waits.append(seconds)

        client.sleep = sleep
        yield client


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
async def test_every_redirect_status_is_followed(client, host, status):
    assert await client.download_image(f"{host.url}/hops/{status}/1") == PNG
    assert host.paths == [f"/hops/{status}/1", f"/hops/{status}/0"]


async def test_at_most_max_redirects_are_followed(client, host):
    assert await client.download_image(f"{host.url}/hops/302/{MAX_REDIRECTS}") == PNG
    host.paths.clear()
    with pytest.raises(BadResponse, match="redirected too often"):
        await client.download_image(f"{host.url}/hops/302/{MAX_REDIRECTS + 1}")
    assert len(host.paths) == MAX_REDIRECTS + 1  # the last redirect is not followed


async def test_a_3xx_that_is_no_redirect_is_refused(client, host):
    with pytest.raises(BadResponse, match="HTTP 300"):
        await client.download_image(f"{host.url}/hops/300/1")
    assert client.waits == []


@pytest.mark.parametrize(
    ("retry_after", "wait"),
    [(None, 1.0), ("soon", 1.0), ("0", 0.0), ("60", 60.0)],  # absent or not a number: a second
)
async def test_a_429_is_waited_out_as_its_retry_after_says(client, host, retry_after, wait):
    query = "" if retry_after is None else f"?retry_after={retry_after}"
    assert await client.download_image(f"{host.url}/fail/429{query}") == PNG
    assert client.waits == [wait]


@pytest.mark.parametrize("retry_after", ["61", "-1"])
async def test_a_429_asking_too_long_or_nonsense_is_not_waited_for(client, host, retry_after):
    with pytest.raises(BadResponse, match="HTTP 429"):
        await client.download_image(f"{host.url}/fail/429?retry_after={retry_after}")
    assert client.waits == [] and len(host.paths) == 1


@pytest.mark.parametrize("status", [500, 502, 503, 504])
async def test_a_server_error_is_tried_again_after_a_back_off(client, host, status):
    assert await client.download_image(f"{host.url}/fail/{status}") == PNG
    (wait,) = client.waits
    assert 0 < wait <= client.retry_delay  # the first back-off: half to all of the retry delay


@pytest.mark.parametrize("status", [501, 505, 404])
async def test_other_errors_are_not_tried_again(client, host, status):
    with pytest.raises(BadResponse, match=f"HTTP {status}"):
        await client.download_image(f"{host.url}/fail/{status}")
    assert client.waits == [] and len(host.paths) == 1


async def test_retries_stop_after_max_retries_with_the_errors_kind(client, host):
    client.max_retries = 0
    with pytest.raises(CapacityError):
        await client.download_image(f"{host.url}/fail/429")
    with pytest.raises(ServerError):
        await client.download_image(f"{host.url}/fail/503")


@pytest.mark.parametrize(
    ("url", "allowed"),
    [
        ("https://127.0.0.1/image.png", True),  # https, on an allowed host
        ("http://127.0.0.1:9/image.png", True),  # any port
        ("ftp://127.0.0.1/image.png", False),
        ("http://127.0.0.2/image.png", False),
        ("file:///etc/passwd", False),
    ],
)
def test_only_http_and_https_on_allowed_hosts_are_downloaded(client, url, allowed):
    if allowed:
        client.check_image_url(url)
    else:
        with pytest.raises(BadResponse, match="not allowed"):
            client.check_image_url(url)


async def test_a_host_that_cannot_be_reached_is_tried_again_then_said_unavailable(client):
    client.max_retries = 2
    with pytest.raises(ServerError, match="image download failed: ClientConnectorError"):
        await client.download_image("http://127.0.0.1:9/image.png")  # the discard port: nothing listens
    assert len(client.waits) == 2 and all(0 < wait <= 2 * client.retry_delay for wait in client.waits)
