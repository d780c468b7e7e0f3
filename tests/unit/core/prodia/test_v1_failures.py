"""What a user is told when v1 reports a job failed: Prodia's v1 says no reason, so the sentence names none. The rest
of v1 is in test_clients.py."""

from __future__ import annotations

import aiohttp
import pytest

from bot.core.errors import JobFailed
from bot.core.messages import error_text
from devtools.local_prodia import Fault

from .test_clients import make_client, prepare


@pytest.fixture
async def session():
    async with aiohttp.ClientSession() as session:
        yield session


async def test_a_failed_v1_job_gives_no_reason(prodia, session):
    prodia.add_fault(Fault("job_fails", path="/v1/sd/generate"))
    with pytest.raises(JobFailed) as caught:
        await make_client(session, prodia, "v1").generate(prepare("v1"))
    assert caught.value.params["reason"] == ""
    assert error_text(caught.value) == error_text(JobFailed("", reason=""))
