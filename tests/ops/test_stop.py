"""Stopping, in a real process: `python -m bot` (through `stop_harness.py`, the real entry point with simcord in place
of Discord) is sent SIGTERM or SIGINT while a job is at Prodia, exits 0, and leaves the job resumable at once; or it is
killed (SIGKILL: no chance to tidy up), and the next process delivers its job once, after its lease lapses."""

from __future__ import annotations

import asyncio
import json
import signal
import sys
from collections.abc import AsyncIterator

import pytest

from bot.core.store import open_store
from bot.pipeline import LEASE_SECONDS
from bot.shutdown import STOP_TIMEOUT
from devtools.local_prodia import Fault
from tests import REPO_ROOT
from tests.plugins.databases import postgres_schema

STARTUP_TIMEOUT = 60.0  # importing discord.py and simcord, migrating, syncing: a hang guard, not a measurement
SHORT_LEASE = "2"  # JOB_LEASE_SECONDS of the crash tests: the next process takes a dead one's job this soon


def bot_env(prodia, database_url: str, api: str = "v1", **extra: str) -> dict[str, str]:
    """Only what the bot is told here: nothing from this machine's environment or a .env (cwd is tmp_path)."""
    return {
        "PYTHONPATH": str(REPO_ROOT),
        "DISCORD_TOKEN": "canary-discord-token-5f0a",
        "PRODIA_API_KEY": "canary-prodia-key-5f0a",
        "PRODIA_API": api,
        "PRODIA_BASE_URL": prodia.v1_url if api == "v1" else prodia.v2_url,
        "DATABASE_URL": database_url,
        "PRODIA_POLL_INTERVAL": "0.05",
        **extra,
    }


async def harness(env: dict[str, str], cwd, *args: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.ops.stop_harness",
        *args,
        cwd=cwd,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )


async def start_bot(prodia, tmp_path, env: dict[str, str] | None = None) -> tuple[asyncio.subprocess.Process, str]:
    """The bot in its own process with one /imagine at Prodia (leased to that process); returns it and the job's id."""
    prodia.job_duration = 600  # still running when the signal comes
    process = await harness(env or bot_env(prodia, f"sqlite:///{tmp_path / 'bot.sqlite3'}"), tmp_path)
    assert process.stdout is not None
    line = (await asyncio.wait_for(process.stdout.readline(), STARTUP_TIMEOUT)).decode().split()
    if line[:1] != ["ready"]:
        process.kill()
        _, err = await process.communicate()
        pytest.fail(f"the bot did not start: {err.decode()[-2000:]}")
    (job_id,) = line[1:]
    return process, job_id


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
async def test_a_signal_stops_the_bot_with_exit_0_and_hands_its_job_back(prodia, tmp_path, signum):
    process, job_id = await start_bot(prodia, tmp_path)
    try:
        process.send_signal(signum)
        _, err = await asyncio.wait_for(process.communicate(), STOP_TIMEOUT + 10)  # a hang guard
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()

    assert process.returncode == 0, err.decode()[-2000:]
    assert "Traceback" not in err.decode()
    store = await open_store(f"sqlite:///{tmp_path / 'bot.sqlite3'}")  # what the next start finds
    try:
        job = await store.get_job(job_id)
        assert job is not None and job.state == "submitted"  # unfinished, Prodia's id kept: it resumes by that id
        (row,) = await store._query("SELECT lease_owner, lease_until FROM jobs WHERE id = ?", (job_id,))
        assert row == {"lease_owner": None, "lease_until": None}
        # Another process (or the next start) takes it now, not after the stopped one's lease runs out.
        assert await store.claim_job(job_id, "the-next-process", lease=LEASE_SECONDS)
    finally:
        await store.close()


@pytest.fixture(params=["sqlite", "postgresql"])
async def database_url(request, tmp_path) -> AsyncIterator[str]:
    """One database two processes share, one after the other."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'bot.sqlite3'}"
    else:
        async with postgres_schema() as url:
            yield url


# Where the first process's job is when it is killed: at Prodia with its id journaled (v1; v2 async), or
# sent and waiting for Prodia's answer (v2 sync: no id, so the next process sends it again, once).
HELD = {"v1": "v1", "v2 async": "v2", "v2 sync": "v2"}


@pytest.mark.parametrize("held", HELD)
async def test_a_killed_bot_s_job_is_delivered_once_by_the_next_process(prodia, tmp_path, database_url, held):
    env = bot_env(prodia, database_url, HELD[held], JOB_LEASE_SECONDS=SHORT_LEASE, PRODIA_V2_MODE=held[3:] or "auto")
    if held == "v2 sync":
        prodia.add_fault(Fault("slow", delay=600, path="/v2/job"))  # the first send's answer never comes
    first, job_id = await start_bot(prodia, tmp_path, env)
    first.kill()  # SIGKILL: no signal handler, no release of the lease
    await first.wait()
    assert first.returncode == -signal.SIGKILL
    prodia.finish_all()  # the job Prodia holds (if any) ends: the next process finds it done
    prodia.job_duration = 0

    second = await harness(env, tmp_path, "--resume")
    out, err = await asyncio.wait_for(second.communicate(), STARTUP_TIMEOUT + 60)  # hang guard, under 2 minutes
    assert second.returncode == 0, err.decode()[-3000:]
    (line,) = [line for line in out.decode().splitlines() if line.startswith("done ")]
    report = json.loads(line.removeprefix("done "))

    (job,) = report["jobs"]
    assert (job["id"], job["state"]) == (job_id, "delivered")
    (result,) = report["results"]  # one result in the channel...
    assert result["title"] == "a harbour at night"
    # ...sent once: a new message, since the first process's reply died with its simcord (the two edits of it
    # before, refused as for a deleted reply, carried it too); no edit of the new message carries it again.
    accepted = [s for s in report["result_sends"] if s.startswith("POST") or s.endswith(f"/{result['id']}")]
    assert accepted == ["POST /channels/{}/messages".format(report["channel_id"])]
    sends = prodia.image_posts()
    # Accepted by Prodia (an id journaled): polled, never sent again. v2 sync: sent again once, and counted.
    assert job["attempts"] == len(sends) == (2 if held == "v2 sync" else 1)
    assert "Traceback" not in err.decode()
