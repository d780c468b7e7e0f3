"""What v1 sends of a style (`ProdiaV1.body`): a style preset on the generate endpoints, where v1 documents it, and
not on a variation's transform. The rest of v1's bodies is in test_clients.py."""

from __future__ import annotations

import aiohttp
import pytest

from bot.core.catalog import Catalog
from bot.core.model_lists import V2_MODEL_NAMES
from bot.core.request import GenerationRequest

from .test_client_actions import image_bytes
from .test_clients import make_client, prepare


@pytest.fixture
async def session():
    async with aiohttp.ClientSession() as session:
        yield session


async def test_a_style_goes_with_a_v1_generation(prodia, session):
    await make_client(session, prodia, "v1").generate(prepare("v1", style="anime"))
    assert prodia.requests[0].json["style_preset"] == "anime"


async def test_a_style_does_not_go_with_a_v1_variation(prodia, session):
    catalog = Catalog.for_api("v1", V2_MODEL_NAMES)
    job = catalog.prepare_variation(GenerationRequest(prompt="a fox", style="anime", seed=1), image_bytes())
    await make_client(session, prodia, "v1").generate(job)
    assert "style_preset" not in prodia.requests[0].json
