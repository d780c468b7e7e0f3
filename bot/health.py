"""METRICS_PORT: a small HTTP server on the bot's own loop, for the container's health check and Prometheus.

- `GET /healthz`: 200 `ok` while the bot is connected to Discord's gateway and its database answers a trivial
  query; 503 with the reason otherwise (starting, stopping, disconnected, database down).
- `GET /metrics`: the bot's metrics (`bot.metrics`) in Prometheus's text format.

It listens on METRICS_HOST (127.0.0.1 unless set) and is off unless METRICS_PORT is set.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

import discord
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST

from .core.config import ConfigError, Settings

if TYPE_CHECKING:
    from .client import ImagineBot, ShardedImagineBot

log = logging.getLogger(__name__)

STORE_TIMEOUT = 2.0  # seconds the database may take to answer before the bot counts as unhealthy


def gateway_problem(bot: ImagineBot | ShardedImagineBot) -> str | None:
    """Why the bot is not connected to Discord's gateway, or None if it is."""
    if bot.stopping or bot.is_closed():
        return "the bot is stopping"
    if not bot.is_ready():
        return "not connected to Discord yet"
    if isinstance(bot, discord.AutoShardedClient):
        down = sorted(shard_id for shard_id, shard in bot.shards.items() if shard.is_closed())
        if down:
            return f"shards {', '.join(map(str, down))} disconnected from Discord"
    elif bot.ws is None or not bot.ws.open:
        return "disconnected from Discord"
    return None


async def store_problem(bot: ImagineBot | ShardedImagineBot) -> str | None:
    """Why the database does not answer, or None if it does."""
    try:
        async with asyncio.timeout(STORE_TIMEOUT):
            await bot.pipeline.store.ping()
    except TimeoutError:
        return f"the database did not answer within {STORE_TIMEOUT:g} s"
    except Exception as exc:  # any failure of the driver, a closed connection included
        log.warning("Health check: the database failed: %s", exc)
        return "the database is unreachable"
    return None


@dataclass(frozen=True)
class HealthServer:
    host: str
    port: int  # the port bound (the one asked for, or the one picked for port 0)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"


@contextlib.asynccontextmanager
async def serve_health(bot: ImagineBot | ShardedImagineBot, host: str, port: int) -> AsyncIterator[HealthServer]:
    """Serve /healthz and /metrics on host:port while the block runs. A port that cannot be had raises
    ConfigError naming the setting to change."""

    async def healthz(request: web.Request) -> web.Response:
        problem = gateway_problem(bot) or await store_problem(bot)
        if problem:
            return web.Response(status=503, text=f"unhealthy: {problem}\n")
        return web.Response(text="ok\n")

    async def metrics(request: web.Request) -> web.Response:
        return web.Response(body=bot.metrics.exposition(), headers={"Content-Type": CONTENT_TYPE_LATEST})

    app = web.Application()
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/metrics", metrics)
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port)
        await site.start()
    except OSError as exc:
        await runner.cleanup()
        if exc.errno == errno.EADDRINUSE:
            raise ConfigError("METRICS_PORT", f"{port} is already in use on {host}: pick another port") from None
        raise ConfigError("METRICS_HOST", f"{host} cannot be listened on ({exc.strerror or exc})") from None
    bound = runner.addresses[0][1] if runner.addresses else port
    log.info("Serving /healthz and /metrics on http://%s:%s", host, bound)
    try:
        yield HealthServer(host, bound)
    finally:
        await runner.cleanup()


@contextlib.asynccontextmanager
async def health_server(bot: ImagineBot | ShardedImagineBot, settings: Settings) -> AsyncIterator[None]:
    """`serve_health` on METRICS_HOST:METRICS_PORT, or nothing when METRICS_PORT is not set."""
    if settings.metrics_port is None:
        yield
        return
    async with serve_health(bot, settings.metrics_host, settings.metrics_port):
        yield
