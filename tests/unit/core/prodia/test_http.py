"""The HTTP layer both clients share (`bot.core.prodia.http`): Prodia's reasons as users read them, cut clean, and
multipart answers read whole however many chunks they come in."""

from __future__ import annotations

import aiohttp
import pytest

from bot.core.prodia.http import clean_reason

from .test_client_actions import noise_png, size_of, upscale
from .test_clients import make_client


@pytest.fixture
async def session():
    async with aiohttp.ClientSession() as session:
        yield session


def test_a_reason_within_the_limit_is_kept_on_one_line():
    assert clean_reason("steps\tmust be\r\nat most\x0050 ") == "steps must be at most 50"
    assert clean_reason("x" * 300) == "x" * 300  # exactly the limit: whole


def test_a_long_reason_is_cut_at_a_word_within_the_limit():
    words = "steps must be at most fifty, " * 20
    cut = clean_reason(words, 60)
    assert len(cut) <= 60 and cut.endswith("…")
    assert cut == "steps must be at most fifty, steps must be at most fifty…"  # no trailing comma, no half word


def test_a_long_reason_without_a_late_space_is_cut_at_the_limit():
    assert clean_reason("x" * 301) == "x" * 299 + "…"
    assert clean_reason("a " + "x" * 100, 60) == "a " + "x" * 57 + "…"  # its only space is early: not cut there


async def test_a_multipart_image_of_many_chunks_comes_back_whole(prodia, session):
    image = noise_png((160, 160))  # its upscale about 300 KB: several of the reader's 64 KiB chunks
    result = await make_client(session, prodia, "v2").generate(upscale("v2", image))
    assert result.image == prodia.jobs[result.job_id].image
    assert size_of(result.image) == (320, 320)


def test_a_space_in_the_first_half_is_not_a_cut_point():
    text = "a" * 40 + " " + "b" * 100  # its only space at 40 of a 100 limit: cutting there would lose too much
    assert clean_reason(text, 100) == "a" * 40 + " " + "b" * 58 + "…"


def test_a_cut_drops_trailing_punctuation_only():
    text = "x" * 60 + "X, " + "y" * 60
    assert clean_reason(text, 100) == "x" * 60 + "X…"
