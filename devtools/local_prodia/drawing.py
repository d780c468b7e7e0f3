"""The local server's images: real, deterministic bytes from prompt, seed, model and size.

They are abstract (a gradient and four shapes), not pictures of the prompt: the point is real image
bytes that change with every parameter, so tests can tell one result from another."""

from __future__ import annotations

import hashlib
import io
import json
import random
from typing import Any

from PIL import Image, ImageDraw

IMAGE_TYPES = {"png": "image/png", "jpeg": "image/jpeg", "webp": "image/webp"}
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
NOT_IMAGE = b"<html>not an image</html>"


def draw(params: dict[str, Any], width: int, height: int, fmt: str) -> bytes:
    """Deterministic image bytes: a gradient and shapes derived from prompt, seed, model, size."""
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
    out = io.BytesIO()
    if fmt == "png":
        image.save(out, "PNG", compress_level=1)  # speed over size: it runs for every job
    else:
        image.save(out, fmt.upper(), quality=85)
    return out.getvalue()


def huge_png(size: int) -> bytes:
    """A PNG signature padded to `size` bytes: large, and not a decodable image."""
    return PNG_SIGNATURE + bytes(max(0, size - len(PNG_SIGNATURE)))
