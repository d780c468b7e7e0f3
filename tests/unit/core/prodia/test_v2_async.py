"""v2 against the local server with parts of Prodia's answers scripted: the async job's `job.state.current` (the
states Prodia may name, quoted as a JSON string or not, what the caller is told of each, a state the bot does not
know) and the job JSON's seed and price (what the result reports). The rest of v2 is in test_clients.py."""

from __future__ import annotations

import aiohttp
import pytest

from bot.core.errors import BadResponse
from bot.core.prodia import Progress
from devtools.local_prodia.v2 import V2Api

from .test_clients import make_client, prepare


@pytest.fixture
async def session():
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.fixture
def states(monkeypatch):
    """Answers of `job.state.current` to give first, in order, before the local server's own."""
    scripted: list[str] = []
    real = V2Api._async_state

    def answer(job) -> str:
        return scripted.pop(0) if scripted else real(job)

    monkeypatch.setattr(V2Api, "_async_state", staticmethod(answer))
    return scripted


async def run_async(prodia, session, duration: float = 0.05) -> tuple[object, list[str]]:
    """The result, and the states the caller was told (each naming the job)."""
    steps: list[Progress] = []

    async def on_progress(step: Progress) -> None:
        steps.append(step)

    prodia.job_duration = duration
    result = await make_client(session, prodia, "v2", PRODIA_V2_MODE="async").generate(prepare("v2"), on_progress)
    assert {step.job_id for step in steps} == {result.job_id}
    return result, [step.state for step in steps]


async def test_prodias_states_are_told_as_queued_then_generating(prodia, session, states):
    states.extend(['"pending"', "queued", ' "processing"\n', "processing"])
    result, told = await run_async(prodia, session)
    assert result.image == prodia.jobs[result.job_id].image
    assert told == ["submitted", "queued", "generating", "downloading"]  # each change once, in order


async def test_a_quoted_processed_state_is_done(prodia, session, states):
    states.append('"processed"')
    result, told = await run_async(prodia, session, duration=0)  # done by then; only its state is spelled otherwise
    assert result.image == prodia.jobs[result.job_id].image
    assert "generating" not in told


async def test_a_state_the_bot_does_not_know_is_a_bad_response_naming_it(prodia, session, states):
    states.append("paused")
    with pytest.raises(BadResponse, match="unknown job state 'paused'"):
        await run_async(prodia, session)


@pytest.fixture
def documents(monkeypatch):
    """Changes to the job JSON the local server answers (sync and async alike), applied to each."""
    changes: dict[str, object] = {}
    real = V2Api._v2_document

    def document(self, job, state):
        answer = real(self, job, state)
        if state in ("completed", "processed"):
            answer.update(changes)
        return answer

    monkeypatch.setattr(V2Api, "_v2_document", document)
    return changes


@pytest.mark.parametrize("mode", ["sync", "async"])
async def test_the_seed_and_price_prodia_reports_are_the_results(prodia, session, documents, mode):
    documents.update(config={"seed": 4242}, price={"dollars": 1})
    prodia.job_duration = 0
    result = await make_client(session, prodia, "v2", PRODIA_V2_MODE=mode).generate(prepare("v2", seed=7))
    assert (result.seed, result.price) == (4242, 1.0)


@pytest.mark.parametrize("mode", ["sync", "async"])
@pytest.mark.parametrize(
    "reported", [{"config": {"seed": True}, "price": {"dollars": True}}, {"config": {}, "price": {}}, {"config": 5}]
)
async def test_a_seed_or_price_that_is_no_number_is_not_taken(prodia, session, documents, mode, reported):
    documents.update(reported)
    prodia.job_duration = 0
    result = await make_client(session, prodia, "v2", PRODIA_V2_MODE=mode).generate(prepare("v2", seed=7))
    assert result.seed == 7  # the seed sent
    assert result.price is None or "price" not in reported


async def test_a_retry_after_on_an_async_state_delays_the_next_poll(session, monkeypatch, states):
    from aiohttp import web

    from devtools.local_prodia import LocalProdia

    real = V2Api._v2_async_state

    async def paced(self, request: web.Request) -> web.Response:
        answer = await real(self, request)
        answer.headers["Retry-After"] = "7"  # Prodia asks for a pause between polls
        return answer

    monkeypatch.setattr(V2Api, "_v2_async_state", paced)  # before the server binds its routes
    states.extend(["queued", "pending", "processing"])  # each state Prodia may answer, then the server's own
    async with LocalProdia(image_scale=0.125) as server:
        server.job_duration = 0.05
        client = make_client(session, server, "v2", PRODIA_V2_MODE="async")
        waits: list[float] = []

        async def sleep(model: str, seconds: float) -> bool:  # no time passes: each poll comes at once
            waits.append(seconds)
            return True

        monkeypatch.setattr(client, "_sleep_unless_relearned", sleep)
        assert (await client.generate(prepare("v2"))).image
    assert len(waits) >= 2
    assert all(wait >= 6.9 for wait in waits[1:])  # every poll after the first waits out the pause asked for
