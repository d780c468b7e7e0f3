"""A clean stop, in a real process: `python -m bot` (through `stop_harness.py`, the real entry point with simcord in
place of Discord) is sent SIGTERM or SIGINT while a job is at Prodia, exits 0, and leaves the job resumable at once."""

from __future__ import annotations

import asyncio
import signal
import sys

import pytest

from bot.core.store import open_store
from bot.pipeline import LEASE_SECONDS
from bot.shutdown import STOP_TIMEOUT
from tests import REPO_ROOT

STARTUP_TIMEOUT = 60.0  # importing discord.py and simcord, migrating, syncing: a hang guard, not a measurement


async def start_bot(prodia, tmp_path) -> tuple[asyncio.subprocess.Process, str]:
    """The bot in its own process with one /imagine at Prodia (leased to that process); returns it and the job's id."""
    prodia.job_duration = 600  # still running when the signal comes
    env = {  # only what the bot is told here: nothing from this machine's environment or a .env (cwd is tmp_path)
        "PYTHONPATH": str(REPO_ROOT),
        "DISCORD_TOKEN": "canary-discord-token-5f0a",
        "PRODIA_API_KEY": "canary-prodia-key-5f0a",
        "PRODIA_API": "v1",
        "PRODIA_BASE_URL": prodia.v1_url,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'bot.sqlite3'}",
        "PRODIA_POLL_INTERVAL": "0.05",
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.ops.stop_harness",
        cwd=tmp_path,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
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
