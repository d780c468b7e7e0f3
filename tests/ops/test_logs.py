"""Log lines as an operator reads them, from a real process: the bot's logging setup (`bot.logs.setup_logging`)
and a real /imagine through the real pipeline (the bot under simcord, the local Prodia server), stderr read
back. Plain lines carry time, level, logger and message; JSON lines the same plus the job's fields; text from
outside cannot forge or hide a line; secrets are scrubbed from tracebacks too."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from bot.logs import escape
from tests import REPO_ROOT

TOKEN = "discord-token-CANARY-4b1d0"
KEY = "prodia-key-CANARY-9e7c2"
# What a Prodia body, a prompt or a name could carry: a line break and a whole fake log line after it, a
# terminal escape (clear the screen) and a carriage return (overwrite what was shown).
FORGED = "\n[2030-01-01 00:00:00] [INFO    ] bot.pipeline: job=forged outcome=delivered\x1b[2J\r"
PROMPT = "a lighthouse at dusk"

# A Prodia reason carrying FORGED, a crash whose exception text carries the Prodia key and FORGED, then
# one real job, whose line the pipeline logs.
SCRIPT = f"""
import asyncio, logging, os, sys
from pathlib import Path

from bot.core.config import Settings
from bot.logs import setup_logging
from devtools.playground import open_playground

FORGED = {FORGED!r}


async def main():
    setup_logging(Settings.from_env(os.environ))
    logging.getLogger("bot.core.prodia.v2").warning("Prodia refused the job: %s", "size too large" + FORGED)
    try:
        raise RuntimeError("Prodia answered for key " + os.environ["PRODIA_API_KEY"] + FORGED)
    except RuntimeError:
        logging.getLogger("bot.pipeline").exception("Job %s crashed", "job-2")
    async with open_playground({{}}, job_duration=0, database_dir=Path.cwd()) as playground:
        done = await playground.you.slash(playground.channel, "imagine", prompt={PROMPT!r})
        assert done.response.embeds, done.response.content


asyncio.run(main())
"""

PLAIN_HEADER = re.compile(r"\[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\] \[(DEBUG|INFO|WARNING|ERROR|CRITICAL) *\] ([\w.]+): ")


def run_logging(folder: Path, *, log_json: bool) -> str:
    """The stderr of a process that sets up logging as the bot does and logs the records above."""
    env = {
        "PATH": os.environ.get("PATH", ""),
        "PYTHONPATH": str(REPO_ROOT),
        "DISCORD_TOKEN": TOKEN,
        "PRODIA_API_KEY": KEY,
        "LOG_LEVEL": "INFO",
        "LOG_JSON": str(log_json).lower(),
    }
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT], cwd=folder, env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    return done.stderr


@pytest.fixture(scope="module")
def plain(tmp_path_factory) -> str:
    return run_logging(tmp_path_factory.mktemp("plain"), log_json=False)


@pytest.fixture(scope="module")
def json_lines(tmp_path_factory) -> list[str]:
    return run_logging(tmp_path_factory.mktemp("json"), log_json=True).splitlines()


def plain_records(stderr: str) -> list[tuple[str, str, str]]:
    """(level, logger, message) of every line that starts a record."""
    found = [(PLAIN_HEADER.match(line), line) for line in stderr.splitlines()]
    return [(match.group(1), match.group(2), line[match.end() :]) for match, line in found if match]


def test_plain_lines_carry_time_level_logger_and_message(plain):
    records = plain_records(plain)
    assert ("ERROR", "bot.pipeline", "Job job-2 crashed") in records
    prodia = [message for level, logger, message in records if (level, logger) == ("WARNING", "bot.core.prodia.v2")]
    assert len(prodia) == 1 and prodia[0].startswith("Prodia refused the job: size too large")
    jobs = [message for level, logger, message in records if (level, logger) == ("INFO", "bot.pipeline")]
    assert len(jobs) == 1 and re.match(r"job=\w+ outcome=delivered model=.+ seconds=[\d.]+ ", jobs[0])
    assert f"prompt={PROMPT!r}" in jobs[0]


def test_outside_text_cannot_forge_or_hide_a_plain_line(plain):
    lines = plain.splitlines()
    assert not [line for line in lines if line.startswith("[2030-01-01")]  # the forged line stays in its record
    assert "\x1b" not in plain and "\r" not in plain
    warning = next(line for line in lines if "Prodia refused the job" in line)
    assert warning.endswith(
        "size too large\\n[2030-01-01 00:00:00] [INFO    ] bot.pipeline: job=forged outcome=delivered\\x1b[2J\\r"
    )


def test_a_traceback_keeps_its_lines_with_its_text_escaped_and_secrets_scrubbed(plain):
    lines = plain.splitlines()
    crash = next(i for i, line in enumerate(lines) if line.endswith("Job job-2 crashed"))
    end = next(i for i in range(crash + 1, len(lines)) if PLAIN_HEADER.match(lines[i]))
    traceback = lines[crash + 1 : end]
    assert traceback[0] == "Traceback (most recent call last):"
    assert traceback[1].lstrip().startswith("File ")
    assert traceback[-1].startswith("RuntimeError: Prodia answered for key [secret]\\n[2030-01-01")
    assert KEY not in plain and TOKEN not in plain


def test_json_lines_carry_the_same_fields_plus_the_jobs(json_lines):
    records = [json.loads(line) for line in json_lines]  # every line is one JSON object: nothing forged a line
    for record in records:
        assert {"time", "level", "logger", "message"} <= set(record)
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", record["time"])
    prodia = next(r for r in records if r["logger"] == "bot.core.prodia.v2")
    assert (prodia["level"], prodia["message"]) == ("WARNING", "Prodia refused the job: size too large" + FORGED)
    job_lines = [r for r in records if "job" in r]
    assert len(job_lines) == 1
    job = job_lines[0]["job"]
    assert (job_lines[0]["level"], job_lines[0]["logger"]) == ("INFO", "bot.pipeline")
    assert set(job) == {"id", "outcome", "model", "seconds", "progress_edits", "price", "prompt"}
    assert (job["outcome"], job["prompt"]) == ("delivered", PROMPT)
    assert isinstance(job["seconds"], float) and job["price"] is None  # the local server quotes no price
    assert job_lines[0]["message"].startswith(
        f"job={job['id']} outcome=delivered model={job['model']} seconds={job['seconds']:.2f}"
    )


def test_json_lines_keep_tracebacks_scrubbed(json_lines):
    crash = next(json.loads(line) for line in json_lines if '"Job job-2 crashed"' in line)
    assert crash["exception"].startswith("Traceback (most recent call last):")
    assert "RuntimeError: Prodia answered for key [secret]" in crash["exception"]
    everything = "\n".join(json_lines)
    assert KEY not in everything and TOKEN not in everything
    assert "\x1b" not in everything


def test_escaping_also_shows_c1_controls_line_separators_and_bidi_overrides():
    # A C1 CSI clears a screen like ESC [ does; U+2028 breaks lines in some viewers; U+202E reverses text.
    assert escape("a\x9b2J b\u2028c \u202ed\x7f é 🔄") == "a\\x9b2J b\\u2028c \\u202ed\\x7f é 🔄"


# -- webhook and interaction tokens at DEBUG ---------------------------------------------------------------

INTERACTION_TOKEN = "aW50ZXJhY3Rpb246CANARY.7f3e-Qx_Z"  # the characters Discord's tokens use
APP_ID, INTERACTION_ID = 1456074443980800000, 1456074443980800011

# At DEBUG, discord.py logs the URL of every request (webhook and interaction URLs carry the token) and every
# gateway event (an interaction's carries it as `token`), and aiosqlite every query with its arguments (the
# journal keeps the token while it lives). Real requests go to Discord's API played by a local server.
DEBUG_SCRIPT = f"""
import asyncio, logging, os, time

import aiohttp, discord
from aiohttp import web
from discord.webhook.async_ import async_context, interaction_response_params

from bot.core.config import Settings
from bot.core.store import JobRecord, open_store
from bot.logs import setup_logging

TOKEN, APP_ID, INTERACTION_ID = {INTERACTION_TOKEN!r}, {APP_ID}, {INTERACTION_ID}


async def answer(request):
    return web.Response(status=204)


async def main():
    setup_logging(Settings.from_env(os.environ))
    app = web.Application()
    app.router.add_route("*", "/{{tail:.*}}", answer)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    discord.http.Route.BASE = f"http://127.0.0.1:{{runner.addresses[0][1]}}/api/v10"
    async with aiohttp.ClientSession() as session:
        adapter = async_context.get()
        await adapter.create_interaction_response(
            INTERACTION_ID, TOKEN, session=session, params=interaction_response_params(5)
        )
        await discord.Webhook.partial(APP_ID, TOKEN, session=session).delete_message(123)
    await runner.cleanup()
    event = {{"t": "INTERACTION_CREATE", "d": {{"id": str(INTERACTION_ID), "token": TOKEN}}}}
    logging.getLogger("discord.gateway").debug("For Shard ID %s: WebSocket Event: %s", 0, event)
    try:
        raise RuntimeError(f"PATCH {{discord.http.Route.BASE}}/webhooks/{{APP_ID}}/{{TOKEN}}/messages/@original")
    except RuntimeError:
        logging.getLogger("bot.delivery").exception("Edit failed")
    store = await open_store("sqlite:///journal.sqlite3")
    now = time.time()
    await store.add_job(JobRecord(
        "job-1", "imagine", 1, 2, 3, {{"prompt": "a fox"}}, "accepted", TOKEN, APP_ID, now,
        None, None, None, None, now, now,
    ))
    await store.close()


asyncio.run(main())
"""


@pytest.fixture(scope="module")
def debug(tmp_path_factory) -> str:
    env = {
        "PATH": os.environ.get("PATH", ""),
        "PYTHONPATH": str(REPO_ROOT),
        "DISCORD_TOKEN": TOKEN,
        "PRODIA_API_KEY": KEY,
        "LOG_LEVEL": "DEBUG",
    }
    done = subprocess.run(
        [sys.executable, "-c", DEBUG_SCRIPT],
        cwd=tmp_path_factory.mktemp("debug"),
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stderr


def test_webhook_and_interaction_urls_are_logged_with_their_token_redacted(debug):
    records = plain_records(debug)
    urls = [message for level, logger, message in records if (level, logger) == ("DEBUG", "discord.webhook.async_")]
    assert any(f"/interactions/{INTERACTION_ID}/<redacted>/callback" in url for url in urls), urls
    assert any(f"/webhooks/{APP_ID}/<redacted>/messages/123" in url for url in urls), urls
    assert f"/webhooks/{APP_ID}/<redacted>/messages/@original" in debug  # in the traceback too


def test_no_interaction_token_reaches_the_log_at_debug(debug):
    gateway = [message for _, logger, message in plain_records(debug) if logger == "discord.gateway"]
    assert gateway and "'token': '<redacted>'" in gateway[0]
    assert INTERACTION_TOKEN not in debug
    assert "CANARY.7f3e" not in debug  # nor a part of it
