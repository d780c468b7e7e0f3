"""What an operator sees: /healthz and /metrics over real HTTP from the bot under simcord, and what users are told
while the bot stops."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from bot.health import HealthServer, serve_health
from devtools.local_prodia import Fault
from tests import REPO_ROOT

pytestmark = pytest.mark.simcord(settle_timeout=0.5)


@pytest.fixture
async def health(world) -> AsyncIterator[HealthServer]:
    """The bot's health and metrics server on a free port of 127.0.0.1, as METRICS_PORT starts it."""
    async with serve_health(world.bot, "127.0.0.1", 0) as server:
        yield server


async def get(server: HealthServer, path: str) -> tuple[int, str, str]:
    """(status, body, content type) of one GET, on a connection of its own (no keep-alive left behind)."""
    connector = aiohttp.TCPConnector(force_close=True)
    async with aiohttp.ClientSession(connector=connector) as session, session.get(server.url + path) as response:
        return response.status, await response.text(), response.headers["Content-Type"]


async def samples(server: HealthServer) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample /metrics serves: {(name, sorted labels): value}."""
    status, body, _ = await get(server, "/metrics")
    assert status == 200
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(body)
        for sample in family.samples
    }


def value(found: dict, name: str, **labels: str) -> float:
    return found.get((name, tuple(sorted(labels.items()))), 0.0)


async def test_metrics_count_a_delivered_job_its_time_polls_and_price(world, prodia, api, health):
    await world.alice.slash(world.channel, "imagine", prompt="a lighthouse at dusk")
    await world.env.advance_time(5)

    status, body, content_type = await get(health, "/metrics")
    assert status == 200 and content_type.startswith("text/plain")
    assert 'imagine_jobs_total{outcome="delivered"} 1.0' in body.splitlines()
    found = await samples(health)
    assert value(found, "imagine_delivery_seconds_count") == 1
    # Every poll Prodia answered is counted once.
    assert value(found, "imagine_prodia_polls_total") == sum(job.polls for job in prodia.image_jobs.values()) >= 1
    rows = await world.bot.pipeline.store._query("SELECT state, price FROM jobs")
    assert [row["state"] for row in rows] == ["delivered"]
    # v2: the image's 0.0025 and its content check's 0.005 (an ordinary channel: the result is classified); v1: none
    check = 0.005 if api == "v2" else 0.0
    assert value(found, "imagine_prodia_spend_dollars_total") == pytest.approx((rows[0]["price"] or 0.0) + check)
    assert value(found, "imagine_content_checks_total", label="neutral") == (1 if api == "v2" else 0)
    assert value(found, "imagine_prodia_errors_total", kind="server_error") == 0


async def test_metrics_count_prodia_errors_and_retries_by_kind(world, prodia, api, health):
    submit = "/v1/sd/generate" if api == "v1" else "/v2/job*"
    prodia.add_fault(Fault("status", status=503, times=None, path=submit))
    await world.alice.slash(world.channel, "imagine", prompt="a lighthouse at dusk")
    await world.env.advance_time(60)

    found = await samples(health)
    sent = prodia.image_posts()
    assert value(found, "imagine_jobs_total", outcome="error.prodia_unavailable") == 1
    assert value(found, "imagine_prodia_errors_total", kind="server_error") == 1
    assert value(found, "imagine_prodia_retries_total", kind="server_error") == len(sent) - 1 >= 1
    assert value(found, "imagine_jobs_total", outcome="delivered") == 0


class TestQueueDepth:
    @pytest.fixture
    def bot_env(self) -> dict[str, str]:
        return {"PRODIA_POLL_INTERVAL": "2", "MAX_CONCURRENT_JOBS": "1", "QUEUE_SIZE": "5"}

    @pytest.mark.parametrize("api", ["v1"])
    async def test_the_queue_is_read_when_scraped(self, world, prodia, api, health):
        prodia.job_duration = 600
        for member, prompt in ((world.alice, "first"), (world.bob, "second")):
            try:
                await member.slash(world.channel, "imagine", prompt=prompt)
            except TimeoutError:
                pass  # the jobs wait on Prodia and on the queue: nothing settles, and that is the point
        found = await samples(health)
        assert value(found, "imagine_queue_running") == 1
        assert value(found, "imagine_queue_waiting") == 1


async def test_healthz_is_ok_while_connected_and_the_database_answers(world, health):
    assert await get(health, "/healthz") == (200, "ok\n", "text/plain; charset=utf-8")


async def test_healthz_is_503_when_the_database_does_not_answer(world, health):
    await world.bot.pipeline.store.close()
    status, body, _ = await get(health, "/healthz")
    assert (status, body) == (503, "unhealthy: the database is unreachable\n")


async def test_healthz_is_503_once_the_bot_stops(world, health):
    await world.bot.close()
    status, body, _ = await get(health, "/healthz")
    assert (status, body) == (503, "unhealthy: the bot is stopping\n")


async def test_a_port_in_use_is_one_sentence_naming_the_setting(world, health):
    from bot.core.config import ConfigError

    with pytest.raises(ConfigError, match=r"^METRICS_PORT \d+ is already in use on 127\.0\.0\.1: pick another port"):
        async with serve_health(world.bot, "127.0.0.1", health.port):
            pass


async def test_a_command_while_the_bot_stops_is_told_privately_it_is_restarting(world, prodia, api):
    world.bot.stop_accepting()  # what a stop does first, before the gateway closes
    for command, options in (("imagine", {"prompt": "a lighthouse at dusk"}), ("models", {})):
        result = await world.alice.slash(world.channel, command, **options)
        assert result.response.content == "The bot is restarting. Please try again in a minute."
        assert result.response.flags.ephemeral
    assert prodia.image_posts() == []  # nothing submitted
    assert await world.bot.pipeline.store._query("SELECT id FROM jobs") == []


# --- `python -m bot.healthcheck`, the image's HEALTHCHECK, against the bot's /healthz ---


async def healthcheck(tmp_path, **env: str) -> tuple[int, str]:
    """Run the health check as Docker does (its own process); (exit status, what it printed)."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot.healthcheck",
        cwd=tmp_path,  # no .env there
        env={"PYTHONPATH": str(REPO_ROOT), **env},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await process.communicate()
    assert process.returncode is not None
    return process.returncode, out.decode().strip()


async def test_the_health_check_passes_while_the_bot_is_healthy(world, health, tmp_path):
    assert await healthcheck(tmp_path, METRICS_PORT=str(health.port)) == (0, "ok")


async def test_the_health_check_fails_with_the_reason_when_the_bot_is_not(world, health, tmp_path):
    await world.bot.pipeline.store.close()
    assert await healthcheck(tmp_path, METRICS_PORT=str(health.port), METRICS_HOST="0.0.0.0") == (
        1,
        "HTTP 503: unhealthy: the database is unreachable",
    )


async def test_the_health_check_fails_when_nothing_answers(tmp_path):
    status, said = await healthcheck(tmp_path, METRICS_PORT="9")  # the discard port: nothing listens there
    assert status == 1 and said.startswith("no answer from http://127.0.0.1:9/healthz")
    status, said = await healthcheck(tmp_path)
    assert (status, said) == (1, "unhealthy: METRICS_PORT is not set, so the bot serves no /healthz to check")
