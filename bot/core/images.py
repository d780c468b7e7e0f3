"""Image bytes: recognise them safely, and shrink them to fit an upload limit."""

from __future__ import annotations

import io
from dataclasses import dataclass

from PIL import Image

from .errors import BadResponse

MAX_PIXELS = 4096 * 4096  # larger than any Prodia output; above it we suspect a decompression bomb
FORMATS = {"PNG": ("png", "image/png"), "JPEG": ("jpg", "image/jpeg"), "WEBP": ("webp", "image/webp")}


@dataclass(frozen=True)
class ImageInfo:
    extension: str  # "png", "jpg" or "webp"
    content_type: str
    width: int
    height: int


def inspect_image(data: bytes) -> ImageInfo:
    """What these bytes are; BadResponse unless they are one PNG/JPEG/WebP of sane size."""
    try:
        with Image.open(io.BytesIO(data)) as image:
            width, height = image.size
            kind = image.format
            if width * height > MAX_PIXELS:
                raise BadResponse(f"image of {width}x{height} pixels is over the limit")
            image.load()  # decodes every pixel: truncated files of any format fail here
    except BadResponse:
        raise
    except Exception as exc:  # Pillow raises many kinds, DecompressionBombError among them
        raise BadResponse(f"bytes are not a readable image: {type(exc).__name__}") from None
    if kind not in FORMATS:
        raise BadResponse(f"unexpected image format {kind}")
    extension, content_type = FORMATS[kind]
    return ImageInfo(extension, content_type, width, height)


def fit_to_limit(data: bytes, info: ImageInfo, limit: int) -> tuple[bytes, ImageInfo]:
    """Re-encode as JPEG (lower quality, then smaller) until it fits `limit` bytes; unchanged if it fits."""
    if len(data) <= limit:
        return data, info
    with Image.open(io.BytesIO(data)) as source:
        image = source.convert("RGB")
    for scale in (1.0, 0.75, 0.5, 0.35, 0.25):
        size = (max(1, int(image.width * scale)), max(1, int(image.height * scale)))
        frame = image if scale == 1.0 else image.resize(size, Image.Resampling.LANCZOS)
        for quality in (90, 80, 65, 50):
            out = io.BytesIO()
            frame.save(out, "JPEG", quality=quality, optimize=True)
            if out.tell() <= limit:
                return out.getvalue(), ImageInfo("jpg", "image/jpeg", *size)
    raise BadResponse(f"image cannot be shrunk below {limit} bytes")
