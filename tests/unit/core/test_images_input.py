"""An upload as Prodia is sent it (`bot.core.images.prepare_input`): whatever its colour mode, an RGB PNG. The rest
of images.py is in test_images.py."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from bot.core.images import prepare_input


@pytest.mark.parametrize(("mode", "fmt"), [("RGBA", "PNG"), ("P", "PNG"), ("L", "JPEG"), ("RGBA", "WEBP")])
def test_an_upload_of_any_colour_mode_is_sent_as_an_rgb_png(mode: str, fmt: str) -> None:
    out = io.BytesIO()
    Image.new(mode, (40, 30), 128 if mode in ("L", "P") else (10, 200, 30, 128)).save(out, fmt)
    with Image.open(io.BytesIO(prepare_input(out.getvalue()))) as sent:
        assert (sent.format, sent.mode, sent.size) == ("PNG", "RGB", (40, 30))
