"""The local Prodia server, exercised over real HTTP with a plain aiohttp client."""

import asyncio
import io
import json
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from PIL import Image

from bot.local_prodia import Fault, LocalProdia

KEY = {"X-Prodia-Key": "test-key"}
BEARER = {"Authorization": "Bearer test-token"}
FLUX = "inference.flux-fast.schnell.txt2img.v2"
SDXL_V2 = "inference.sdxl.txt2img.v1"
REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def submit(http: aiohttp.ClientSession, prodia: LocalProdia, body: dict, kind: str = "sd") -> dict:
    async with http.post(f"{prodia.v1_url}/{kind}/generate", json=body, headers=KEY) as resp:
        assert resp.status == 200, await resp.text()
        return await resp.json()


async def poll(http: aiohttp.ClientSession, prodia: LocalProdia, job_id: str) -> dict:
    async with http.get(f"{prodia.v1_url}/job/{job_id}", headers=KEY) as resp:
        assert resp.status == 200
        return await resp.json()


async def generate(http: aiohttp.ClientSession, prodia: LocalProdia, body: dict, kind: str = "sd") -> bytes:
    """Submit, poll to success, download: the v1 image bytes."""
    job = await submit(http, prodia, body, kind)
    answer = await poll(http, prodia, job["job"])
    assert answer["status"] == "succeeded"
    async with http.get(answer["imageUrl"]) as resp:
        assert resp.status == 200
        return await resp.read()


def age(prodia: LocalProdia, job_id: str, seconds: float) -> None:
    """Move a job's start into the past: progress without waiting in real time."""
    prodia.jobs[job_id].created_at -= seconds


async def v2_job(
    http: aiohttp.ClientSession, prodia: LocalProdia, config: dict, accept: str | None = None, job_type: str = FLUX
) -> tuple[aiohttp.ClientResponse, bytes]:
    headers = BEARER if accept is None else {**BEARER, "Accept": accept}
    async with http.post(f"{prodia.v2_url}/job", json={"type": job_type, "config": config}, headers=headers) as resp:
        return resp, await resp.read()


def image_size(data: bytes, fmt: str = "PNG") -> tuple[int, int]:
    with Image.open(io.BytesIO(data)) as image:
        assert image.format == fmt
        return image.size


# -- v1 ----------------------------------------------------------------------------------------


async def test_v1_job_goes_queued_then_generating_then_succeeded(http):
    async with LocalProdia(job_duration=10, queued_fraction=0.3, image_scale=0.125) as prodia:
        job = await submit(http, prodia, {"prompt": "a red fox"})
        assert job["status"] == "queued"
        assert (await poll(http, prodia, job["job"]))["status"] == "queued"
        age(prodia, job["job"], 5)
        generating = await poll(http, prodia, job["job"])
        assert generating["status"] == "generating"
        assert "imageUrl" not in generating
        age(prodia, job["job"], 5)
        done = await poll(http, prodia, job["job"])
    assert done["status"] == "succeeded"
    assert done["imageUrl"] == f"{prodia.url}/images/{job['job']}.png"
    assert done["params"]["prompt"] == "a red fox"
    assert prodia.jobs[job["job"]].polls == 3


async def test_v1_image_is_not_served_before_the_job_succeeded(http):
    async with LocalProdia(job_duration=10) as prodia:
        job = await submit(http, prodia, {"prompt": "a red fox"})
        async with http.get(f"{prodia.url}/images/{job['job']}.png") as resp:
            assert resp.status == 404


async def test_v1_unknown_job_is_404(http, prodia):
    async with http.get(f"{prodia.v1_url}/job/nope", headers=KEY) as resp:
        assert resp.status == 404


async def test_v1_params_default_and_record_the_random_seed(http, prodia):
    params = (await submit(http, prodia, {"prompt": "a red fox", "seed": -1}))["params"]
    assert params["model"] == "absolutereality_v181.safetensors [3d9d4d2b]"
    assert params["aspect_ratio"] == "square"
    assert 0 <= params["seed"] <= 2**32 - 1
    sdxl = (await submit(http, prodia, {"prompt": "a red fox"}, "sdxl"))["params"]
    assert sdxl["model"] == "sd_xl_base_1.0.safetensors [be9edd61]"
    assert (sdxl["width"], sdxl["height"]) == (1024, 1024)


@pytest.mark.parametrize(
    ("aspect_ratio", "size"), [("square", (64, 64)), ("portrait", (64, 96)), ("landscape", (96, 64))]
)
async def test_v1_image_is_a_png_sized_by_aspect_ratio(http, prodia, aspect_ratio, size):
    image = await generate(http, prodia, {"prompt": "a red fox", "aspect_ratio": aspect_ratio})
    assert image_size(image) == size


async def test_sdxl_image_is_sized_by_width_and_height(http, prodia):
    image = await generate(http, prodia, {"prompt": "a red fox", "width": 512, "height": 768}, "sdxl")
    assert image_size(image) == (64, 96)


async def test_same_prompt_and_seed_give_the_same_image_and_another_seed_does_not(http, prodia):
    first = await generate(http, prodia, {"prompt": "a red fox", "seed": 42})
    again = await generate(http, prodia, {"prompt": "a red fox", "seed": 42})
    other = await generate(http, prodia, {"prompt": "a red fox", "seed": 43})
    assert first == again
    assert first != other


@pytest.mark.parametrize(
    ("kind", "body", "field"),
    [
        ("sd", {}, "prompt"),
        ("sd", {"prompt": "  "}, "prompt"),
        ("sd", {"prompt": "fox", "steps": 0}, "steps"),
        ("sd", {"prompt": "fox", "steps": 51}, "steps"),
        ("sd", {"prompt": "fox", "cfg_scale": 21}, "cfg_scale"),
        ("sd", {"prompt": "fox", "sampler": "Euler b"}, "sampler"),
        ("sd", {"prompt": "fox", "aspect_ratio": "wide"}, "aspect_ratio"),
        ("sd", {"prompt": "fox", "model": "sd_xl_base_1.0.safetensors [be9edd61]"}, "model"),
        ("sd", {"prompt": "fox", "seed": "7"}, "seed"),
        ("sdxl", {"prompt": "fox", "width": 4096}, "width"),
    ],
)
async def test_v1_invalid_params_are_400_naming_the_field(http, prodia, kind, body, field):
    async with http.post(f"{prodia.v1_url}/{kind}/generate", json=body, headers=KEY) as resp:
        assert resp.status == 400
        answer = await resp.json()
    assert answer["message"] == "Invalid Generation Parameters"
    assert answer["detail"].startswith(field)
    assert prodia.jobs == {}


@pytest.mark.parametrize("headers", [{}, {"X-Prodia-Key": "wrong"}])
async def test_v1_wrong_or_missing_key_is_401(http, headers):
    async with LocalProdia(api_key="right") as prodia:
        async with http.post(f"{prodia.v1_url}/sd/generate", json={"prompt": "fox"}, headers=headers) as resp:
            assert resp.status == 401
            assert await resp.json() == {"message": "Invalid API key"}
        async with http.post(
            f"{prodia.v1_url}/sd/generate", json={"prompt": "fox"}, headers={"X-Prodia-Key": "right"}
        ) as resp:
            assert resp.status == 200


@pytest.mark.parametrize(
    ("path", "expected"),
    [("sd/models", "deliberate_v3.safetensors [afd9d2d4]"), ("sdxl/models", "sd_xl_base_1.0.safetensors [be9edd61]")],
)
async def test_v1_lists_models(http, prodia, path, expected):
    async with http.get(f"{prodia.v1_url}/{path}", headers=KEY) as resp:
        assert expected in await resp.json()
    async with http.get(f"{prodia.v1_url}/{path.replace('models', 'samplers')}", headers=KEY) as resp:
        assert "DPM++ 2M Karras" in await resp.json()


async def test_job_duration_callable_gets_the_job_params(http):
    async with LocalProdia(job_duration=lambda params: params["steps"] / 10) as prodia:
        job = await submit(http, prodia, {"prompt": "fox", "steps": 30})
    assert prodia.jobs[job["job"]].duration == 3.0


async def test_image_url_uses_image_base_url(http):
    async with LocalProdia(image_base_url="https://images.example") as prodia:
        job = await submit(http, prodia, {"prompt": "fox"})
        answer = await poll(http, prodia, job["job"])
    assert answer["imageUrl"] == f"https://images.example/images/{job['job']}.png"


# -- v2 ----------------------------------------------------------------------------------------


async def test_v2_multipart_has_the_job_document_and_the_image(http, prodia):
    headers = {**BEARER, "Accept": "multipart/form-data; image/png"}
    body = {"type": FLUX, "config": {"prompt": "a red fox", "seed": 7, "width": 512, "height": 768}}
    async with http.post(f"{prodia.v2_url}/job", json=body, headers=headers) as resp:
        assert resp.status == 200
        assert resp.content_type == "multipart/form-data"
        reader = aiohttp.MultipartReader.from_response(resp)
        job_part = await reader.next()
        assert (job_part.name, job_part.filename) == ("job", "job.json")
        job = await job_part.json()
        output = await reader.next()
        assert (output.name, output.filename) == ("output", "output.png")
        assert output.headers["Content-Type"] == "image/png"
        image = await output.read()
    assert job["type"] == FLUX
    assert job["config"] | {"prompt": "a red fox", "seed": 7, "width": 512, "height": 768} == job["config"]
    assert job["state"] == {"current": "completed"}
    assert set(job["metrics"]) == {"elapsed", "ips"}
    assert image_size(image) == (64, 96)
    assert prodia.jobs[job["id"]].api == "v2"


@pytest.mark.parametrize(
    ("accept", "fmt", "content_type"),
    [
        (None, "JPEG", "image/jpeg"),
        ("*/*", "JPEG", "image/jpeg"),
        ("image/jpeg", "JPEG", "image/jpeg"),
        ("image/png", "PNG", "image/png"),
        ("image/webp", "WEBP", "image/webp"),
    ],
)
async def test_v2_returns_raw_bytes_in_the_accepted_format(http, prodia, accept, fmt, content_type):
    resp, body = await v2_job(http, prodia, {"prompt": "a red fox", "width": 256, "height": 256}, accept)
    assert resp.status == 200
    assert resp.content_type == content_type
    assert image_size(body, fmt) == (32, 32)


async def test_v2_random_seed_is_recorded(http, prodia):
    await v2_job(http, prodia, {"prompt": "a red fox"})
    (job,) = prodia.jobs.values()
    assert 0 <= job.params["seed"] <= 2**32 - 1


@pytest.mark.parametrize("field", ["sampler", "negative_prompt", "cfg_scale"])
async def test_v2_flux_rejects_sd_only_fields(http, prodia, field):
    value = {"sampler": "Euler", "negative_prompt": "blur", "cfg_scale": 7}[field]
    resp, body = await v2_job(http, prodia, {"prompt": "fox", field: value})
    assert resp.status == 400
    assert json.loads(body) == {"message": f"config.{field} is not allowed for this job type"}


async def test_v2_sdxl_accepts_sampler_and_cfg_scale(http, prodia):
    resp, _ = await v2_job(http, prodia, {"prompt": "fox", "sampler": "Euler", "cfg_scale": 5}, job_type=SDXL_V2)
    assert resp.status == 200


@pytest.mark.parametrize(
    ("config", "field"),
    [
        ({}, "config.prompt"),
        ({"prompt": "fox", "steps": 5}, "config.steps"),
        ({"prompt": "fox", "width": 255}, "config.width"),
        ({"prompt": "fox", "height": 1921}, "config.height"),
        ({"prompt": "fox", "seed": -1}, "config.seed"),
        ({"prompt": "fox", "style_preset": "watercolour"}, "config.style_preset"),
    ],
)
async def test_v2_invalid_config_is_400_naming_the_field(http, prodia, config, field):
    resp, body = await v2_job(http, prodia, config)
    assert resp.status == 400
    assert json.loads(body)["message"].startswith(field)


async def test_v2_unknown_job_type_is_400(http, prodia):
    resp, body = await v2_job(http, prodia, {"prompt": "fox"}, job_type="inference.nope.v1")
    assert resp.status == 400
    assert json.loads(body)["message"] == "unknown job type"


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer wrong"}, {"Authorization": "right"}])
async def test_v2_bad_token_is_401(http, headers):
    async with LocalProdia(api_key="right") as prodia:
        body = {"type": FLUX, "config": {"prompt": "fox"}}
        async with http.post(f"{prodia.v2_url}/job", json=body, headers=headers) as resp:
            assert resp.status == 401
            assert await resp.json() == {"message": "token is invalid"}


# -- faults ------------------------------------------------------------------------------------


async def test_status_fault_answers_with_retry_after_then_is_used_up(http, prodia):
    prodia.add_fault(Fault("status", status=429, retry_after=2, path="/v2/job"))
    first, body = await v2_job(http, prodia, {"prompt": "fox"})
    assert first.status == 429
    assert first.headers["Retry-After"] == "2"
    assert json.loads(body) == {"message": "Too Many Requests"}
    assert (await v2_job(http, prodia, {"prompt": "fox"}))[0].status == 200


async def test_status_fault_applies_only_to_its_path_and_before_auth(http, prodia):
    prodia.add_fault(Fault("status", status=503, message="down", times=None, path="/v1/sd/*"))
    assert (await v2_job(http, prodia, {"prompt": "fox"}))[0].status == 200
    for _ in range(2):
        async with http.post(f"{prodia.v1_url}/sd/generate", json={}) as resp:
            assert resp.status == 503
            assert await resp.json() == {"message": "down"}


async def test_malformed_json_fault(http, prodia):
    prodia.add_fault(Fault("malformed_json", path="/v1/job/*"))
    job = await submit(http, prodia, {"prompt": "fox"})
    async with http.get(f"{prodia.v1_url}/job/{job['job']}", headers=KEY) as resp:
        assert resp.status == 200
        assert resp.content_type == "application/json"
        with pytest.raises(ValueError):
            await resp.json()


async def test_slow_fault_delays_the_answer(http, prodia):
    prodia.add_fault(Fault("slow", delay=30))
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(submit(http, prodia, {"prompt": "fox"}), 0.2)
    assert (await submit(http, prodia, {"prompt": "fox"}))["status"] == "queued"


async def test_disconnect_fault_drops_the_connection(http, prodia):
    prodia.add_fault(Fault("disconnect", path="/v1/sd/generate"))
    with pytest.raises(aiohttp.ServerDisconnectedError):
        await submit(http, prodia, {"prompt": "fox"})
    assert len(prodia.requests) == 1


async def test_job_fails_fault_v1(http, prodia):
    prodia.add_fault(Fault("job_fails"))
    job = await submit(http, prodia, {"prompt": "fox"})
    answer = await poll(http, prodia, job["job"])
    assert answer["status"] == "failed"
    assert "imageUrl" not in answer


async def test_job_fails_fault_v2(http, prodia):
    prodia.add_fault(Fault("job_fails", path="/v2/job"))
    resp, body = await v2_job(http, prodia, {"prompt": "fox"})
    assert resp.status == 500
    (job_id,) = prodia.jobs
    assert json.loads(body) == {
        "message": "job failed",
        "job": {"id": job_id, "state": {"current": "failed"}, "error": "generation failed"},
    }


async def test_never_finish_fault_v1_stays_generating(http, prodia):
    prodia.add_fault(Fault("never_finish"))
    job = await submit(http, prodia, {"prompt": "fox"})
    age(prodia, job["job"], 3600)
    assert (await poll(http, prodia, job["job"]))["status"] == "generating"


async def test_never_finish_fault_v2_hangs_until_the_server_closes(http):
    prodia = LocalProdia()
    await prodia.start()
    prodia.add_fault(Fault("never_finish"))
    request = asyncio.create_task(v2_job(http, prodia, {"prompt": "fox"}))
    done, _ = await asyncio.wait([request], timeout=0.2)
    assert not done
    await asyncio.wait_for(prodia.close(), 5)
    with pytest.raises(aiohttp.ServerDisconnectedError):
        await request


async def image_response(http, prodia, fault: Fault) -> tuple[aiohttp.ClientResponse, bytes]:
    answer = await poll(http, prodia, (await submit(http, prodia, {"prompt": "fox"}))["job"])
    prodia.add_fault(fault)
    async with http.get(answer["imageUrl"], allow_redirects=False) as resp:
        return resp, await resp.read()


async def test_image_404_fault(http, prodia):
    resp, _ = await image_response(http, prodia, Fault("image_404", path="/images/*"))
    assert resp.status == 404


async def test_image_huge_fault_streams_without_content_length(http, prodia):
    resp, body = await image_response(http, prodia, Fault("image_huge", size=300_000))
    assert resp.status == 200
    assert "Content-Length" not in resp.headers
    assert resp.headers["Transfer-Encoding"] == "chunked"
    assert len(body) == 300_000
    assert body.startswith(b"\x89PNG\r\n\x1a\n")


async def test_not_image_fault(http, prodia):
    resp, body = await image_response(http, prodia, Fault("not_image"))
    assert resp.content_type == "image/png"
    assert body == b"<html>not an image</html>"


async def test_redirect_fault(http, prodia):
    resp, _ = await image_response(http, prodia, Fault("redirect", location="http://169.254.169.254/"))
    assert resp.status == 302
    assert resp.headers["Location"] == "http://169.254.169.254/"


@pytest.mark.parametrize(("fault", "length"), [(Fault("image_huge", size=100_000), 100_000), (Fault("not_image"), 25)])
async def test_image_faults_apply_to_the_v2_output(http, prodia, fault, length):
    prodia.add_fault(fault)
    resp, body = await v2_job(http, prodia, {"prompt": "fox"}, "image/png")
    assert resp.status == 200
    assert len(body) == length


def test_unknown_fault_kind_is_refused():
    with pytest.raises(ValueError, match="unknown fault kind"):
        Fault("explode")


# -- control API, recording, proxy -------------------------------------------------------------


async def test_control_api_adds_lists_clears_and_resets(http, prodia):
    async with http.post(f"{prodia.url}/_control/faults", json={"kind": "status", "status": 402}) as resp:
        assert resp.status == 201
    async with http.post(f"{prodia.url}/_control/faults", json={"kind": "nope"}) as resp:
        assert resp.status == 400
    async with http.post(f"{prodia.v1_url}/sd/generate", json={"prompt": "fox"}, headers=KEY) as resp:
        assert resp.status == 402
    prodia.add_fault(Fault("status", times=None))
    async with http.delete(f"{prodia.url}/_control/faults") as resp:
        assert resp.status == 204
    job = await submit(http, prodia, {"prompt": "fox"})
    await poll(http, prodia, job["job"])
    async with http.get(f"{prodia.url}/_control/jobs") as resp:
        (listed,) = await resp.json()
    assert listed["id"] == job["job"]
    assert (listed["api"], listed["status"], listed["polls"], listed["duration"]) == ("v1", "succeeded", 1, 0)
    assert listed["finished_wall"] == listed["created_wall"]
    assert [r.path for r in prodia.requests] == ["/v1/sd/generate"] * 2 + [f"/v1/job/{job['job']}"]
    async with http.post(f"{prodia.url}/_control/reset") as resp:
        assert resp.status == 204
    assert (prodia.jobs, prodia.requests, prodia.faults) == ({}, [], [])


async def test_control_finish_ends_every_running_job_at_once(http):
    async with LocalProdia(job_duration=3600, image_scale=0.125) as prodia:
        held = [(await submit(http, prodia, {"prompt": f"fox {n}"}))["job"] for n in range(3)]
        prodia.add_fault(Fault("never_finish"))
        stuck = (await submit(http, prodia, {"prompt": "stuck"}))["job"]
        assert {(await poll(http, prodia, job))["status"] for job in held} <= {"queued", "generating"}
        async with http.post(f"{prodia.url}/_control/finish") as resp:
            assert await resp.json() == {"finished": 3}
        assert {(await poll(http, prodia, job))["status"] for job in held} == {"succeeded"}
        assert (await poll(http, prodia, stuck))["status"] in ("queued", "generating")  # never-finishing stays so
        assert prodia.finish_all() == 0  # nothing left running


async def test_requests_are_recorded_with_headers_and_json(http, prodia):
    await submit(http, prodia, {"prompt": "fox", "steps": 20})
    (recorded,) = prodia.requests
    assert (recorded.method, recorded.path) == ("POST", "/v1/sd/generate")
    assert recorded.headers["x-prodia-key"] == recorded.headers["X-Prodia-Key"] == "test-key"
    assert recorded.json == {"prompt": "fox", "steps": 20}
    assert recorded.body == b'{"prompt": "fox", "steps": 20}'
    assert not recorded.via_proxy


async def test_requests_through_the_forward_proxy_are_marked(http, prodia, forward_proxy):
    url = f"{prodia.v1_url}/sd/models?page=1"
    async with http.get(url, headers=KEY, proxy=forward_proxy.url) as resp:
        assert resp.status == 200
        assert "deliberate_v3.safetensors [afd9d2d4]" in await resp.json()
    assert forward_proxy.seen == [url]
    (recorded,) = prodia.requests
    assert recorded.via_proxy
    assert recorded.query == {"page": "1"}
    assert recorded.headers["X-Prodia-Key"] == "test-key"


async def test_forward_proxy_streams_chunked_bodies(http, prodia, forward_proxy):
    answer = await poll(http, prodia, (await submit(http, prodia, {"prompt": "fox"}))["job"])
    prodia.add_fault(Fault("image_huge", size=200_000))
    async with http.get(answer["imageUrl"], proxy=forward_proxy.url) as resp:
        assert "Content-Length" not in resp.headers
        assert len(await resp.read()) == 200_000


# -- standalone --------------------------------------------------------------------------------


async def test_standalone_server_prints_its_url_serves_and_exits_on_sigterm(http):
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot.local_prodia", "--port", "0", cwd=REPO, stdout=asyncio.subprocess.PIPE
    )
    try:
        line = (await asyncio.wait_for(process.stdout.readline(), 10)).decode()
        url = line.split(" listening on ", 1)[1].split(" ", 1)[0]
        assert line == f"Local Prodia server listening on {url} (v1: {url}/v1, v2: {url}/v2)\n"
        async with http.get(f"{url}/v1/sd/models", headers=KEY) as resp:
            assert "deliberate_v3.safetensors [afd9d2d4]" in await resp.json()
        process.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(process.wait(), 10) == 0
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
