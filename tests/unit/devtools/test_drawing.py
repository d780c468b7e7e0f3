"""The local server's placeholder images say what they answer: the prompt and the seed, on a banner."""

from __future__ import annotations

import io

from PIL import Image

from devtools.local_prodia.drawing import caption, draw


def banner_pixels(data: bytes) -> list[tuple[int, int, int]]:
    """Every pixel of the bottom 40 rows."""
    with Image.open(io.BytesIO(data)) as image:
        rgb = image.convert("RGB")
        width, height = rgb.size
        return [rgb.getpixel((x, y)) for x in range(width) for y in range(height - 40, height)]


def white(pixels: list[tuple[int, int, int]]) -> int:
    return sum(min(p) > 200 for p in pixels)


def test_the_caption_names_the_prompt_seed_and_model():
    assert caption({"prompt": "a red fox", "seed": 42, "model": "sdxl"}) == "a red fox\nseed 42  sdxl"


def test_the_prompt_is_written_on_the_image_in_white_on_black():
    params = {"prompt": "a red fox", "seed": 42, "model": "sdxl"}
    pixels = banner_pixels(draw(params, 512, 512, "png"))
    assert (0, 0, 0) in pixels and white(pixels) > 100  # the banner and its text
    other = draw({**params, "prompt": "a blue whale"}, 512, 512, "png")
    assert banner_pixels(other) != pixels


def test_tiny_images_carry_no_unreadable_banner():
    pixels = banner_pixels(draw({"prompt": "a red fox", "seed": 1}, 64, 64, "png"))
    assert white(pixels) == 0
