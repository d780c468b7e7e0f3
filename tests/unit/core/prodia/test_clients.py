"""Both Prodia clients against the local server over real HTTP."""

from __future__ import annotations

import dataclasses
import io
import logging

import aiohttp
import pytest
from aiohttp import web
from PIL import Image

from bot.core.catalog import Catalog
from bot.core.config import Settings
from bot.core.errors import (
    AuthError,
    BadResponse,
    CapacityError,
    InvalidRequest,
    JobFailed,
    JobTimeout,
    NotSentAgain,
    QuotaError,
    ServerError,
)
from bot.core.messages import error_text
from bot.core.model_lists import V2_MODEL_NAMES
from bot.core.prodia import ProdiaV1, ProdiaV2, Progress, Sends, create_client
from bot.core.prodia.polling import PollPolicy
from bot.core.request import GenerationRequest
from devtools.local_prodia import Fault, LocalProdia

KEY = "canary-key-3f9a1c"


def settings_for(server: LocalProdia, api: str, **overrides: str) -> Settings:
    env = {
        "PRODIA_API": api,
        "PRODIA_BASE_URL": server.v1_url if api == "v1" else server.v2_url,
        "PRODIA_API_KEY": KEY,
        "PRODIA_RETRY_DELAY": "0.01",
        "PRODIA_TIMEOUT": "10",
        "PRODIA_POLL_INTERVAL": "0.01",
        "PRODIA_V2_MODE": "sync",  # tests of async and auto say so
        **overrides,
    }
    return Settings.from_env(env)


@pytest.fixture
async def session():
    async with aiohttp.ClientSession() as session:
        yield session


PNG = b"\x89PNG\r\n\x1a\n" + bytes(64)  # what a foreign host would answer: bytes that must never be fetched


class Recorder:
    """A tiny HTTP server on a loopback address of its own, standing for any other host: it records every request
    and answers a 302 to `redirect_to` when set, else `body`."""

    def __init__(self, host: str, *, body: bytes = b"") -> None:
        self.host, self.body = host, body
        self.redirect_to: str | None = None
        self.received: list[web.Request] = []
        self.runner = web.AppRunner(web.Application(middlewares=[self._answer]))

    @web.middleware
    async def _answer(self, request: web.Request, handler: object) -> web.Response:
        await request.read()
        self.received.append(request)
        if self.redirect_to:
            return web.Response(status=302, headers={"Location": self.redirect_to})
        return web.Response(body=self.body, content_type="image/png")

    async def __aenter__(self) -> Recorder:
        await self.runner.setup()
        await web.TCPSite(self.runner, self.host, 0).start()
        self.url = f"http://{self.host}:{self.runner.addresses[0][1]}"
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.runner.cleanup()


def make_client(session, server, api, **overrides):
    return create_client(session, settings_for(server, api, **overrides))


def prepare(api: str, **params):
    catalog = Catalog.for_api(api, V2_MODEL_NAMES)
    return catalog.prepare(GenerationRequest(**{"prompt": "a lighthouse at dusk", **params}))


# -- v1 ----------------------------------------------------------------------------------------


async def test_v1_submits_documented_body_and_key(prodia, session):
    client = make_client(session, prodia, "v1")
    job = prepare("v1", sampler="DDIM", seed=42, steps=12, cfg=6.5, negative_prompt="blurry")
    result = await client.generate(job)

    submit = next(r for r in prodia.requests if r.path == "/v1/sd/generate")
    assert submit.method == "POST"
    assert submit.headers["X-Prodia-Key"] == KEY
    assert "Authorization" not in submit.headers
    assert submit.json == {
        "prompt": "a lighthouse at dusk",
        "model": "absolutereality_v181.safetensors [3d9d4d2b]",
        "steps": 12,
        "cfg_scale": 6.5,
        "seed": 42,
        "sampler": "DDIM",
        "negative_prompt": "blurry",
        "aspect_ratio": "square",
    }
    assert result.seed == 42
    assert result.job_id in prodia.jobs
    assert result.image == prodia.jobs[result.job_id].image
    assert Image.open(io.BytesIO(result.image)).format == "PNG"


async def test_v1_sdxl_model_goes_to_sdxl_endpoint_with_pixel_size(prodia, session):
    client = make_client(session, prodia, "v1")
    await client.generate(prepare("v1", model="juggernautXL_v45", aspect_ratio="portrait"))
    submit = next(r for r in prodia.requests if r.method == "POST")
    assert submit.path == "/v1/sdxl/generate"
    assert submit.json["model"] == "juggernautXL_v45.safetensors [e75f5471]"
    assert (submit.json["width"], submit.json["height"]) == (832, 1216)
    assert "aspect_ratio" not in submit.json


async def test_v1_polls_through_every_status(session):
    async with LocalProdia(image_scale=0.125, job_duration=3600) as server:  # each status lasts until moved on
        client = make_client(session, server, "v1")
        seen: list[Progress] = []

        async def record(step: Progress) -> None:
            seen.append(step)
            if step.state == "queued":
                server.jobs[step.job_id].queued_fraction = 0  # the next poll finds it generating
            elif step.state == "generating":
                server.finish_all()  # and the one after, done

        result = await client.generate(prepare("v1"), record)
    states = [step.state for step in seen]
    assert states == ["submitted", "queued", "generating", "downloading"]
    assert all(step.job_id == result.job_id for step in seen)
    assert server.jobs[result.job_id].polls == 3


async def test_v1_tells_its_poll_policy_what_each_answer_showed(session):
    """The policy learns from the wire: "still running at t" after each unfinished answer, then the bracket the
    finish fell in (the last "running" answer, the "done" poll)."""

    class Recording(PollPolicy):
        def __init__(self) -> None:
            super().__init__(0.05)
            self.calls: list[tuple[str, str, float]] = []

        def running(self, model: str, elapsed: float) -> None:
            self.calls.append(("running", model, elapsed))
            if len(self.calls) == 3:
                server.finish_all()  # the job ends between its third "running" answer and the next poll

        def finished(self, model: str, running_at: float | None, done_at: float) -> None:
            assert running_at is not None and self.calls[-1][2] <= running_at < done_at  # sent, answered
            self.calls.append(("finished", model, done_at))

    policy = Recording()
    async with LocalProdia(image_scale=0.125, job_duration=3600) as server:
        client = ProdiaV1(session, settings_for(server, "v1"), poll_policy=policy)
        job = prepare("v1")
        result = await client.generate(job, _ignore)
        polls = server.jobs[result.job_id].polls
    kinds = [kind for kind, _, _ in policy.calls]
    assert kinds == ["running"] * 3 + ["finished"] and polls == 4
    assert {model for _, model, _ in policy.calls} == {job.model.name}
    times = [t for _, _, t in policy.calls]
    assert times == sorted(times)


async def _ignore(_step: Progress) -> None:
    return None


async def test_v1_resumes_a_submitted_job_without_resubmitting(prodia, session):
    client = make_client(session, prodia, "v1")
    first = await client.generate(prepare("v1", seed=7))
    again = await client.generate(prepare("v1", seed=7), job_id=first.job_id)
    assert again.image == first.image
    assert sum(r.path == "/v1/sd/generate" for r in prodia.requests) == 1


async def test_v1_failed_job_raises_job_failed(prodia, session):
    prodia.add_fault(Fault("job_fails", path="/v1/sd/generate"))
    with pytest.raises(JobFailed):
        await make_client(session, prodia, "v1").generate(prepare("v1"))


async def test_v1_job_that_never_finishes_hits_the_deadline(prodia, session):
    prodia.add_fault(Fault("never_finish", path="/v1/sd/generate"))
    client = make_client(session, prodia, "v1", PRODIA_TIMEOUT="1")
    with pytest.raises(JobTimeout) as caught:
        await client.generate(prepare("v1"))
    assert caught.value.params == {"seconds": 1}


async def test_v1_slow_answer_past_the_deadline_times_out(prodia, session):
    prodia.add_fault(Fault("slow", delay=3, path="/v1/sd/generate"))
    with pytest.raises(JobTimeout):
        await make_client(session, prodia, "v1", PRODIA_TIMEOUT="1").generate(prepare("v1"))


@pytest.mark.parametrize(
    ("status", "error"),
    [(400, InvalidRequest), (401, AuthError), (403, AuthError), (402, QuotaError), (404, BadResponse)],
)
async def test_v1_final_error_codes_map_to_types_without_retry(prodia, session, status, error):
    prodia.add_fault(Fault("status", status=status, message="nope", times=None, path="/v1/sd/generate"))
    with pytest.raises(error) as caught:
        await make_client(session, prodia, "v1").generate(prepare("v1"))
    assert caught.value.status == status
    assert sum(r.path == "/v1/sd/generate" for r in prodia.requests) == 1


async def test_v1_bad_key_is_an_auth_error(session):
    async with LocalProdia(api_key="the-right-key", image_scale=0.125) as server:
        with pytest.raises(AuthError):
            await make_client(session, server, "v1").generate(prepare("v1"))


async def test_400_carries_prodias_reason(prodia, session):
    prodia.add_fault(Fault("status", status=400, message="steps must be at most 50", path="/v1/sd/generate"))
    with pytest.raises(InvalidRequest) as caught:
        await make_client(session, prodia, "v1").generate(prepare("v1"))
    assert "steps must be at most 50" in caught.value.params["reason"]


@pytest.mark.parametrize("status", [500, 502, 503])
async def test_v1_server_errors_are_retried_then_succeed(prodia, session, status):
    prodia.add_fault(Fault("status", status=status, times=2, path="/v1/sd/generate"))
    result = await make_client(session, prodia, "v1").generate(prepare("v1"))
    assert result.image
    assert sum(r.path == "/v1/sd/generate" for r in prodia.requests) == 3


async def test_v1_server_errors_give_up_after_max_retries(prodia, session):
    prodia.add_fault(Fault("status", status=500, times=None, path="/v1/job/*"))
    client = make_client(session, prodia, "v1", PRODIA_MAX_RETRIES="2")
    with pytest.raises(ServerError):
        await client.generate(prepare("v1"))
    assert sum(r.path.startswith("/v1/job/") for r in prodia.requests) == 3


async def test_v1_malformed_json_is_a_bad_response(prodia, session):
    prodia.add_fault(Fault("malformed_json", path="/v1/sd/generate"))
    with pytest.raises(BadResponse):
        await make_client(session, prodia, "v1").generate(prepare("v1"))


async def test_dropped_connection_is_retried(prodia, session):
    prodia.add_fault(Fault("disconnect", path="/v1/sd/generate"))
    result = await make_client(session, prodia, "v1").generate(prepare("v1"))
    assert result.image


async def test_connection_refused_is_server_error(session):
    server = LocalProdia()
    await server.start()
    settings = settings_for(server, "v1", PRODIA_MAX_RETRIES="1")
    await server.close()
    with pytest.raises(ServerError):
        await create_client(session, settings).generate(prepare("v1"))


@pytest.mark.parametrize(("kind", "size"), [("image_404", 0), ("not_image", 0), ("image_huge", 300_000)])
async def test_v1_unusable_images_are_refused(prodia, session, kind, size):
    prodia.add_fault(Fault(kind, size=size, path="/images/*"))
    client = make_client(session, prodia, "v1", MAX_IMAGE_BYTES="200000")
    with pytest.raises(BadResponse):
        await client.generate(prepare("v1"))


async def test_v1_image_on_a_foreign_host_is_refused(session):
    async with LocalProdia(image_scale=0.125) as server:
        server.image_base_url = server.url.replace("127.0.0.1", "localhost")
        with pytest.raises(BadResponse):
            await make_client(session, server, "v1").generate(prepare("v1"))
        assert not any(r.path.startswith("/images/") for r in server.requests)


async def test_v1_extra_image_host_is_allowed(session):
    async with LocalProdia(image_scale=0.125) as server:
        server.image_base_url = server.url.replace("127.0.0.1", "localhost")
        client = make_client(session, server, "v1", PRODIA_IMAGE_HOSTS="localhost")
        assert (await client.generate(prepare("v1"))).image


async def test_v1_image_redirects_are_checked_at_every_hop(prodia, session):
    # 127.0.0.1 (the API's host) -> localhost (an allowed extra host) -> 127.0.0.2 (not allowed): the second
    # redirect is refused, though the first was followed, and the foreign host never hears of it.
    async with Recorder("127.0.0.2", body=PNG) as foreign, Recorder("127.0.0.1") as hop:
        hop.redirect_to = f"{foreign.url}/image.png"
        prodia.add_fault(
            Fault("redirect", location=hop.url.replace("127.0.0.1", "localhost") + "/hop", path="/images/*")
        )
        client = make_client(session, prodia, "v1", PRODIA_IMAGE_HOSTS="localhost")
        with pytest.raises(BadResponse, match=r"host that is not allowed: http://127\.0\.0\.2"):
            await client.generate(prepare("v1"))
    assert [r.path for r in hop.received] == ["/hop"]
    assert foreign.received == []


async def test_v1_goes_through_the_proxy(prodia, forward_proxy, session):
    client = make_client(session, prodia, "v1", PRODIA_PROXY=forward_proxy.url)
    await client.generate(prepare("v1"))
    assert any(url.endswith("/v1/sd/generate") for url in forward_proxy.seen)
    assert any("/images/" in url for url in forward_proxy.seen)
    assert all(r.via_proxy for r in prodia.requests)


# -- v2 ----------------------------------------------------------------------------------------


async def test_v2_sends_bearer_token_and_multipart_accept(prodia, session):
    client = make_client(session, prodia, "v2")
    result = await client.generate(prepare("v2", seed=1234, aspect_ratio="landscape"))
    call = next(r for r in prodia.requests if r.path == "/v2/job")
    assert call.query == {"price": "true"}
    assert call.headers["Authorization"] == f"Bearer {KEY}"
    assert "X-Prodia-Key" not in call.headers
    assert call.headers["Accept"] == "multipart/form-data; image/png"
    assert call.json == {
        "type": "inference.flux-fast.schnell.txt2img.v2",
        "config": {"prompt": "a lighthouse at dusk", "seed": 1234, "steps": 4, "width": 1216, "height": 832},
    }
    assert result.seed == 1234
    assert result.job_id in prodia.jobs
    assert result.info.extension == "png"
    assert result.image == prodia.jobs[result.job_id].image
    assert result.price == 0.0025  # asked for with ?price=true


async def test_v2_flux_never_gets_sampler_cfg_or_negative_prompt(prodia, session):
    job = prepare("v2", sampler="DDIM", cfg=3, negative_prompt="blur")
    assert job.ignored == ("negative_prompt", "cfg", "sampler")
    await make_client(session, prodia, "v2").generate(job)
    config = prodia.requests[-1].json["config"]
    assert not {"sampler", "cfg_scale", "negative_prompt"} & set(config)


async def test_v2_sdxl_gets_only_its_known_fields(prodia, session):
    job = prepare("v2", model="sdxl", sampler="Euler", cfg=5, negative_prompt="blur", seed=3)
    await make_client(session, prodia, "v2").generate(job)
    config = prodia.requests[-1].json["config"]
    assert config == {"prompt": "a lighthouse at dusk", "seed": 3, "steps": 20, "negative_prompt": "blur"}


async def test_v2_accepts_a_raw_image_body(prodia, session):
    client = make_client(session, prodia, "v2")
    client.accept = "image/jpeg"
    result = await client.generate(prepare("v2", seed=5))
    assert prodia.requests[-1].headers["Accept"] == "image/jpeg"
    assert result.info.extension == "jpg"
    assert result.seed == 5
    assert result.job_id is None


async def test_v2_honours_retry_after_then_succeeds(prodia, session):
    prodia.add_fault(Fault("status", status=429, retry_after=0.2, times=2, path="/v2/job"))
    client = make_client(session, prodia, "v2")
    client.retry_delay = 100  # a back-off would wait far longer: only Retry-After may set the pace
    waits: list[float] = []

    async def record(delay: float) -> None:
        waits.append(delay)

    client.sleep = record
    result = await client.generate(prepare("v2"))
    assert result.image
    assert waits == [0.2, 0.2]
    assert sum(r.path == "/v2/job" for r in prodia.requests) == 3


async def test_v2_429_gives_up_as_busy(prodia, session):
    prodia.add_fault(Fault("status", status=429, retry_after=0, times=None, path="/v2/job"))
    with pytest.raises(CapacityError):
        await make_client(session, prodia, "v2", PRODIA_MAX_RETRIES="3").generate(prepare("v2"))
    assert sum(r.path == "/v2/job" for r in prodia.requests) == 4


async def test_v2_failed_job_is_not_retried(prodia, session):
    prodia.add_fault(Fault("job_fails", path="/v2/job"))
    with pytest.raises(JobFailed):
        await make_client(session, prodia, "v2").generate(prepare("v2"))
    assert sum(r.path == "/v2/job" for r in prodia.requests) == 1


async def test_v2_bad_token_is_an_auth_error(session):
    async with LocalProdia(api_key="right", image_scale=0.125) as server:
        with pytest.raises(AuthError):
            await make_client(session, server, "v2").generate(prepare("v2"))


@pytest.mark.parametrize("mode", ["sync", "async"])
@pytest.mark.parametrize(("kind", "size"), [("not_image", 0), ("image_huge", 300_000)])
async def test_v2_unusable_output_is_refused(prodia, session, kind, size, mode):
    prodia.add_fault(Fault(kind, size=size, path="/v2/job*"))
    client = make_client(session, prodia, "v2", MAX_IMAGE_BYTES="200000", PRODIA_V2_MODE=mode)
    with pytest.raises(BadResponse):
        await client.generate(prepare("v2"))
    assert not prodia.faults  # the fault was served


async def test_v2_never_finishing_job_hits_the_deadline(prodia, session):
    prodia.add_fault(Fault("never_finish", path="/v2/job"))
    with pytest.raises(JobTimeout):
        await make_client(session, prodia, "v2", PRODIA_TIMEOUT="1").generate(prepare("v2"))


# -- secrets -----------------------------------------------------------------------------------


async def test_key_never_reaches_logs_or_errors(prodia, session, caplog):
    caplog.set_level(logging.DEBUG)
    prodia.add_fault(Fault("status", status=401, message=f"token {KEY} is invalid", path="/v2/job"))
    prodia.add_fault(Fault("status", status=500, times=1, path="/v1/sd/generate"))
    with pytest.raises(AuthError) as caught:
        await make_client(session, prodia, "v2").generate(prepare("v2"))
    await make_client(session, prodia, "v1").generate(prepare("v1"))
    assert KEY not in str(caught.value)
    assert KEY not in repr(caught.value.params)
    assert caplog.records, "the retry should have been logged"
    assert KEY not in caplog.text


def test_v2_body_is_a_pure_function():
    assert ProdiaV2.body(prepare("v2", seed=1)) == ProdiaV2.body(prepare("v2", seed=1))
    assert ProdiaV1.body(prepare("v1", seed=1))["seed"] == 1


# -- v2 in the live API's shapes -----------------------------------------------------------------

FLUX_FAST = "inference.flux-fast.schnell.txt2img.v2"


def stricter_steps(server: LocalProdia, maximum: int) -> None:
    """The server's schema for flux-fast allows fewer steps than the bot sends: Prodia refuses the config."""
    job_type = server.job_types[FLUX_FAST]
    steps = dataclasses.replace(job_type.properties["steps"], maximum=maximum)
    server.job_types[FLUX_FAST] = dataclasses.replace(job_type, properties={**job_type.properties, "steps": steps})


def posts(server: LocalProdia, path: str) -> int:
    return sum(r.method == "POST" and r.path == path for r in server.requests)


@pytest.mark.parametrize("mode", ["sync", "async"])
async def test_v2_refused_config_shows_prodias_reason_without_multipart_framing(prodia, session, mode):
    stricter_steps(prodia, 2)
    with pytest.raises(InvalidRequest) as caught:
        await make_client(session, prodia, "v2", PRODIA_V2_MODE=mode).generate(prepare("v2"))
    assert caught.value.params["reason"] == "jsonschema validation failed: /config/steps/maximum: got 4, want 2"
    assert posts(prodia, "/v2/job" if mode == "sync" else "/v2/job/async") == 1  # a 400 is final


async def test_v2_long_reason_is_cut_on_one_clean_line(prodia, session):
    message = "first line\r\nsecond \x1b[31mred\x1b[0m line " + "word " * 200
    prodia.add_fault(Fault("status", status=400, message=message, shape="multipart", path="/v2/job"))
    with pytest.raises(InvalidRequest) as caught:
        await make_client(session, prodia, "v2").generate(prepare("v2"))
    reason = caught.value.params["reason"]
    assert reason.startswith("first line second [31mred [0m line word word")
    assert len(reason) <= 300 and reason.endswith("word…")
    assert all(c.isprintable() for c in reason)


async def test_v2_bad_token_in_plain_text_is_an_auth_error_sent_once(session):
    async with LocalProdia(api_key="right", image_scale=0.125) as server:
        with pytest.raises(AuthError) as caught:
            await make_client(session, server, "v2").generate(prepare("v2"))
        assert posts(server, "/v2/job") == 1
    assert str(caught.value).endswith(": token is invalid")


async def test_v2_unknown_job_type_gives_up_as_busy_or_not_available(prodia, session):
    del prodia.job_types[FLUX_FAST]  # as if this account could not use it: the live API answers 429 forever
    client = make_client(session, prodia, "v2", PRODIA_MAX_RETRIES="2")
    client.sleep = _no_wait
    with pytest.raises(CapacityError) as caught:
        await client.generate(prepare("v2"))
    assert posts(prodia, "/v2/job") == 3
    assert "not available to the bot's account" in error_text(caught.value)


@pytest.mark.parametrize("mode", ["sync", "async"])
@pytest.mark.parametrize("fault", [Fault("status", status=502, times=None), Fault("disconnect", times=None)])
async def test_v2_job_post_that_may_have_run_is_sent_again_only_once(prodia, session, mode, fault):
    path = "/v2/job" if mode == "sync" else "/v2/job/async"
    prodia.add_fault(dataclasses.replace(fault, path=path))
    with pytest.raises(ServerError):
        await make_client(session, prodia, "v2", PRODIA_V2_MODE=mode, PRODIA_MAX_RETRIES="5").generate(prepare("v2"))
    assert posts(prodia, path) == 2


async def test_v2_429s_do_not_count_towards_the_one_resend(prodia, session):
    prodia.add_fault(Fault("status", status=429, retry_after=0, times=2, path="/v2/job"))
    prodia.add_fault(Fault("status", status=500, times=1, path="/v2/job"))
    result = await make_client(session, prodia, "v2").generate(prepare("v2"))
    assert result.image
    assert posts(prodia, "/v2/job") == 4  # two 429s (not scheduled), one 500, then the one resend


async def test_v2_async_submits_polls_and_downloads_the_output(prodia, session):
    prodia.job_duration = 0.05
    steps: list[Progress] = []

    async def on_progress(step: Progress) -> None:
        steps.append(step)

    result = await make_client(session, prodia, "v2", PRODIA_V2_MODE="async").generate(
        prepare("v2", seed=77), on_progress
    )
    job_id = result.job_id
    root = f"/v2/job/async/{job_id}"
    paths = [r.path for r in prodia.requests]
    assert paths[0] == "/v2/job/async" and prodia.requests[0].query == {"price": "true"}
    assert set(paths[1:]) == {
        f"{root}/job.state.current",
        f"{root}/job.json",
        f"{root}/output",
        f"{root}/output/output.jpg",
    }
    assert Progress("submitted", job_id) in steps and Progress("downloading", job_id) in steps
    assert result.image == prodia.jobs[job_id].image
    assert (result.seed, result.price, result.info.extension) == (77, 0.0025, "jpg")


async def test_v2_async_job_is_resumed_by_id_without_a_new_post(prodia, session):
    client = make_client(session, prodia, "v2", PRODIA_V2_MODE="async")
    job = prepare("v2", seed=5)
    job_id = await client._submit(job)  # submitted before a restart
    result = await make_client(session, prodia, "v2", PRODIA_V2_MODE="async").generate(job, job_id=job_id)
    assert (result.job_id, posts(prodia, "/v2/job/async")) == (job_id, 1)
    assert result.image == prodia.jobs[job_id].image


async def test_v2_async_job_prodia_forgot_is_not_sent_again(prodia, session):
    # Prodia accepted it once (it had an id), so it may have been billed: a new submission would bill it again.
    with pytest.raises(JobFailed):
        await make_client(session, prodia, "v2", PRODIA_V2_MODE="async").generate(
            prepare("v2"), job_id="00000000-0000-0000-0000-000000000000"
        )
    assert posts(prodia, "/v2/job/async") == 0


async def test_v2_async_failed_job_is_job_failed_with_prodias_reason_and_not_sent_again(prodia, session):
    prodia.add_fault(Fault("job_fails", path="/v2/job/async"))
    with pytest.raises(JobFailed) as caught:
        await make_client(session, prodia, "v2", PRODIA_V2_MODE="async").generate(prepare("v2"))
    assert caught.value.params["reason"] == "generation failed"
    assert posts(prodia, "/v2/job/async") == 1


async def test_v2_auto_learns_a_type_that_refuses_async_and_runs_it_synchronously(prodia, session):
    prodia.job_types[FLUX_FAST] = dataclasses.replace(prodia.job_types[FLUX_FAST], permits_async=False)
    client = make_client(session, prodia, "v2", PRODIA_V2_MODE="auto")
    first = await client.generate(prepare("v2"))
    second = await client.generate(prepare("v2"))
    assert first.image and second.image
    assert [r.path for r in prodia.requests] == ["/v2/job/async", "/v2/job", "/v2/job"]


async def test_v2_auto_does_not_learn_sync_from_a_bad_config(prodia, session):
    stricter_steps(prodia, 2)
    client = make_client(session, prodia, "v2", PRODIA_V2_MODE="auto")
    with pytest.raises(InvalidRequest):
        await client.generate(prepare("v2"))
    assert [r.path for r in prodia.requests] == ["/v2/job/async", "/v2/job"]  # each refused: neither billed
    assert client.sync_only == set()


async def test_v2_auto_runs_async_where_the_type_accepts_it(prodia, session):
    result = await make_client(session, prodia, "v2", PRODIA_V2_MODE="auto").generate(prepare("v2"))
    assert posts(prodia, "/v2/job/async") == 1 and posts(prodia, "/v2/job") == 0
    assert result.job_id in prodia.jobs


@pytest.mark.parametrize(("api", "path"), [("v1", "/v1/sd/generate"), ("v2", "/v2/job")])
async def test_an_api_redirect_is_not_followed_with_the_key_or_the_prompt(prodia, session, api, path):
    async with Recorder("127.0.0.2") as foreign:  # another host: a 307 would carry the key and the body there
        prodia.add_fault(Fault("status", status=307, times=None, location=foreign.url + path, path=path))
        with pytest.raises(BadResponse):
            await make_client(session, prodia, api).generate(prepare(api))
    assert posts(prodia, path) == 1  # refused, not retried
    assert foreign.received == []  # no request at all, so none with X-Prodia-Key, Authorization or the prompt


async def _no_wait(_: float) -> None:
    return None


# -- sends of one job, counted across its runs (the journal's `attempts`) -------------------------


@pytest.mark.parametrize(("api", "path"), [("v1", "/v1/sd/generate"), ("v2", "/v2/job")])
async def test_each_send_is_counted_before_it_leaves_retries_included(prodia, session, api, path):
    prodia.add_fault(Fault("status", status=429, retry_after=0, times=2, path=path))
    counted: list[tuple[int, int]] = []  # (the count heard, the sends the server had seen by then)

    async def record(total: int) -> None:
        counted.append((total, posts(prodia, path)))

    sends = Sends(record=record)
    await make_client(session, prodia, api).generate(prepare(api), sends=sends)
    assert counted == [(1, 0), (2, 1), (3, 2)]
    assert (sends.total, posts(prodia, path)) == (3, 3)


@pytest.mark.parametrize("mode", ["sync", "async"])
async def test_a_v2_job_sent_before_a_restart_is_sent_once_more_without_a_resend(prodia, session, mode):
    # The earlier send may have run (and been billed): this one is the one resend the policy allows.
    path = "/v2/job" if mode == "sync" else "/v2/job/async"
    prodia.add_fault(Fault("status", status=502, times=None, path=path))
    sends = Sends(earlier=1)
    with pytest.raises(ServerError):
        await make_client(session, prodia, "v2", PRODIA_V2_MODE=mode).generate(prepare("v2"), sends=sends)
    assert (posts(prodia, path), sends.total) == (1, 2)


@pytest.mark.parametrize("mode", ["sync", "async"])
async def test_a_v2_job_sent_twice_before_is_not_sent_again(prodia, session, mode):
    with pytest.raises(NotSentAgain) as caught:
        await make_client(session, prodia, "v2", PRODIA_V2_MODE=mode).generate(prepare("v2"), sends=Sends(earlier=2))
    assert [r for r in prodia.requests if r.method == "POST"] == []
    assert "restarted while making this image" in error_text(caught.value)


async def test_a_v1_job_is_sent_at_most_one_plus_max_retries_times_in_all(prodia, session):
    prodia.add_fault(Fault("status", status=500, times=None, path="/v1/sd/generate"))
    client = make_client(session, prodia, "v1", PRODIA_MAX_RETRIES="3")
    sends = Sends(earlier=2)  # two sends before a restart: two more are left of the four
    with pytest.raises(ServerError):
        await client.generate(prepare("v1"), sends=sends)
    assert (posts(prodia, "/v1/sd/generate"), sends.total) == (2, 4)
    with pytest.raises(NotSentAgain):
        await client.generate(prepare("v1"), sends=sends)
    assert posts(prodia, "/v1/sd/generate") == 2


@pytest.mark.parametrize("status", [429, 503])
async def test_v1_an_image_download_answered_429_or_5xx_is_tried_again(prodia, session, status):
    # The job is made and paid for by then, and a download is not billed: losing the image to one refusal would be
    # the worst outcome (the chaos run found 33 of 200 v1 jobs lost so).
    prodia.add_fault(Fault("status", status=status, retry_after=0.01 if status == 429 else None, path="/images/*"))
    client = make_client(session, prodia, "v1")
    result = await client.generate(prepare("v1"))
    assert result.image == next(iter(prodia.jobs.values())).image
    assert [r.path.startswith("/images/") for r in prodia.requests].count(True) == 2
    assert len([r for r in prodia.requests if r.method == "POST"]) == 1  # the job itself was not sent again


async def test_v1_an_image_download_refused_every_time_ends_after_the_retries(prodia, session):
    prodia.add_fault(Fault("status", status=503, times=None, path="/images/*"))
    client = make_client(session, prodia, "v1", PRODIA_MAX_RETRIES="2")
    with pytest.raises(ServerError):
        await client.generate(prepare("v1"))
    assert [r.path.startswith("/images/") for r in prodia.requests].count(True) == 3  # once, then 2 retries


async def test_a_v1_job_with_exactly_one_send_left_gets_it_and_no_retry(prodia, session):
    client = make_client(session, prodia, "v1", PRODIA_MAX_RETRIES="3")
    sends = Sends(earlier=3)  # three before restarts: the fourth and last is left
    assert (await client.generate(prepare("v1"), sends=sends)).image
    assert (posts(prodia, "/v1/sd/generate"), sends.total) == (1, 4)
    prodia.add_fault(Fault("status", status=500, times=None, path="/v1/sd/generate"))
    sends = Sends(earlier=3)
    with pytest.raises(ServerError):  # its one send failed: not retried, the budget is spent
        await client.generate(prepare("v1"), sends=sends)
    assert (posts(prodia, "/v1/sd/generate"), sends.total) == (2, 4)


async def test_a_job_with_its_last_send_left_is_not_retried_after_a_429(prodia, session):
    prodia.add_fault(Fault("status", status=429, retry_after=0, times=None, path="/v1/sd/generate"))
    client = make_client(session, prodia, "v1", PRODIA_MAX_RETRIES="3")
    client.sleep = _no_wait
    with pytest.raises(CapacityError):
        await client.generate(prepare("v1"), sends=Sends(earlier=3))
    assert posts(prodia, "/v1/sd/generate") == 1  # a 429 is retried, but not past the job's budget of sends
