"""Image bytes: recognise them safely, and shrink them to fit an upload limit."""

from __future__ import annotations

import io
from dataclasses import dataclass

from PIL import Image

from .errors import BadResponse

MAX_PIXELS = 4096 * 4096  # larger than any Prodia output; above it we suspect a decompression bomb
JPEG_END = b"\xff\xd9"  # the end-of-image marker
FORMATS = {"PNG": ("png", "image/png"), "JPEG": ("jpg", "image/jpeg"), "WEBP": ("webp", "image/webp")}
# Pillow tries only these decoders: the bytes come from outside, and each other one (BMP, TIFF, GIF, PSD, ...)
# is attack surface the bot has no use for.
OPENABLE = tuple(FORMATS)


@dataclass(frozen=True)
class ImageInfo:
    extension: str  # "png", "jpg" or "webp"
    content_type: str
    width: int
    height: int


def inspect_image(data: bytes) -> ImageInfo:
    """What these bytes are; BadResponse unless they are one whole PNG/JPEG/WebP of sane size.

    "Whole" is checked as cheaply as the format allows (a full decode of a 1024x1024 PNG costs about 40 ms of
    CPU, a JPEG's 5 ms): a PNG's chunks are read to its end with every checksum verified, so a truncated or
    corrupted transfer fails; a JPEG must end with its end-of-image marker, or else decode (at 1/8 scale,
    which still reads every scan); a WebP is decoded in full."""
    try:
        with Image.open(io.BytesIO(data), formats=OPENABLE) as image:
            width, height = image.size
            kind = image.format
            if width * height > MAX_PIXELS:
                raise BadResponse(f"image of {width}x{height} pixels is over the limit")
            if kind == "PNG":
                image.verify()  # every chunk's CRC, through IEND
            elif kind == "JPEG" and data.endswith(JPEG_END):
                pass  # whole: the coded data cannot hold this marker, so only a complete file ends with it
            else:
                if kind == "JPEG":  # no end marker (cut off, or bytes after it): reading it at 1/8 scale tells
                    image.draft(image.mode, (max(1, width // 8), max(1, height // 8)))
                image.load()  # truncated files fail here
    except BadResponse:
        raise
    except Image.UnidentifiedImageError:  # none of OPENABLE's decoders recognised it; no other one was tried
        raise BadResponse("bytes are not a PNG, JPEG or WebP image") from None
    except Exception as exc:  # Pillow raises many kinds, DecompressionBombError among them
        raise BadResponse(f"bytes are not a readable image: {type(exc).__name__}") from None
    if kind not in FORMATS:
        raise BadResponse(f"unexpected image format {kind}")
    extension, content_type = FORMATS[kind]
    return ImageInfo(extension, content_type, width, height)


SHRINK_SCALES = (1.0, 0.75, 0.5, 0.35, 0.25)


def fit_to_limit(
    data: bytes, info: ImageInfo, limit: int, scales: tuple[float, ...] = SHRINK_SCALES
) -> tuple[bytes, ImageInfo]:
    """Re-encode as JPEG (lower quality, then smaller, down to the last of `scales`) until it fits `limit` bytes;
    unchanged if it fits. BadResponse if it cannot."""
    if len(data) <= limit:
        return data, info
    with Image.open(io.BytesIO(data), formats=OPENABLE) as source:
        image = source.convert("RGB")
    for scale in scales:
        size = (max(1, int(image.width * scale)), max(1, int(image.height * scale)))
        frame = image if scale == 1.0 else image.resize(size, Image.Resampling.LANCZOS)
        for quality in (90, 80, 65, 50):
            out = io.BytesIO()
            frame.save(out, "JPEG", quality=quality, optimize=True)
            if out.tell() <= limit:
                return out.getvalue(), ImageInfo("jpg", "image/jpeg", *size)
    raise BadResponse(f"image cannot be shrunk below {limit} bytes")


def upscale_fits(data: bytes, factor: int, limit: int) -> bool:
    """Whether `data` upscaled `factor` times could be posted within `limit` bytes at full size: its plain resize,
    encoded as the smallest JPEG `fit_to_limit` tries, fits. An upscaler adds detail, so this is a lower bound on
    the real result's size: a False is sure (nothing is sent to Prodia), a True is checked again on the result."""
    with Image.open(io.BytesIO(data), formats=OPENABLE) as source:
        image = source.convert("RGB")
    if image.width * image.height * factor * factor > MAX_PIXELS:
        return False
    frame = image.resize((image.width * factor, image.height * factor), Image.Resampling.BILINEAR)
    out = io.BytesIO()
    frame.save(out, "JPEG", quality=50, optimize=True)
    return out.tell() <= limit


# An image a user uploads to start from (/imagine image:): what is taken, and what Prodia is sent.
INPUT_MAX_BYTES = 10 * 2**20  # Discord's upload limit without boosts: more is refused before it is read
INPUT_MAX_PIXELS = 40_000_000  # larger (a 100-megapixel photo) is refused: decoding it would take ~120 MB
INPUT_MAX_SIDE = 1024  # its longest side at most this when sent (what the SD and SDXL models work at)
INPUT_TYPES = ("image/png", "image/jpeg", "image/webp")


def prepare_input(data: bytes) -> bytes:
    """An uploaded image as Prodia is sent it: a PNG whose longest side is at most INPUT_MAX_SIDE. BadResponse (its
    detail says why) unless `data` is one whole PNG, JPEG or WebP of at most INPUT_MAX_PIXELS."""
    try:
        with Image.open(io.BytesIO(data), formats=OPENABLE) as source:
            if source.width * source.height > INPUT_MAX_PIXELS:
                raise BadResponse(f"{source.width}x{source.height} pixels, over {INPUT_MAX_PIXELS // 1_000_000} MP")
            image = source.convert("RGB")  # decodes every pixel: a truncated file fails here
    except BadResponse:
        raise
    except Image.UnidentifiedImageError:
        raise BadResponse("not a PNG, JPEG or WebP image") from None
    except Exception as exc:  # Pillow raises many kinds
        raise BadResponse(f"not a readable image ({type(exc).__name__})") from None
    image.thumbnail((INPUT_MAX_SIDE, INPUT_MAX_SIDE), Image.Resampling.LANCZOS)  # never enlarges
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()
