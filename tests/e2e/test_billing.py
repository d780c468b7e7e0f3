"""Every send to Prodia counts: a job is sent once, again only within the retry policy, and `jobs.attempts` says
how often it was (journaled before each send), whatever Discord and restarts do meanwhile."""

from __future__ import annotations

import contextlib

import pytest

from devtools.local_prodia import Fault
from tests.plugins.discord_world import results_in

# Short settles: a bot waiting on a slow Prodia is "parked" and the test moves the clock itself.
pytestmark = pytest.mark.simcord(settle_timeout=0.5)

SWEEP = 45  # seconds of virtual time past one recovery pass (every JOB_LEASE_SECONDS / 3 = 40 s)


@pytest.fixture
def bot_env() -> dict[str, str]:
    return {"PRODIA_POLL_INTERVAL": "2", "PRODIA_TIMEOUT": "3600", "PRODIA_V2_MODE": "sync"}


def submissions(prodia) -> int:
    """Sends of a job to Prodia as the server saw them (v1 submits, v2 sync or async job POSTs)."""
    return sum(r.path in ("/v1/sd/generate", "/v2/job", "/v2/job/async") for r in prodia.image_posts())


async def only_job(world):
    rows = await world.bot.pipeline.store._query("SELECT id FROM jobs")
    assert len(rows) == 1
    return await world.bot.pipeline.store.get_job(rows[0]["id"])


async def imagine(world, **options):
    """/imagine, returning its reply while the bot may still wait on Prodia (then it is "not settled")."""
    with contextlib.suppress(TimeoutError):
        await world.alice.slash(world.channel, "imagine", **options)
    return world.channel.history()[-1]


async def advance(world, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):  # a pass still waiting on Prodia's HTTP answer is not "settled"
        await world.env.advance_time(seconds)


# What Discord answers a new message in a channel that is gone, or where the bot may not post (an interaction's
# reply needs no Send Messages permission, so a bot without it works until its reply is deleted).
CHANNEL_REFUSALS = {
    "channel deleted": {"status": 404, "code": 10003, "message": "Unknown Channel"},
    "no Send Messages": {"status": 403, "code": 50013, "message": "Missing Permissions"},
}


def delete_reply(world) -> None:
    """What Discord answers every edit of a deleted reply, by the interaction's token and by the channel."""
    for pattern in ("/webhooks/*", "/channels/*/messages/*"):
        world.env.inject_error("PATCH", pattern, status=404, code=10008, message="Unknown Message", times=None)


@pytest.mark.parametrize("refusal", CHANNEL_REFUSALS)
async def test_a_deleted_reply_with_nowhere_to_post_is_given_up_after_one_send(world, prodia, api, refusal):
    # The reviewer's case: billed 4 times (the first run and three resumptions, v2 sync) and counted 0.
    delete_reply(world)
    world.env.inject_error("POST", "/channels/*/messages", times=None, **CHANNEL_REFUSALS[refusal])
    await world.alice.slash(world.channel, "imagine", prompt="a harbour", seed=9)
    for _ in range(3):
        await advance(world, SWEEP)
    await world.restart()
    for _ in range(3):
        await advance(world, SWEEP)

    job = await only_job(world)
    assert (job.state, job.error, job.attempts) == ("failed", "error.undeliverable", 1)
    assert submissions(prodia) == 1
    assert world.env.errors == []  # Discord's refusals are logged and counted, never raised


@pytest.mark.parametrize("api", ["v2"])  # v1 is resumed by its id: test_a_job_prodia_accepted_is_polled_...
async def test_a_deleted_reply_is_posted_again_as_a_new_message_after_a_restart(world, prodia, api):
    prodia.add_fault(Fault("slow", delay=600, path="/v2/job"))  # sync: the answer is held when the bot restarts
    reply = await imagine(world, prompt="a harbour")
    delete_reply(world)
    await world.restart()
    await advance(world, 10)

    (delivered,) = results_in(world.channel)
    assert delivered.id != reply.id
    job = await only_job(world)
    assert (job.state, job.message_id) == ("delivered", delivered.id)
    assert job.attempts == submissions(prodia) == 2  # no id to resume by: sent again, once, and counted
    assert world.env.errors == []


async def test_discord_failing_at_delivery_delivers_the_same_image_without_a_new_send(world, prodia, api):
    for pattern in ("/webhooks/*", "/channels/*/messages/*"):  # every edit fails, by either route
        world.env.inject_error("PATCH", pattern, status=502, code=0, message="Bad Gateway", times=None)
    result = await imagine(world, prompt="a harbour", seed=5)
    await advance(world, 10)
    assert (await only_job(world)).state == "generated"
    first_image = next(iter(prodia.image_jobs.values())).image

    asked = len(prodia.requests)
    world.env.backend.faults.clear()  # Discord recovers; the next recovery pass delivers the job
    await advance(world, SWEEP)
    assert len(prodia.requests) == asked  # the image in hand: Prodia is not asked again, not even polled

    (delivered,) = results_in(world.channel)
    assert delivered.id == result.id
    assert await delivered.attachments[0].read() == first_image
    job = await only_job(world)
    assert (job.state, job.attempts, submissions(prodia)) == ("delivered", 1, 1)
    assert world.env.errors == []  # the 502s were the next pass's to retry


async def test_attempts_counts_every_send_retries_included(world, prodia, api):
    path = "/v1/sd/generate" if api == "v1" else "/v2/job"
    prodia.add_fault(Fault("status", status=429, retry_after=0, times=2, path=path))
    await imagine(world, prompt="a harbour")
    await advance(world, 10)
    job = await only_job(world)
    assert (job.state, job.attempts, submissions(prodia)) == ("delivered", 3, 3)


@pytest.mark.parametrize("api", ["v2"])
async def test_a_sync_job_cut_off_by_two_restarts_is_not_sent_a_third_time(world, prodia, api):
    # v2 sync has no id to resume by: a cut-off job may have run (and been billed), so it is sent again once at most.
    prodia.add_fault(Fault("slow", delay=600, path="/v2/job"))  # the first send: held when the bot restarts
    prodia.add_fault(Fault("status", status=429, retry_after=30, path="/v2/job"))  # the second: waiting to retry
    reply = await imagine(world, prompt="a harbour")
    await world.restart()
    await world.restart()
    await advance(world, 5)

    job = await only_job(world)
    assert (job.state, job.error, job.attempts) == ("failed", "error.job_interrupted", 2)
    assert submissions(prodia) == 2
    (shown,) = [m for m in world.channel.history() if m.id == reply.id]
    assert "restarted while making this image" in shown.content


@pytest.mark.parametrize("api", ["v1"])
async def test_a_job_prodia_accepted_is_polled_after_restarts_never_sent_again(world, prodia, api):
    prodia.job_duration = 600
    reply = await imagine(world, prompt="a harbour")
    for _ in range(3):
        await world.restart()
        await advance(world, 5)
    prodia.finish_all()
    await advance(world, 5)

    (delivered,) = results_in(world.channel)
    assert delivered.id == reply.id
    job = await only_job(world)
    assert (job.state, job.attempts, submissions(prodia)) == ("delivered", 1, 1)
