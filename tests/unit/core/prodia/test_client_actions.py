"""Actions on a result (a variation, an upscale) through both clients, against the local server over real HTTP:
what crossed the wire, what came back, and the errors of the one job path they share with generation."""

from __future__ import annotations

import base64
import io
import json
import random

import aiohttp
import pytest
from PIL import Image

from bot.core.catalog import DEFAULT_STRENGTH, Catalog, PreparedJob
from bot.core.errors import BadResponse, InvalidRequest, JobFailed, ServerError
from bot.core.model_lists import V2_MODEL_NAMES
from bot.core.prodia import Sends
from bot.core.request import GenerationRequest
from devtools.local_prodia import Fault, LocalProdia, RecordedRequest

from .test_clients import KEY, make_client

RED, BLUE = (200, 40, 40), (40, 40, 200)
SD_MODEL = "absolutereality_v181.safetensors [3d9d4d2b]"


@pytest.fixture
async def session():
    async with aiohttp.ClientSession() as session:
        yield session


def image_bytes(size: tuple[int, int] = (64, 48), colour: tuple[int, int, int] = RED, fmt: str = "PNG") -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, colour).save(out, fmt)
    return out.getvalue()


def noise_png(size: tuple[int, int]) -> bytes:
    """A PNG that hardly compresses: its 2x upscale weighs about four times as much."""
    out = io.BytesIO()
    Image.frombytes("RGB", size, random.Random(7).randbytes(size[0] * size[1] * 3)).save(out, "PNG")
    return out.getvalue()


def request(**params: object) -> GenerationRequest:
    return GenerationRequest(**{"prompt": "a lighthouse at dusk", "seed": 42, **params})  # type: ignore[arg-type]


def variation(api: str, image: bytes, **params: object) -> PreparedJob:
    return Catalog.for_api(api, V2_MODEL_NAMES).prepare_variation(request(**params), image)


def upscale(api: str, image: bytes) -> PreparedJob:
    return Catalog.for_api(api, V2_MODEL_NAMES).prepare_upscale(request(), image)


def size_of(data: bytes) -> tuple[int, int]:
    with Image.open(io.BytesIO(data)) as image:
        return image.size


def corner(data: bytes) -> tuple[int, ...]:
    """The top-left pixel (the banner is at the bottom)."""
    with Image.open(io.BytesIO(data)) as image:
        return tuple(image.convert("RGB").getpixel((0, 0)))


def posts(server: LocalProdia, path: str) -> list[RecordedRequest]:
    return [r for r in server.requests if r.method == "POST" and r.path == path]


def job_part(recorded: RecordedRequest) -> dict:
    part = recorded.form_parts()["job"]
    assert (part.get_content_type(), part.get_filename()) == ("application/json", "job.json")
    return json.loads(part.get_content())


# -- v1 --------------------------------------------------------------------------------------------


async def test_v1_variation_posts_the_image_and_strength_to_sd_transform(prodia, session):
    image = image_bytes()
    job = variation("v1", image, sampler="DDIM", steps=12, cfg=6.5, negative_prompt="blurry", aspect_ratio="portrait")
    result = await make_client(session, prodia, "v1").generate(job)

    [submit] = posts(prodia, "/v1/sd/transform")
    assert submit.headers["X-Prodia-Key"] == KEY
    assert submit.json == {
        "prompt": "a lighthouse at dusk",
        "model": SD_MODEL,
        "steps": 12,
        "cfg_scale": 6.5,
        "seed": 42,
        "sampler": "DDIM",
        "negative_prompt": "blurry",
        "imageData": base64.b64encode(image).decode(),  # plain base64, no data: prefix
        "denoising_strength": DEFAULT_STRENGTH,
    }  # no aspect_ratio, width or height: the result takes the input's size
    assert result.image == prodia.jobs[result.job_id].image  # polled and downloaded as a generation is
    assert (result.info.width, result.info.height) == (64, 48)
    assert result.seed == 42


async def test_v1_variation_is_made_from_the_input(prodia, session):
    client = make_client(session, prodia, "v1")
    red = await client.generate(variation("v1", image_bytes(colour=RED)))
    blue = await client.generate(variation("v1", image_bytes(colour=BLUE)))
    assert corner(red.image)[0] - corner(blue.image)[0] > 60  # same prompt and seed: only the input differs
    assert corner(blue.image)[2] - corner(red.image)[2] > 60


async def test_v1_sdxl_variation_goes_to_sdxl_transform_without_a_size(prodia, session):
    await make_client(session, prodia, "v1").generate(variation("v1", image_bytes(), model="juggernautXL_v45"))
    [submit] = posts(prodia, "/v1/sdxl/transform")
    assert submit.json["model"] == "juggernautXL_v45.safetensors [e75f5471]"
    assert not {"width", "height", "aspect_ratio"} & set(submit.json)


async def test_v1_upscale_posts_the_image_with_resize_2_and_doubles_its_size(prodia, session):
    image = image_bytes((40, 30))
    result = await make_client(session, prodia, "v1").generate(upscale("v1", image))
    [submit] = posts(prodia, "/v1/upscale")
    assert submit.json == {"imageData": base64.b64encode(image).decode(), "resize": 2}
    assert any(r.path == f"/v1/job/{result.job_id}" for r in prodia.requests)
    assert (result.info.width, result.info.height) == (80, 60)
    assert size_of(result.image) == (80, 60)


async def test_v1_image_prodia_cannot_read_is_an_invalid_request_sent_once(prodia, session):
    with pytest.raises(InvalidRequest) as caught:
        await make_client(session, prodia, "v1").generate(upscale("v1", b"GIF89a not really"))
    assert "imageData" in caught.value.params["reason"] and "decodable" in caught.value.params["reason"]
    assert len(posts(prodia, "/v1/upscale")) == 1
    assert prodia.jobs == {}


async def test_v1_upscale_over_the_size_cap_is_refused(prodia, session):
    image = noise_png((160, 160))  # about 77 KB; its upscale about 300 KB
    client = make_client(session, prodia, "v1", MAX_IMAGE_BYTES="200000")
    with pytest.raises(BadResponse, match="cap"):
        await client.generate(upscale("v1", image))


async def test_v1_actions_meet_the_same_faults_as_generation(prodia, session):
    prodia.add_fault(Fault("status", status=502, times=1, path="/v1/sd/transform"))
    prodia.add_fault(Fault("job_fails", path="/v1/upscale"))
    client = make_client(session, prodia, "v1")
    sends = Sends()
    assert (await client.generate(variation("v1", image_bytes()), sends=sends)).image
    assert (len(posts(prodia, "/v1/sd/transform")), sends.total) == (2, 2)  # retried, each send counted
    with pytest.raises(JobFailed):
        await client.generate(upscale("v1", image_bytes()))


# -- v2 --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("mode", "path"), [("sync", "/v2/job"), ("async", "/v2/job/async")])
async def test_v2_variation_sends_the_image_as_an_input_part_of_the_img2img_type(prodia, session, mode, path):
    image = image_bytes()
    job = variation("v2", image, model="sdxl", negative_prompt="blurry", steps=12)
    result = await make_client(session, prodia, "v2", PRODIA_V2_MODE=mode).generate(job)

    [call] = posts(prodia, path)
    assert call.headers["Authorization"] == f"Bearer {KEY}"
    assert call.query == {"price": "true"}
    parts = call.form_parts()
    assert list(parts) == ["input", "job"]  # the official client's order
    assert (parts["input"].get_filename(), parts["input"].get_content_type()) == ("input.png", "image/png")
    assert parts["input"].get_content() == image
    assert job_part(call) == {
        "type": "inference.sdxl.img2img.v1",
        "config": {
            "prompt": "a lighthouse at dusk",
            "seed": 42,
            "steps": 12,
            "negative_prompt": "blurry",
            "strength": DEFAULT_STRENGTH,
        },
    }
    assert (result.info.width, result.info.height) == (64, 48)
    assert result.image == prodia.jobs[result.job_id].image


async def test_v2_variation_is_made_from_the_input(prodia, session):
    client = make_client(session, prodia, "v2")
    red = await client.generate(variation("v2", image_bytes(colour=RED), model="sd15"))
    blue = await client.generate(variation("v2", image_bytes(colour=BLUE), model="sd15"))
    assert corner(red.image)[0] - corner(blue.image)[0] > 60
    assert corner(blue.image)[2] - corner(red.image)[2] > 60


@pytest.mark.parametrize(("mode", "path"), [("sync", "/v2/job"), ("async", "/v2/job/async")])
async def test_v2_upscale_names_its_input_and_doubles_its_size(prodia, session, mode, path):
    image = image_bytes((40, 30), fmt="JPEG")
    result = await make_client(session, prodia, "v2", PRODIA_V2_MODE=mode).generate(upscale("v2", image))
    [call] = posts(prodia, path)
    parts = call.form_parts()
    assert (parts["input"].get_filename(), parts["input"].get_content_type()) == ("input.jpg", "image/jpeg")
    assert parts["input"].get_content() == image
    assert job_part(call) == {"type": "inference.upscale.v1", "config": {"image": "input.jpg", "upscale": 2}}
    assert size_of(result.image) == (80, 60)


async def test_v2_image_prodia_cannot_read_is_an_invalid_request_sent_once(prodia, session):
    with pytest.raises(InvalidRequest) as caught:
        await make_client(session, prodia, "v2").generate(variation("v2", b"not an image", model="sdxl"))
    assert "not a decodable" in caught.value.params["reason"]
    assert len(posts(prodia, "/v2/job")) == 1


async def test_v2_upscale_over_the_size_cap_is_refused(prodia, session):
    image = noise_png((256, 256))  # about 197 KB; its upscale about 790 KB, over the cap and the framing allowance
    client = make_client(session, prodia, "v2", MAX_IMAGE_BYTES="300000")
    with pytest.raises(BadResponse, match="cap"):
        await client.generate(upscale("v2", image))


async def test_v2_action_sent_again_after_a_429_carries_the_same_parts(prodia, session):
    prodia.add_fault(Fault("status", status=429, retry_after=0, times=1, path="/v2/job"))
    image = image_bytes()
    result = await make_client(session, prodia, "v2").generate(upscale("v2", image))
    first, second = posts(prodia, "/v2/job")
    assert first.form_parts()["input"].get_content() == second.form_parts()["input"].get_content() == image
    assert job_part(first) == job_part(second)
    assert size_of(result.image) == (128, 96)


async def test_v2_action_that_may_have_run_is_sent_again_only_once(prodia, session):
    prodia.add_fault(Fault("status", status=502, times=None, path="/v2/job"))
    with pytest.raises(ServerError):
        await make_client(session, prodia, "v2").generate(upscale("v2", image_bytes()))
    assert len(posts(prodia, "/v2/job")) == 2
