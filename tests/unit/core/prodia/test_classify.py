"""v2's NSFW classifier job (`ProdiaV2.classify`) against the local server over real HTTP: what crosses the wire
(the image as the job's input part, the job's type) and what comes back (the label, the price)."""

from __future__ import annotations

import hashlib
import io
import json

import aiohttp
import pytest
from PIL import Image

from bot.core.content import CLASSIFIER_JOB_TYPE

from .test_clients import make_client


@pytest.fixture
async def session():
    async with aiohttp.ClientSession() as session:
        yield session


def image_bytes(fmt: str) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (32, 24), (200, 40, 40)).save(out, fmt)
    return out.getvalue()


@pytest.mark.parametrize(("fmt", "filename", "content_type"), [("PNG", "input.png", "image/png"),
                                                               ("JPEG", "input.jpg", "image/jpeg")])  # fmt: skip
async def test_the_classifier_gets_the_image_as_its_input_part_and_its_label_comes_back(
    prodia, session, fmt, filename, content_type
):
    image = image_bytes(fmt)
    prodia.labels[hashlib.sha256(image).hexdigest()] = "high"
    label, price = await make_client(session, prodia, "v2").classify(image)

    assert label == "high"
    assert price is not None and price > 0
    (sent,) = [r for r in prodia.requests if r.method == "POST"]
    assert (sent.path, sent.query) == ("/v2/job", {"price": "true"})
    assert sent.headers["Accept"] == "multipart/form-data; application/json"
    parts = sent.form_parts()
    assert (parts["input"].get_content_type(), parts["input"].get_filename()) == (content_type, filename)
    assert parts["input"].get_payload(decode=True) == image
    assert parts["job"].get_content_type() == "application/json"
    assert json.loads(parts["job"].get_payload(decode=True)) == {"type": CLASSIFIER_JOB_TYPE, "config": {}}


async def test_an_unlabelled_image_is_neutral(prodia, session):
    label, _ = await make_client(session, prodia, "v2").classify(image_bytes("PNG"))
    assert label == "neutral"
