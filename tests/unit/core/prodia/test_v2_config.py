"""What v2 sends of a request (`ProdiaV2.body`) beyond test_clients.py: the style preset where the model's job type
takes one, and what a synchronous job tells the caller while it runs."""

from __future__ import annotations

import aiohttp
import pytest

from bot.core.prodia import Progress

from .test_clients import make_client, prepare


@pytest.fixture
async def session():
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.mark.parametrize(("model", "sent"), [("flux-fast", "anime"), ("sdxl", "anime"), ("flux-dev", None)])
async def test_a_style_goes_as_the_style_preset_where_the_model_takes_one(prodia, session, model, sent):
    await make_client(session, prodia, "v2").generate(prepare("v2", model=model, style="anime"))
    assert prodia.requests[-1].json["config"].get("style_preset") == sent


async def test_no_style_sends_no_style_preset(prodia, session):
    await make_client(session, prodia, "v2").generate(prepare("v2", model="flux-fast"))
    assert "style_preset" not in prodia.requests[-1].json["config"]


async def test_a_synchronous_job_is_told_as_generating(prodia, session):
    steps: list[Progress] = []

    async def on_progress(step: Progress) -> None:
        steps.append(step)

    await make_client(session, prodia, "v2", PRODIA_V2_MODE="sync").generate(prepare("v2"), on_progress)
    assert [step.state for step in steps] == ["generating"]
