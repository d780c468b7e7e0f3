"""inspect_image and fit_to_limit on real images made with Pillow."""

from __future__ import annotations

import io
import random

import pytest
from PIL import BmpImagePlugin, GifImagePlugin, Image, TiffImagePlugin

from bot.core.errors import BadResponse
from bot.core.images import ImageInfo, fit_to_limit, inspect_image, prepare_input, upscale_fits


def encode(image: Image.Image, fmt: str, **options: object) -> bytes:
    out = io.BytesIO()
    image.save(out, fmt, **options)
    return out.getvalue()


def noise(width: int, height: int, seed: int = 0) -> Image.Image:
    return Image.frombytes("RGB", (width, height), random.Random(seed).randbytes(width * height * 3))


@pytest.mark.parametrize(
    ("fmt", "expected"),
    [
        ("PNG", ImageInfo("png", "image/png", 64, 48)),
        ("JPEG", ImageInfo("jpg", "image/jpeg", 64, 48)),
        ("WEBP", ImageInfo("webp", "image/webp", 64, 48)),
    ],
)
def test_inspect_recognises_real_images(fmt: str, expected: ImageInfo) -> None:
    assert inspect_image(encode(noise(64, 48), fmt)) == expected


def test_inspect_refuses_garbage_bytes() -> None:
    with pytest.raises(BadResponse):
        inspect_image(b"<html>502 Bad Gateway</html>" * 10)


def test_inspect_refuses_empty_bytes() -> None:
    with pytest.raises(BadResponse):
        inspect_image(b"")


def test_inspect_refuses_truncated_png() -> None:
    data = encode(noise(64, 64), "PNG")
    with pytest.raises(BadResponse):
        inspect_image(data[: len(data) // 2])


def test_inspect_refuses_truncated_webp() -> None:
    data = encode(noise(64, 64), "WEBP")
    with pytest.raises(BadResponse):
        inspect_image(data[: len(data) // 2])


def test_inspect_refuses_truncated_jpeg() -> None:
    data = encode(noise(64, 64), "JPEG")
    with pytest.raises(BadResponse):
        inspect_image(data[: len(data) // 2])


def test_inspect_refuses_png_corrupted_in_transfer() -> None:
    data = bytearray(encode(noise(64, 64), "PNG"))
    data[len(data) // 2] ^= 1  # inside the pixel data: only its chunk's checksum tells
    with pytest.raises(BadResponse):
        inspect_image(bytes(data))


def test_inspect_reports_a_jpegs_full_size_though_it_reads_it_at_an_eighth() -> None:
    assert inspect_image(encode(noise(1024, 1024), "JPEG")) == ImageInfo("jpg", "image/jpeg", 1024, 1024)


def test_inspect_accepts_a_whole_jpeg_with_bytes_after_its_end_marker() -> None:
    data = encode(noise(64, 48), "JPEG") + b"trailer"  # no end marker last: it is decoded instead
    assert inspect_image(data) == ImageInfo("jpg", "image/jpeg", 64, 48)


@pytest.mark.parametrize(
    ("fmt", "decoder"),
    [
        ("BMP", BmpImagePlugin.BmpImageFile),
        ("TIFF", TiffImagePlugin.TiffImageFile),
        ("GIF", GifImagePlugin.GifImageFile),
    ],
)
def test_inspect_refuses_other_formats_without_letting_pillow_read_them(fmt, decoder, monkeypatch) -> None:
    data = encode(noise(16, 16), fmt)
    assert Image.open(io.BytesIO(data)).format == fmt  # a valid image of its kind
    opened = []
    monkeypatch.setattr(decoder, "_open", lambda self: opened.append(fmt))  # where Pillow starts to parse one
    with pytest.raises(BadResponse) as caught:
        inspect_image(data)
    assert str(caught.value) == "bytes are not a PNG, JPEG or WebP image"
    assert opened == []


def test_inspect_refuses_decompression_bomb_dimensions() -> None:
    bomb = encode(Image.new("1", (5000, 5000)), "PNG")
    assert len(bomb) < 10_000  # tiny on the wire, 25 megapixels once decoded
    with pytest.raises(BadResponse) as caught:
        inspect_image(bomb)
    assert "5000x5000" in str(caught.value)


def test_inspect_accepts_4096_square() -> None:
    info = inspect_image(encode(Image.new("1", (4096, 4096)), "PNG"))
    assert (info.width, info.height) == (4096, 4096)


def test_fit_leaves_small_image_unchanged() -> None:
    data = encode(noise(32, 32), "PNG")
    info = inspect_image(data)
    assert fit_to_limit(data, info, len(data)) == (data, info)


def test_fit_shrinks_big_png_below_the_limit_as_valid_jpeg() -> None:
    data = encode(noise(512, 512), "PNG")
    limit = 60_000
    assert len(data) > limit
    shrunk, info = fit_to_limit(data, inspect_image(data), limit)
    assert len(shrunk) <= limit
    assert (info.extension, info.content_type) == ("jpg", "image/jpeg")
    assert inspect_image(shrunk) == info


def test_fit_keeps_full_size_when_recompression_is_enough() -> None:
    image = Image.new("RGB", (400, 300), (200, 40, 40))
    data = encode(image, "PNG", compress_level=0)
    shrunk, info = fit_to_limit(data, inspect_image(data), len(data) // 10)
    assert (info.width, info.height, inspect_image(shrunk).width) == (400, 300, 400)


def test_fit_converts_transparent_png() -> None:
    data = encode(Image.new("RGBA", (300, 300), (0, 0, 0, 0)), "PNG", compress_level=0)
    shrunk, info = fit_to_limit(data, inspect_image(data), 20_000)
    assert inspect_image(shrunk).extension == info.extension == "jpg"


def test_fit_refuses_when_no_size_fits() -> None:
    data = encode(noise(256, 256), "PNG")
    with pytest.raises(BadResponse):
        fit_to_limit(data, inspect_image(data), 100)


def test_upscale_fits_only_where_its_plain_resize_would_fit_as_the_smallest_jpeg() -> None:
    data = encode(noise(64, 64), "PNG")
    resized = encode(noise(64, 64).resize((128, 128), Image.Resampling.BILINEAR), "JPEG", quality=50, optimize=True)
    assert upscale_fits(data, 2, len(resized) + 100)
    assert not upscale_fits(data, 2, len(resized) - 100)


def test_upscale_fits_refuses_what_would_be_over_the_pixel_cap() -> None:
    data = encode(Image.new("RGB", (3000, 3000)), "PNG")  # 6000x6000 upscaled: over 4096x4096
    assert not upscale_fits(data, 2, 10**9)


def test_fit_to_limit_with_one_scale_re_encodes_but_never_shrinks() -> None:
    data = encode(noise(256, 256), "PNG")
    with pytest.raises(BadResponse):
        fit_to_limit(data, inspect_image(data), 5_000, scales=(1.0,))  # only smaller would fit
    shrunk, info = fit_to_limit(data, inspect_image(data), 5_000)
    assert len(shrunk) <= 5_000 and info.width < 256


# -- an upload to start from (prepare_input) --------------------------------------------------------


@pytest.mark.parametrize(
    ("size", "sent"), [((2048, 1024), (1024, 512)), ((600, 1500), (410, 1024)), ((640, 480), (640, 480))]
)
def test_an_upload_is_sent_as_a_png_at_most_1024_on_its_longest_side(
    size: tuple[int, int], sent: tuple[int, int]
) -> None:
    source = noise(*size)
    prepared = prepare_input(encode(source, "JPEG", quality=95))
    assert inspect_image(prepared) == ImageInfo("png", "image/png", *sent)


def test_an_upload_small_enough_keeps_its_pixels() -> None:
    source = noise(300, 200, seed=3)
    prepared = Image.open(io.BytesIO(prepare_input(encode(source, "PNG"))))
    assert prepared.size == (300, 200) and prepared.convert("RGB").tobytes() == source.tobytes()


def test_an_upload_over_the_pixel_cap_is_refused_from_its_header() -> None:
    data = encode(Image.new("1", (8000, 6000)), "PNG")  # 48 MP: over 40, and small as a file
    with pytest.raises(BadResponse, match="8000x6000 pixels, over 40 MP"):
        prepare_input(data)


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"just text", "not a PNG, JPEG or WebP image"),
        (encode(Image.new("RGB", (10, 10)), "BMP"), "not a PNG, JPEG or WebP image"),
        (encode(noise(64, 64), "PNG")[:-200], "not a readable image"),
    ],
    ids=["text", "bmp", "truncated png"],
)
def test_an_upload_that_is_no_usable_image_is_refused_saying_why(data: bytes, reason: str) -> None:
    with pytest.raises(BadResponse, match=reason):
        prepare_input(data)


def test_upscale_fits_at_exactly_the_limit_and_at_exactly_the_pixel_cap() -> None:
    data = encode(noise(64, 64), "PNG")
    resized = encode(noise(64, 64).resize((128, 128), Image.Resampling.BILINEAR), "JPEG", quality=50, optimize=True)
    assert upscale_fits(data, 2, len(resized))  # a result of exactly the limit may be posted
    assert upscale_fits(encode(Image.new("RGB", (2048, 2048)), "PNG"), 2, 10**9)  # 4096x4096: at the cap, not over


def test_an_upload_of_exactly_the_pixel_cap_is_taken() -> None:
    prepared = prepare_input(encode(Image.new("1", (8000, 5000)), "PNG"))  # 40 MP exactly
    assert inspect_image(prepared).width == 1024
