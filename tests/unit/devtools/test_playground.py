"""The playground (`python -m bot --playground`): its settings, its world, the live page. No browser needed."""

from __future__ import annotations

import asyncio
import json
import os
import re
import socket
import subprocess
import sys

import aiohttp
import discord
import pytest
import simcord.preview

from bot.core.config import ConfigError
from devtools import playground
from devtools.local_prodia import LocalProdia
from devtools.playground import NOTICE, live_preview, open_playground, playground_settings
from tests import REPO_ROOT

ROOT = REPO_ROOT  # the repository, whose files these tests read
PROMPT = "a lighthouse at dusk"


def test_settings_need_no_discord_token_and_ignore_the_real_bots_own(tmp_path):
    real_bot = {"DISCORD_TOKEN": "real-token", "DATABASE_URL": "postgresql://db/prod", "SHARD_COUNT": "4"}
    settings = playground_settings(
        real_bot, local_prodia_url="http://127.0.0.1:9999", database_url=f"sqlite:///{tmp_path}/p.sqlite3"
    )
    token = settings.discord_token.reveal() if settings.discord_token else ""
    assert token and token != "real-token"  # a placeholder of its own
    assert len(token) >= 16  # random: the log filter scrubs it, and a plain word would be scrubbed everywhere
    assert settings.database_url == f"sqlite:///{tmp_path}/p.sqlite3"
    assert settings.shard_count is None
    assert (settings.prodia_api, settings.prodia_base_url) == ("v1", "http://127.0.0.1:9999/v1")
    assert settings.user_cooldown <= 1


def test_real_prodia_settings_keep_the_key_and_the_default_url():
    settings = playground_settings(
        {"PRODIA_API_KEY": "real-key", "PRODIA_API": "v2"}, local_prodia_url=None, database_url="sqlite:///x.db"
    )
    assert settings.prodia_api_key is not None and settings.prodia_api_key.reveal() == "real-key"
    assert settings.prodia_base_url == "https://inference.prodia.com/v2"


def test_real_prodia_without_a_key_is_refused_naming_it():
    with pytest.raises(ConfigError) as caught:
        playground_settings({"PRODIA_API": "v2"}, local_prodia_url=None, database_url="sqlite:///x.db")
    assert caught.value.variables == ("PRODIA_API_KEY",)


async def test_a_prodia_key_in_the_settings_still_uses_the_local_server(tmp_path):
    real = {"PRODIA_API_KEY": "real-key", "PRODIA_BASE_URL": "https://inference.prodia.com/v2"}  # as in .env
    async with open_playground(real, job_duration=0, database_dir=tmp_path) as pg:
        assert pg.prodia is not None
        assert pg.settings.prodia_base_url.startswith(pg.prodia.url)
        res = await pg.you.slash(pg.channel, "imagine", prompt=PROMPT)
        assert res.response.embeds and pg.prodia.requests


async def test_real_prodia_is_used_when_asked(tmp_path):
    async with LocalProdia(api_key="real-key") as stand_in:  # Prodia, as PRODIA_BASE_URL names it
        settings_env = {"PRODIA_API_KEY": "real-key", "PRODIA_API": "v2", "PRODIA_BASE_URL": stand_in.v2_url}
        async with open_playground(settings_env, real_prodia=True, database_dir=tmp_path) as pg:
            assert pg.prodia is None
            res = await pg.you.slash(pg.channel, "imagine", prompt=PROMPT)
            assert res.response.embeds
        jobs = [r for r in stand_in.requests if r.path.startswith("/v2/job")]
        assert jobs and {r.headers["Authorization"] for r in jobs} == {"Bearer real-key"}


async def test_the_result_shows_the_real_seconds_it_took(tmp_path):
    # One v2 sync request: simcord's virtual clock stands still while it runs, so the footer said 0.0 s.
    async with open_playground(
        {"PRODIA_API": "v2", "PRODIA_V2_MODE": "sync"}, job_duration=0.5, database_dir=tmp_path
    ) as pg:
        res = await pg.you.slash(pg.channel, "imagine", prompt=PROMPT)
    footer = res.response.embeds[0].footer.text
    seconds = float(re.search(r"· ([\d.]+) s$", footer).group(1))
    assert seconds >= 0.5, footer  # the local server held the image for 0.5 s of real time


async def test_imagine_settings_and_reroll_work_in_the_playground(tmp_path):
    async with open_playground({}, job_duration=0, database_dir=tmp_path) as pg:
        assert pg.prodia is not None and pg.guild.name == "Imagine Playground"
        res = await pg.you.slash(pg.channel, "imagine", prompt=PROMPT, sampler="DDIM")
        embed = res.response.embeds[0]
        assert embed.title == PROMPT
        assert any(field.value == "DDIM" for field in embed.fields)
        assert (await res.response.attachments[0].read()).startswith(b"\x89PNG")
        assert pg.prodia.requests, "the image came from the local Prodia server"

        shown = await pg.you.slash(pg.channel, "settings show")  # "you" may manage the server
        assert shown.response is not None and shown.response.ephemeral

        await pg.env.advance_time(2)  # past the playground's user cooldown (virtual clock)
        await pg.you.react(res.response, "🔄")
        reply = pg.channel.last_message
        assert reply.type is discord.MessageType.reply and reply.reference.message_id == res.response.id
        assert pg.env.errors == []


async def test_the_buttons_under_a_result_work_in_the_playground(tmp_path):
    async with open_playground({}, job_duration=0, database_dir=tmp_path) as pg:
        res = await pg.you.slash(pg.channel, "imagine", prompt=PROMPT)
        for action in ("upscale", "reroll"):
            await pg.env.advance_time(2)  # past the playground's user cooldown (virtual clock)
            click = await pg.you.click(res.response, custom_id=f"imagine:{action}")
            assert not click.followups, click.followups  # no private refusal
            reply = pg.channel.last_message
            assert reply.reference.message_id == res.response.id and reply.attachments
        result_id = res.response.id
        await pg.you.click(res.response, custom_id="imagine:delete")
        assert result_id not in [m.id for m in pg.channel.history()]
        assert pg.env.errors == []


async def test_the_page_shows_the_bots_edits_without_a_refresh(tmp_path, monkeypatch):
    async with open_playground({}, job_duration=0, database_dir=tmp_path) as pg, live_preview(pg) as preview:
        async with aiohttp.ClientSession() as session, session.get(preview.url.partition("#")[0]) as response:
            assert response.status == 200 and response.content_type == "text/html"
        page = preview._python  # the published projection every browser page polls
        before = page.revision
        published = asyncio.Event()  # set each time the pages are republished (the playground's republisher does)
        publish = preview._publish_message_pages

        def publish_and_tell(**options: object) -> None:
            publish(**options)
            published.set()

        monkeypatch.setattr(preview, "_publish_message_pages", publish_and_tell)
        await pg.you.slash(pg.channel, "imagine", prompt=PROMPT)
        async with asyncio.timeout(60):  # a hang guard, not a deadline: each republication wakes the test
            while PROMPT not in json.dumps(page.snapshot):
                await published.wait()
                published.clear()
        assert page.revision > before


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def test_run_playground_prints_the_notice_serves_the_page_and_stops_on_cancel(capsys, monkeypatch):
    monkeypatch.setattr(playground, "setup_logging", lambda settings: None)  # leave the test run's logging alone
    serving = asyncio.Event()  # set when the playground, its notice printed, waits for the page to end it
    wait_closed = simcord.preview.Preview.wait_closed

    async def serve_and_tell(preview: simcord.preview.Preview) -> None:
        serving.set()
        await wait_closed(preview)

    monkeypatch.setattr(simcord.preview.Preview, "wait_closed", serve_and_tell)
    port = _free_port()
    task = asyncio.create_task(playground.run_playground({}, port=port))
    async with asyncio.timeout(60):  # a hang guard, not a deadline
        await serving.wait()
    out = capsys.readouterr().out
    assert NOTICE in out and "SIMULATION" in out
    url = out.split("Open: ", 1)[1].split()[0]
    assert url.startswith(f"http://127.0.0.1:{port}/#")
    async with aiohttp.ClientSession() as session, session.get(url.partition("#")[0]) as response:
        assert response.status == 200
    task.cancel()  # what Ctrl-C does
    with pytest.raises(asyncio.CancelledError):
        await task
    with pytest.raises(aiohttp.ClientConnectionError):
        async with aiohttp.ClientSession() as session, session.get(url.partition("#")[0]):
            pass


def test_help_mentions_the_playground():
    result = subprocess.run(
        [sys.executable, "-m", "bot", "--help"], cwd=ROOT, capture_output=True, text=True, timeout=60, check=True
    )
    assert "--playground" in result.stdout and "--port" in result.stdout and "--real-prodia" in result.stdout


def _python_m_bot(*args: str, cwd) -> subprocess.CompletedProcess[str]:
    env = {"PATH": os.environ.get("PATH", ""), "PYTHONPATH": str(ROOT)}  # no settings, no .env in cwd
    return subprocess.run(
        [sys.executable, "-m", "bot", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=60, check=False
    )


def test_a_playground_port_in_use_is_one_sentence_and_a_failing_exit(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = _python_m_bot("--playground", "--port", str(port), cwd=tmp_path)
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        f"Cannot start the playground: cannot listen on 127.0.0.1:{port}: it is already in use (by another "
        "playground or program); choose another with --port N."
    ]


def test_real_prodia_without_a_key_stops_the_playground_with_one_sentence(tmp_path):
    result = _python_m_bot("--playground", "--real-prodia", cwd=tmp_path)
    assert result.returncode == 2
    assert len(result.stderr.splitlines()) == 1
    assert result.stderr.startswith("Cannot start the playground: PRODIA_API_KEY is not set")
