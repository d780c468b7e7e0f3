"""The local server's images: real, deterministic bytes from prompt, seed, model and size.

They are placeholders (a gradient and four shapes, with the prompt and seed written on a banner), not
pictures of the prompt: the point is real image bytes that change with every parameter, so tests can tell
one result from another, and a person trying the bot sees that the image answers the request. Flat shapes compress
far better than photographs; `grain` adds seeded noise so the bytes weigh what a generated image does
(at 0.1, 1024x1024: PNG about 1.5 MB, JPEG about 120 KB).

Actions on an image are derived from it, so a test can tell the input was used: a variation is the input blended
with the placeholder by its strength (0: the input, 1: the placeholder), an upscale the input resized (Lanczos)
to exactly its factor times the input's pixel size."""

from __future__ import annotations

import functools
import hashlib
import io
import json
import random
import textwrap
import zlib
from typing import Any

from PIL import Image, ImageDraw, ImageFilter, ImageFont

IMAGE_TYPES = {"png": "image/png", "jpeg": "image/jpeg", "webp": "image/webp"}
NOT_IMAGE = b"<html>not an image</html>"
INPUT_FORMATS = ("PNG", "JPEG", "WEBP")  # what an input image may be (what Prodia makes)
MAX_INPUT_PIXELS = 4096 * 4096  # our pick: a larger input is refused, so a request cannot exhaust the server


class BadInput(ValueError):
    """Input bytes that are not an image this server reads; the message says why."""


def draw(params: dict[str, Any], width: int, height: int, fmt: str, grain: float = 0.0) -> bytes:
    """Deterministic image bytes: a gradient and shapes derived from prompt, seed, model, size; `grain` is
    the share of seeded noise blended in (0: none)."""
    image = picture(params, width, height, grain)
    write_caption(image, caption(params))
    return encode(image, fmt)


def vary(source: bytes, params: dict[str, Any], strength: float, fmt: str, grain: float = 0.0) -> bytes:
    """A variation of `source`: blended with the placeholder for `params` by `strength`, captioned."""
    base = open_input(source)
    image = Image.blend(base, picture(params, base.width, base.height, grain), strength)
    write_caption(image, caption(params))
    return encode(image, fmt)


def upscale(source: bytes, factor: int, fmt: str) -> bytes:
    """`source` resized to `factor` times its width and height."""
    base = open_input(source)
    return encode(base.resize((base.width * factor, base.height * factor), Image.Resampling.LANCZOS), fmt)


def open_input(data: bytes) -> Image.Image:
    """An input image decoded (RGB); BadInput if it is not a whole PNG, JPEG or WebP of sane size."""
    try:
        with Image.open(io.BytesIO(data), formats=INPUT_FORMATS) as image:
            if image.width * image.height > MAX_INPUT_PIXELS:
                raise BadInput(f"the image is {image.width}x{image.height} pixels, over {MAX_INPUT_PIXELS:,} pixels")
            return image.convert("RGB")  # loads every pixel: a truncated file fails here
    except BadInput:
        raise
    except Exception as exc:  # Pillow raises many kinds
        raise BadInput(f"not a decodable PNG, JPEG or WebP image ({type(exc).__name__})") from None


def input_size(data: bytes) -> tuple[int, int]:
    """The pixel size of an input image (BadInput as `open_input`)."""
    image = open_input(data)
    return image.width, image.height


def encode(image: Image.Image, fmt: str) -> bytes:
    out = io.BytesIO()
    if fmt == "png":
        image.save(out, "PNG", compress_level=1)  # speed over size: it runs for every job
    else:
        image.save(out, fmt.upper(), quality=85)
    return out.getvalue()


def picture(params: dict[str, Any], width: int, height: int, grain: float = 0.0) -> Image.Image:
    """The placeholder picture, uncaptioned."""
    model = params.get("model") or params.get("type")
    key = json.dumps([params.get("prompt"), params.get("seed"), model, width, height])
    digest = hashlib.sha256(key.encode()).digest()
    mask = Image.linear_gradient("L").resize((width, height))
    image = Image.composite(
        Image.new("RGB", (width, height), tuple(digest[3:6])),
        Image.new("RGB", (width, height), tuple(digest[0:3])),
        mask,
    )
    rng = random.Random(digest)
    canvas = ImageDraw.Draw(image)
    for _ in range(4):
        x0, x1 = sorted(rng.randrange(width) for _ in range(2))
        y0, y1 = sorted(rng.randrange(height) for _ in range(2))
        colour = tuple(rng.randrange(256) for _ in range(3))
        shape = canvas.ellipse if rng.random() < 0.5 else canvas.rectangle
        shape((x0, y0, x1, y1), fill=colour)
    if grain:
        noise = Image.frombytes("RGB", (width, height), rng.randbytes(width * height * 3))
        image = Image.blend(image, noise, grain).filter(ImageFilter.GaussianBlur(0.7))
    return image


def caption(params: dict[str, Any]) -> str:
    """What the banner says: the prompt, then the seed and the model."""
    model = params.get("model") or params.get("type") or ""
    return f"{params.get('prompt') or ''}\nseed {params.get('seed', '?')}  {model}".strip()


@functools.cache
def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    return ImageFont.load_default(size=size)


def write_caption(image: Image.Image, text: str) -> None:
    """The text on a dark banner across the bottom, in Pillow's built-in font (nothing to download), wrapped
    and cut to three lines of prompt; skipped on images too small to read."""
    width, height = image.size
    if width < 96 or height < 64 or not text:
        return
    size = max(10, width // 40)
    font = _font(size)
    prompt, _, details = text.rpartition("\n")
    lines = [*textwrap.wrap(prompt, width=max(10, int(width / (0.5 * size))))[:3], details]
    top = height - (len(lines) * (size + 4) + 8)
    canvas = ImageDraw.Draw(image)
    canvas.rectangle((0, top, width, height), fill=(0, 0, 0))
    for row, line in enumerate(lines):
        canvas.text((8, top + 4 + row * (size + 4)), line, fill=(255, 255, 255), font=font)


PNG_END = b"\x00\x00\x00\x00IEND\xaeB`\x82"  # the IEND chunk: no data, then its CRC
PADDING_CHUNK = b"paDd"  # a private ancillary chunk: decoders skip it (as they skip metadata they do not know)


def huge_png(size: int) -> bytes:
    """A whole, decodable PNG of `size` bytes (or of the least its picture takes): a small placeholder picture
    padded with a chunk every decoder skips. Nothing is wrong with it but its size, so only a cap on the bytes
    read stops it."""
    picture = _small_picture()
    padding = bytes(max(0, size - len(picture) - 12))  # a chunk adds its length, type and CRC: 12 bytes
    chunk = len(padding).to_bytes(4, "big") + PADDING_CHUNK + padding
    return picture.removesuffix(PNG_END) + chunk + zlib.crc32(chunk[4:]).to_bytes(4, "big") + PNG_END


@functools.cache
def _small_picture() -> bytes:
    return draw({"prompt": "huge", "seed": 0}, 64, 64, "png")
