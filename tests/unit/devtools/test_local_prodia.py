"""The local Prodia server, exercised over real HTTP with a plain aiohttp client."""

import asyncio
import dataclasses
import io
import json
import signal
import sys
import time
from collections.abc import AsyncIterator

import aiohttp
import pytest
from PIL import Image

from devtools.local_prodia import JOB_TYPES, Fault, LocalProdia
from tests import REPO_ROOT

KEY = {"X-Prodia-Key": "test-key"}
BEARER = {"Authorization": "Bearer test-token"}
FLUX = "inference.flux-fast.schnell.txt2img.v2"
SDXL_V2 = "inference.sdxl.txt2img.v1"
IMG2IMG = "inference.flux-2.pro.img2img.v1"
MULTIPART = {**BEARER, "Accept": "multipart/form-data"}
ASYNC_GETS = ["job.state.current", "job.json", "output", "output/output.jpg"]


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


async def job_part(resp: aiohttp.ClientResponse) -> dict:
    """The `job` part of a multipart answer (it comes first), read off the open response."""
    assert resp.content_type == "multipart/form-data", await resp.text()
    part = await aiohttp.MultipartReader.from_response(resp).next()
    assert (part.name, part.filename) == ("job", "job.json")
    assert part.headers["Content-Type"] == "application/json"
    return await part.json()


async def v2_document(
    http: aiohttp.ClientSession, prodia: LocalProdia, config: dict, job_type: str = FLUX, path: str = "/job", **kwargs
) -> tuple[int, dict]:
    """POST a JSON job asking for multipart: the status and the answer's `job` part."""
    body = {"type": job_type, "config": config}
    async with http.post(f"{prodia.v2_url}{path}", json=body, headers=MULTIPART, **kwargs) as resp:
        return resp.status, await job_part(resp)


def job_form(body: dict, *inputs: tuple[str, bytes]) -> aiohttp.FormData:
    """A v2 request as the official client sends it: a `job` part, then `input` parts."""
    form = aiohttp.FormData()
    form.add_field("job", json.dumps(body), filename="job.json", content_type="application/json")
    for filename, data in inputs:
        form.add_field("input", data, filename=filename, content_type="image/png")
    return form


def png_bytes(size: tuple[int, int] = (8, 8)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, (200, 40, 40)).save(out, "PNG")
    return out.getvalue()


def schema_error(detail: str) -> str:
    return f"jsonschema validation failed: {detail}"


async def submit_async(
    http: aiohttp.ClientSession, prodia: LocalProdia, config: dict, accept: str | None = None, query: str = ""
) -> dict:
    """POST /v2/job/async: the 201 job document."""
    headers = BEARER if accept is None else {**BEARER, "Accept": accept}
    body = {"type": FLUX, "config": config}
    async with http.post(f"{prodia.v2_url}/job/async{query}", json=body, headers=headers) as resp:
        assert resp.status == 201, await resp.text()
        assert resp.content_type == "application/json"
        return await resp.json()


async def async_get(
    http: aiohttp.ClientSession, prodia: LocalProdia, job_id: str, what: str, headers: dict = BEARER
) -> tuple[aiohttp.ClientResponse, bytes]:
    async with http.get(f"{prodia.v2_url}/job/async/{job_id}/{what}", headers=headers) as resp:
        return resp, await resp.read()


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
        ("sd", {"prompt": "fox", "width": 127}, "width"),
        ("sd", {"prompt": "fox", "height": 1025}, "height"),
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


async def test_v1_models_list_is_the_sd_models(http, prodia):
    async with http.get(f"{prodia.v1_url}/models/list", headers=KEY) as resp:
        assert (resp.status, resp.content_type) == (200, "application/json")
        assert await resp.json() == prodia.sd_models
    assert "deliberate_v3.safetensors [afd9d2d4]" in prodia.sd_models


async def test_v1_sd_image_is_sized_by_width_and_height(http):
    async with LocalProdia() as prodia:
        image = await generate(http, prodia, {"prompt": "a red fox", "width": 128, "height": 192})
    assert image_size(image) == (128, 192)


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
    status, job = await v2_document(http, prodia, {"prompt": "fox", field: value})
    assert status == 400
    assert job["error"] == schema_error(f"/config/additionalProperties: additional properties '{field}' not allowed")
    assert job["id"]
    assert prodia.jobs == {}


async def test_v2_sdxl_accepts_sampler_and_cfg_scale(http, prodia):
    resp, _ = await v2_job(http, prodia, {"prompt": "fox", "sampler": "Euler", "cfg_scale": 5}, job_type=SDXL_V2)
    assert resp.status == 200


@pytest.mark.parametrize(
    ("config", "error"),
    [
        ({}, "/config/required: missing properties 'prompt'"),
        ({"prompt": "fox", "steps": 5}, "/config/steps/maximum: got 5, want 4"),
        ({"prompt": "fox", "steps": 1000}, "/config/steps/maximum: got 1,000, want 4"),
        ({"prompt": "fox", "steps": "4"}, "/config/steps/type: got string, want integer"),
        ({"prompt": "fox", "width": 255}, "/config/width/minimum: got 255, want 256"),
        ({"prompt": "fox", "height": 1921}, "/config/height/maximum: got 1,921, want 1,920"),
        ({"prompt": "fox", "seed": -1}, "/config/seed/minimum: got -1, want 0"),
        (
            {"prompt": "fox", "style_preset": "watercolour"},
            '/config/style_preset/enum: value must be one of "3d-model"',
        ),
    ],
)
async def test_v2_invalid_config_is_400_naming_the_field(http, prodia, config, error):
    status, job = await v2_document(http, prodia, config)
    assert status == 400
    assert job["error"].startswith(schema_error(error))
    assert job["id"]
    assert prodia.jobs == {}


@pytest.mark.parametrize("body", [{"config": {"prompt": "fox"}}, {"type": "inference.nope.v1", "config": {}}])
async def test_v2_missing_or_unknown_job_type_is_429_retry_after_1(http, prodia, body):
    async with http.post(f"{prodia.v2_url}/job", json=body, headers=MULTIPART) as resp:
        assert resp.status == 429
        assert resp.headers["Retry-After"] == "1"
        assert resp.content_type == "text/plain"
    assert prodia.jobs == {}


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer wrong"}, {"Authorization": "right"}])
async def test_v2_bad_token_is_401(http, headers):
    async with LocalProdia(api_key="right") as prodia:
        body = {"type": FLUX, "config": {"prompt": "fox"}}
        async with http.post(f"{prodia.v2_url}/job", json=body, headers=headers) as resp:
            assert resp.status == 401
            assert resp.content_type == "text/plain"
            assert await resp.text() == "token is invalid"


async def test_v2_multipart_request_is_accepted_like_json(http, prodia):
    body = {"type": FLUX, "config": {"prompt": "a red fox", "seed": 7, "width": 256, "height": 256}}
    async with http.post(f"{prodia.v2_url}/job", data=job_form(body), headers=BEARER) as resp:
        assert resp.status == 200
        assert resp.content_type == "image/jpeg"
        from_form = await resp.read()
    _, from_json = await v2_job(http, prodia, body["config"])
    assert from_form == from_json
    assert prodia.requests[0].headers["Content-Type"].startswith("multipart/form-data; boundary=")


async def test_v2_input_parts_reach_the_job(http, prodia):
    image = png_bytes()
    form = job_form({"type": IMG2IMG, "config": {"prompt": "make it blue"}}, ("fox.png", image))
    async with http.post(f"{prodia.v2_url}/job", data=form, headers=MULTIPART) as resp:
        assert resp.status == 200
        job = await job_part(resp)
    assert job["type"] == IMG2IMG
    assert prodia.jobs[job["id"]].extra["inputs"] == {"fox.png": image}


async def test_v2_img2img_without_input_parts_is_400(http, prodia):
    async with http.post(
        f"{prodia.v2_url}/job", data=job_form({"type": IMG2IMG, "config": {"prompt": "x"}}), headers=MULTIPART
    ) as resp:
        assert resp.status == 400
        job = await job_part(resp)
    assert job["error"] == "no input images: send them as multipart parts named input"
    assert prodia.jobs == {}


@pytest.mark.parametrize("job_type", sorted(JOB_TYPES))
async def test_v2_every_job_type_refuses_unknown_config_keys(http, prodia, job_type):
    # Only what each type takes: upscale and the classifier take no prompt.
    config = {"inference.upscale.v1": {"upscale": 2}, "inference.vit.img2label.v1": {}}.get(job_type, {"prompt": "x"})
    status, job = await v2_document(http, prodia, {**config, "bogus": 1}, job_type=job_type)
    assert status == 400
    assert job["error"] == schema_error("/config/additionalProperties: additional properties 'bogus' not allowed")
    assert prodia.jobs == {}


@pytest.mark.parametrize(
    ("job_type", "defaults"),
    [
        (FLUX, {"width": 1024, "height": 1024, "steps": 4, "progressive": False}),
        ("inference.flux-fast.schnell.txt2img.v1", {"resolution": "1024x1024", "steps": 4, "progressive": False}),
    ],
)
async def test_v2_defaults_are_filled_in_and_echoed(http, prodia, job_type, defaults):
    status, job = await v2_document(http, prodia, {"prompt": "a red fox"}, job_type=job_type)
    assert status == 200
    seed = job["config"].pop("seed")
    assert job["config"] == {"prompt": "a red fox", **defaults}
    assert prodia.jobs[job["id"]].params["seed"] == seed


async def test_v2_price_true_adds_the_price(http, prodia):
    status, job = await v2_document(http, prodia, {"prompt": "fox"}, params={"price": "true"})
    assert status == 200
    assert set(job["price"]) == {"product", "dollars"}
    assert isinstance(job["price"]["product"], str)
    assert job["price"]["dollars"] == 0.0025


async def test_v2_without_price_true_there_is_no_price(http, prodia):
    status, job = await v2_document(http, prodia, {"prompt": "fox"})
    assert status == 200
    assert "price" not in job


async def test_v2_job_types_can_be_changed_per_test(http, prodia):
    assert (await v2_job(http, prodia, {"prompt": "fox", "steps": 3}))[0].status == 200
    flux = prodia.job_types[FLUX]
    steps = dataclasses.replace(flux.properties["steps"], maximum=2)
    prodia.job_types[FLUX] = dataclasses.replace(flux, properties={**flux.properties, "steps": steps})
    status, job = await v2_document(http, prodia, {"prompt": "fox", "steps": 3})
    assert status == 400
    assert job["error"] == schema_error("/config/steps/maximum: got 3, want 2")
    assert JOB_TYPES[FLUX].properties["steps"].maximum == 4  # the module's table is untouched


async def test_v2_dropped_job_type_is_429(http, prodia):
    del prodia.job_types[FLUX]
    resp, _ = await v2_job(http, prodia, {"prompt": "fox"})
    assert resp.status == 429


# -- v2 async ----------------------------------------------------------------------------------


async def test_v2_async_submit_is_201_json_processing(http, prodia):
    job = await submit_async(http, prodia, {"prompt": "a red fox"})
    assert job["id"] in prodia.jobs
    assert job["type"] == FLUX
    assert job["state"] == {"current": "processing"}


async def test_v2_async_state_goes_processing_then_processed(http):
    async with LocalProdia(job_duration=10, image_scale=0.125) as prodia:
        job_id = (await submit_async(http, prodia, {"prompt": "a red fox"}))["id"]
        resp, body = await async_get(http, prodia, job_id, "job.state.current")
        assert (resp.status, resp.content_type, body) == (200, "text/plain", b"processing")
        age(prodia, job_id, 10)
        resp, body = await async_get(http, prodia, job_id, "job.state.current")
        assert (resp.status, resp.content_type, body) == (200, "text/plain", b"processed")


async def test_v2_async_job_json_has_config_metrics_and_price(http, prodia):
    job_id = (await submit_async(http, prodia, {"prompt": "a red fox", "steps": 2}, query="?price=true"))["id"]
    resp, body = await async_get(http, prodia, job_id, "job.json")
    assert (resp.status, resp.content_type) == (200, "application/json")
    job = json.loads(body)
    assert job["id"] == job_id
    assert job["state"] == {"current": "processed"}
    assert job["config"] | {"prompt": "a red fox", "steps": 2} == job["config"]
    assert set(job["metrics"]) == {"elapsed", "ips"}
    assert job["price"]["dollars"] == 0.0025


async def test_v2_async_job_json_has_no_price_unless_asked_at_submit(http, prodia):
    job_id = (await submit_async(http, prodia, {"prompt": "a red fox"}))["id"]
    _, body = await async_get(http, prodia, job_id, "job.json")
    assert "price" not in json.loads(body)


@pytest.mark.parametrize(("accept", "name"), [(None, "output.jpg"), ("image/png", "output.png")])
async def test_v2_async_output_lists_the_file(http, prodia, accept, name):
    job_id = (await submit_async(http, prodia, {"prompt": "a red fox"}, accept))["id"]
    resp, body = await async_get(http, prodia, job_id, "output")
    assert (resp.status, resp.content_type) == (200, "application/json")
    assert json.loads(body) == [name]


async def test_v2_async_output_serves_the_image_at_the_config_size(http):
    async with LocalProdia() as prodia:
        job_id = (await submit_async(http, prodia, {"prompt": "a red fox", "width": 256, "height": 320}))["id"]
        resp, body = await async_get(http, prodia, job_id, "output/output.jpg")
    assert (resp.status, resp.content_type) == (200, "image/jpeg")
    assert image_size(body, "JPEG") == (256, 320)


@pytest.mark.parametrize("what", ASYNC_GETS)
async def test_v2_async_unknown_id_is_404(http, prodia, what):
    resp, _ = await async_get(http, prodia, "no-such-job", what)
    assert resp.status == 404


@pytest.mark.parametrize("what", ASYNC_GETS)
async def test_v2_async_sync_job_id_is_404(http, prodia, what):
    status, job = await v2_document(http, prodia, {"prompt": "fox"})
    assert status == 200
    resp, _ = await async_get(http, prodia, job["id"], what)
    assert resp.status == 404


async def test_v2_async_bad_token_is_401(http):
    async with LocalProdia(api_key="right") as prodia:
        body = {"type": FLUX, "config": {"prompt": "fox"}}
        wrong = {"Authorization": "Bearer wrong"}
        async with http.post(f"{prodia.v2_url}/job/async", json=body, headers=wrong) as resp:
            assert (resp.status, resp.content_type, await resp.text()) == (401, "text/plain", "token is invalid")
        async with http.post(
            f"{prodia.v2_url}/job/async", json=body, headers={"Authorization": "Bearer right"}
        ) as resp:
            job_id = (await resp.json())["id"]
        for what in ASYNC_GETS:
            resp, text = await async_get(http, prodia, job_id, what, headers=wrong)
            assert (resp.status, resp.content_type, text) == (401, "text/plain", b"token is invalid")


async def test_v2_job_type_without_async_is_400_on_async_only(http, prodia):
    prodia.job_types[FLUX] = dataclasses.replace(prodia.job_types[FLUX], permits_async=False)
    status, job = await v2_document(http, prodia, {"prompt": "fox"}, path="/job/async")
    assert status == 400
    assert job["error"] == "job type doesn't support async"
    assert prodia.jobs == {}
    assert (await v2_job(http, prodia, {"prompt": "fox"}))[0].status == 200


async def test_v2_async_job_fails_fault(http, prodia):
    prodia.add_fault(Fault("job_fails", path="/v2/job/async"))
    job_id = (await submit_async(http, prodia, {"prompt": "fox"}))["id"]
    _, state = await async_get(http, prodia, job_id, "job.state.current")
    assert state == b"failed"
    _, body = await async_get(http, prodia, job_id, "job.json")
    job = json.loads(body)
    assert job["state"] == {"current": "failed"}
    assert job["error"] == "generation failed"


@pytest.mark.parametrize("what", ASYNC_GETS)
async def test_v2_async_job_expires_300_s_after_it_finished(http, prodia, what):
    job_id = (await submit_async(http, prodia, {"prompt": "fox"}))["id"]
    age(prodia, job_id, 299)
    assert (await async_get(http, prodia, job_id, what))[0].status == 200
    age(prodia, job_id, 2)
    assert (await async_get(http, prodia, job_id, what))[0].status == 404


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
    status, job = await v2_document(http, prodia, {"prompt": "fox"})
    assert status == 500
    (job_id,) = prodia.jobs
    assert job["id"] == job_id
    assert job["state"] == {"current": "failed"}
    assert job["error"] == "generation failed"


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
    with Image.open(io.BytesIO(body)) as image:
        image.verify()  # a whole PNG, every chunk's checksum right: only its size is wrong with it
    assert prodia.streamed == [300_000]  # all of it was read


async def test_not_image_fault(http, prodia):
    resp, body = await image_response(http, prodia, Fault("not_image"))
    assert resp.content_type == "image/png"
    assert body == b"<html>not an image</html>"


async def test_redirect_fault(http, prodia):
    resp, _ = await image_response(http, prodia, Fault("redirect", location="http://127.0.0.2:9/elsewhere"))
    assert resp.status == 302
    assert resp.headers["Location"] == "http://127.0.0.2:9/elsewhere"


async def test_a_status_fault_with_a_location_is_a_redirect(http, prodia):
    prodia.add_fault(Fault("status", status=307, location="http://127.0.0.2:9/v1/sd/generate"))
    async with http.post(f"{prodia.v1_url}/sd/generate", json={"prompt": "fox"}, allow_redirects=False) as resp:
        assert (resp.status, resp.headers["Location"]) == (307, "http://127.0.0.2:9/v1/sd/generate")


@pytest.mark.parametrize(("fault", "length"), [(Fault("image_huge", size=100_000), 100_000), (Fault("not_image"), 25)])
async def test_image_faults_apply_to_the_v2_output(http, prodia, fault, length):
    prodia.add_fault(fault)
    resp, body = await v2_job(http, prodia, {"prompt": "fox"}, "image/png")
    assert resp.status == 200
    assert len(body) == length


async def test_status_fault_multipart_shape_answers_a_job_error(http, prodia):
    prodia.add_fault(Fault("status", status=400, message="bad config", shape="multipart"))
    status, job = await v2_document(http, prodia, {"prompt": "fox"})
    assert status == 400
    assert job["error"] == "bad config"
    assert job["id"]


async def test_status_fault_text_shape_answers_plain_text(http, prodia):
    prodia.add_fault(Fault("status", status=401, message="token is invalid", shape="text"))
    resp, body = await v2_job(http, prodia, {"prompt": "fox"})
    assert (resp.status, resp.content_type, body) == (401, "text/plain", b"token is invalid")


def test_unknown_fault_kind_is_refused():
    with pytest.raises(ValueError, match="unknown fault kind"):
        Fault("explode")


def test_unknown_fault_shape_is_refused():
    with pytest.raises(ValueError, match="unknown fault shape"):
        Fault("status", shape="xml")


async def test_control_api_refuses_an_unknown_fault_shape(http, prodia):
    async with http.post(f"{prodia.url}/_control/faults", json={"kind": "status", "shape": "xml"}) as resp:
        assert resp.status == 400
        assert "unknown fault shape" in (await resp.json())["message"]
    assert prodia.faults == []


# -- control API, recording, proxy -------------------------------------------------------------


@pytest.mark.parametrize(
    "host",
    [
        "rebound.example:{port}",  # a page's own name, re-pointed at 127.0.0.1 (DNS rebinding)
        "rebound.example",
        "127.0.0.1:1",  # another port: another program's name for it
        "127.0.0.2:{port}",
        "localhost.rebound.example:{port}",
        "127.0.0.1:{port}@rebound.example",
        "",
    ],
)
async def test_control_api_answers_only_requests_addressed_to_a_loopback_name(http, prodia, host):
    prodia.add_fault(Fault("status", status=402))
    headers = {"Host": host.format(port=prodia.port)}
    for method, path in [("POST", "reset"), ("DELETE", "faults"), ("GET", "jobs"), ("POST", "finish")]:
        async with http.request(method, f"{prodia.url}/_control/{path}", headers=headers) as resp:
            assert resp.status == 403, (method, path)
    async with http.post(f"{prodia.url}/_control/faults", json={"kind": "status"}, headers=headers) as resp:
        assert resp.status == 403
    assert [fault.status for fault in prodia.faults] == [402]  # nothing changed


@pytest.mark.parametrize("name", ["127.0.0.1", "localhost", "[::1]"])
async def test_control_api_answers_loopback_names_with_the_servers_port(http, prodia, name):
    prodia.add_fault(Fault("status", status=402))
    async with http.delete(f"{prodia.url}/_control/faults", headers={"Host": f"{name}:{prodia.port}"}) as resp:
        assert resp.status == 204
    assert prodia.faults == []


@pytest.mark.parametrize(
    "fields",
    [
        {"kind": "image_huge", "size": 128 * 1024 * 1024 + 1},  # would be allocated in memory
        {"kind": "image_huge", "size": -1},
        {"kind": "image_huge", "size": 1.5},
        {"kind": "slow", "delay": 3601},
        {"kind": "slow", "delay": -1},
        {"kind": "status", "status": 429, "retry_after": 1e9},
        {"kind": "status", "status": 99},
        {"kind": "status", "status": 600},
        {"kind": "status", "times": 0},
        {"kind": "status", "times": 1_000_001},
        {"kind": "status", "times": True},
    ],
)
async def test_control_api_refuses_fault_numbers_past_their_caps(http, prodia, fields):
    async with http.post(f"{prodia.url}/_control/faults", json=fields) as resp:
        assert resp.status == 400
        assert "must be" in (await resp.json())["message"]
    assert prodia.faults == []


async def test_control_api_accepts_fault_numbers_at_their_caps(http, prodia):
    fields = {"kind": "image_huge", "size": 128 * 1024 * 1024, "delay": 3600, "retry_after": 3600, "times": 10**6}
    async with http.post(f"{prodia.url}/_control/faults", json=fields) as resp:
        assert resp.status == 201
    assert len(prodia.faults) == 1


@pytest.mark.parametrize("spread", [3601, -1, "1"])
async def test_control_finish_refuses_a_spread_past_its_cap(http, prodia, spread):
    async with http.post(f"{prodia.url}/_control/finish", json={"spread": spread}) as resp:
        assert resp.status == 400


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
    assert listed["finished_wall"] == listed["created_wall"] <= listed["found_wall"]  # found by that one poll
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


async def test_control_finish_can_spread_the_ends_over_the_next_seconds(http):
    async with LocalProdia(job_duration=3600, image_scale=0.125) as prodia:
        held = [(await submit(http, prodia, {"prompt": f"fox {n}"}))["job"] for n in range(20)]
        async with http.post(f"{prodia.url}/_control/finish", json={"spread": 30, "seed": 1}) as resp:
            assert await resp.json() == {"finished": 20}
        remaining = [prodia.jobs[job].created_at + prodia.jobs[job].duration - time.monotonic() for job in held]
    assert all(-1 < left < 30 for left in remaining) and max(remaining) - min(remaining) > 10


async def test_held_jobs_run_until_released_in_every_api(http):
    """The gate a test uses to have jobs running at a moment, whatever the machine's speed."""
    async with LocalProdia(image_scale=0.125) as prodia:
        prodia.hold()
        v1 = (await submit(http, prodia, {"prompt": "v1"}))["job"]
        v2_async = (await submit_async(http, prodia, {"prompt": "v2 async"}))["id"]
        v2_sync = asyncio.create_task(v2_job(http, prodia, {"prompt": "v2 sync"}))
        async with asyncio.timeout(60):  # a hang guard, not a deadline
            held = await prodia.wait_held(3)
        assert [job.params["prompt"] for job in held] == ["v1", "v2 async", "v2 sync"]
        assert (await poll(http, prodia, v1))["status"] in ("queued", "generating")
        assert (await async_get(http, prodia, v2_async, "job.state.current"))[1] == b"processing"
        assert not v2_sync.done()  # its request stays open
        assert prodia.release() == 3
        assert prodia.held == []
        assert (await poll(http, prodia, v1))["status"] == "succeeded"
        assert (await async_get(http, prodia, v2_async, "job.state.current"))[1] == b"processed"
        response, image = await v2_sync
        assert response.status == 200 and image_size(image, "JPEG")
        later = (await submit(http, prodia, {"prompt": "later"}))["job"]  # the gate is open now
        assert (await poll(http, prodia, later))["status"] == "succeeded"


async def test_the_gate_can_hold_only_the_next_jobs(http):
    async with LocalProdia(image_scale=0.125) as prodia:
        prodia.hold(1)
        first, second = [(await submit(http, prodia, {"prompt": f"fox {n}"}))["job"] for n in range(2)]
        assert [job.id for job in prodia.held] == [first]
        assert (await poll(http, prodia, second))["status"] == "succeeded"
        assert (await poll(http, prodia, first))["status"] in ("queued", "generating")
        assert prodia.release() == 1
        assert (await poll(http, prodia, first))["status"] == "succeeded"


@pytest.mark.parametrize("fmt", ["jpeg", "mix"])
async def test_v1_results_can_be_jpeg_or_a_mix(http, fmt):
    async with LocalProdia(image_format=fmt, image_scale=0.125) as prodia:
        answers = [
            await poll(http, prodia, (await submit(http, prodia, {"prompt": f"fox {n}"}))["job"]) for n in range(16)
        ]
        formats = set()
        for answer in answers:
            async with http.get(answer["imageUrl"]) as resp:
                image = Image.open(io.BytesIO(await resp.read()))
                assert resp.content_type == f"image/{image.format.lower()}"
                assert answer["imageUrl"].endswith(".jpg" if image.format == "JPEG" else ".png")
                formats.add(image.format)
    assert formats == ({"JPEG"} if fmt == "jpeg" else {"JPEG", "PNG"})


async def test_grain_makes_images_weigh_what_generated_ones_do(http):
    async with LocalProdia(image_grain=0.1) as prodia:
        png = await generate(http, prodia, {"prompt": "fox"}, "sdxl")
    assert Image.open(io.BytesIO(png)).size == (1024, 1024)
    assert len(png) > 1_000_000


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
        sys.executable, "-m", "devtools.local_prodia", "--port", "0", cwd=REPO_ROOT, stdout=asyncio.subprocess.PIPE
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


async def labels_of(http, prodia, image: bytes) -> tuple[dict, dict]:
    """Run the NSFW classifier job on `image`: (its job JSON, its output part as JSON)."""
    body = {"type": "inference.vit.img2label.v1", "config": {}}
    async with http.post(f"{prodia.v2_url}/job", data=job_form(body, ("input.png", image)), headers=MULTIPART) as resp:
        assert resp.status == 200, await resp.text()
        reader = aiohttp.MultipartReader.from_response(resp)
        job = await (await reader.next()).json()
        output = await reader.next()
        assert output.headers["Content-Type"] == "application/json"
        return job, await output.json()


async def test_v2_classifier_labels_images_by_the_marker_in_their_prompt(http, prodia):
    async def made(prompt: str) -> bytes:
        async with http.post(
            f"{prodia.v2_url}/job", json={"type": FLUX, "config": {"prompt": prompt}}, headers=BEARER
        ) as resp:
            return await resp.read()

    marked, plain = await made("a beach, label-high"), await made("a beach")
    assert (await labels_of(http, prodia, marked))[1] == {"label": "high"}
    assert (await labels_of(http, prodia, plain))[1] == {"label": "neutral"}
    job, _ = await labels_of(http, prodia, png_bytes())  # an image this server never made
    assert job["type"] == "inference.vit.img2label.v1" and job["state"]["current"] == "completed"
