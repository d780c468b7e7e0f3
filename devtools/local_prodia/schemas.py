"""The v2 job types the local server knows, their config schemas, and validation in Prodia's words.

Evidence (see ../shared/prodia-api.md, section 3a): DOC = docs.prodia.com, SDK = the official JS client
and its tests against the live API, 3P = third-party code only.

- inference.flux-fast.schnell.txt2img.v1: DOC schema (`resolution` enum, `additionalProperties: false`).
- inference.flux-fast.schnell.txt2img.v2: DOC shows width/height echoed and `loras`; the limits
  (256-1920, steps 1-4, loras <= 3) are 3P.
- inference.flux.schnell.txt2img.v1, inference.flux.dev.txt2img.v1: SDK tests send prompt, steps,
  width, height; steps 1000 is refused ("maximum: got 1,000"). Their limits here are our pick.
- inference.flux-2.pro.img2img.v1: DOC schema; its images come as multipart `input` parts (`images` may name
  them by filename; "if not specified, uses uploaded files"; the size defaults to the input's).
- inference.sdxl.txt2img.v1, inference.sd15.txt2img.v1: 3P only (names and fields unconfirmed).
- inference.sdxl.img2img.v1, inference.sd15.img2img.v1: 3P only (named with "strength control"); fields here are
  their txt2img ones without the size, plus `strength` 0-1 (our pick of name and default, 0.7).
- inference.upscale.v1: 3P only, `{"image": "<input filename>", "upscale": 2|4|8}` (third-party code that ran
  it against the live API; other code sends only `upscale`). Our picks: `upscale` defaults to 2, `image` to the
  first input.

Our picks where nothing says: every type refuses unknown config keys (DOC shows `additionalProperties:
false` on flux-fast v1; strict is the side that catches a client sending a wrong field name), and the
error text follows the shape the SDK tests quote: `jsonschema validation failed: /config/steps/maximum:
got 1,000, want 4`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

STYLE_PRESETS = (
    "3d-model", "analog-film", "anime", "cinematic", "comic-book", "digital-art", "enhance",
    "fantasy-art", "isometric", "line-art", "low-poly", "neon-punk", "origami", "photographic",
    "pixel-art", "texture", "craft-clay",
)  # fmt: skip
SAMPLERS_3P = ("Euler", "Euler a", "Heun", "DPM++ 2M Karras", "DPM++ SDE Karras", "DDIM")
RESOLUTIONS = ("1024x1024", "1024x768", "1024x576", "768x1024", "640x640", "576x1024", "512x512")
MAX_SEED = 2**53 - 1  # DOC examples show seeds above 2^32 (531286735183442)


class SchemaError(Exception):
    """A config that breaks its job type's schema; the message is what Prodia's `job.error` says."""


@dataclass(frozen=True)
class Prop:
    kind: str  # "string", "integer", "number", "boolean", "array"
    minimum: float | None = None
    maximum: float | None = None
    min_length: int | None = None
    max_length: int | None = None
    enum: tuple[Any, ...] | None = None
    max_items: int | None = None
    default: Any = None


@dataclass(frozen=True)
class JobType:
    name: str
    evidence: str  # DOC, SDK or 3P
    properties: dict[str, Prop]
    required: tuple[str, ...] = ("prompt",)
    permits_async: bool = True  # our pick: DOC names no image type that refuses async
    size_field: str = "width"  # "width" (width + height) or "resolution"
    kind: str = "txt2img"  # or "img2img", "upscale": these take one or more `input` parts (multipart requests only)

    @property
    def needs_inputs(self) -> bool:
        return self.kind != "txt2img"

    def size(self, config: dict[str, Any]) -> tuple[int, int]:
        if self.size_field == "resolution":
            width, height = config.get("resolution", "1024x1024").split("x")
            return int(width), int(height)
        return config.get("width", 1024), config.get("height", 1024)


def _flux(steps: int, default_steps: int, low: int = 256, high: int = 1920) -> dict[str, Prop]:
    return {
        "prompt": Prop("string", min_length=1, max_length=4096),
        "width": Prop("integer", minimum=low, maximum=high, default=1024),
        "height": Prop("integer", minimum=low, maximum=high, default=1024),
        "steps": Prop("integer", minimum=1, maximum=steps, default=default_steps),
        "seed": Prop("integer", minimum=0, maximum=MAX_SEED),
    }


def _sizes(low: int, high: int, default: int | None) -> dict[str, Prop]:
    return {name: Prop("integer", minimum=low, maximum=high, default=default) for name in ("width", "height")}


_SD_IMG2IMG_3P = {  # the size comes from the input
    "prompt": Prop("string", min_length=1, max_length=4096),
    "negative_prompt": Prop("string", max_length=4096),
    "steps": Prop("integer", minimum=1, maximum=50, default=25),
    "seed": Prop("integer", minimum=0, maximum=MAX_SEED),
    "strength": Prop("number", minimum=0, maximum=1, default=0.7),
    "cfg_scale": Prop("number", minimum=0, maximum=20),
    "guidance": Prop("number", minimum=0, maximum=20),
    "sampler": Prop("string", enum=SAMPLERS_3P),
    "style_preset": Prop("string", enum=STYLE_PRESETS),
}

_SD_3P = {
    "prompt": Prop("string", min_length=1, max_length=4096),
    "negative_prompt": Prop("string", max_length=4096),
    "width": Prop("integer", minimum=256, maximum=2048, default=1024),
    "height": Prop("integer", minimum=256, maximum=2048, default=1024),
    "steps": Prop("integer", minimum=1, maximum=50, default=25),
    "seed": Prop("integer", minimum=0, maximum=MAX_SEED),
    "cfg_scale": Prop("number", minimum=0, maximum=20),
    "guidance": Prop("number", minimum=0, maximum=20),
    "sampler": Prop("string", enum=SAMPLERS_3P),
    "style_preset": Prop("string", enum=STYLE_PRESETS),
}

JOB_TYPES: dict[str, JobType] = {
    t.name: t
    for t in (
        JobType(
            "inference.flux-fast.schnell.txt2img.v1",
            "DOC",
            {
                "prompt": Prop("string", min_length=3, max_length=4096),
                "style_preset": Prop("string", enum=STYLE_PRESETS),
                "steps": Prop("integer", minimum=1, maximum=4, default=4),
                "resolution": Prop("string", enum=RESOLUTIONS, default="1024x1024"),
                "seed": Prop("integer", minimum=0, maximum=MAX_SEED),
                "progressive": Prop("boolean", default=False),
            },
            size_field="resolution",
        ),
        JobType(
            "inference.flux-fast.schnell.txt2img.v2",
            "DOC+3P",
            {
                **_flux(4, 4),
                "style_preset": Prop("string", enum=STYLE_PRESETS),
                "loras": Prop("array", max_items=3),
                "progressive": Prop("boolean", default=False),
            },
        ),
        JobType("inference.flux.schnell.txt2img.v1", "SDK", _flux(4, 4)),
        JobType("inference.flux.dev.txt2img.v1", "SDK", {**_flux(50, 25), "loras": Prop("array", max_items=3)}),
        JobType(
            "inference.flux-2.pro.img2img.v1",
            "DOC",
            {
                "images": Prop("array", max_items=8),
                "prompt": Prop("string", min_length=1, max_length=32768),
                **_sizes(64, 4096, None),  # DOC: "if not specified, uses input image dimensions"
                "seed": Prop("integer", minimum=0, maximum=MAX_SEED),
                "safety_tolerance": Prop("integer", minimum=0, maximum=5, default=2),
            },
            kind="img2img",
        ),
        JobType("inference.sdxl.txt2img.v1", "3P", _SD_3P),
        JobType("inference.sd15.txt2img.v1", "3P", {**_SD_3P, **_sizes(256, 1024, 512)}),
        JobType("inference.sdxl.img2img.v1", "3P", _SD_IMG2IMG_3P, kind="img2img"),
        JobType("inference.sd15.img2img.v1", "3P", _SD_IMG2IMG_3P, kind="img2img"),
        # DOC: an NSFW classifier labelling its input neutral/low/medium/high. Its config fields and the format of
        # its output are not documented: no fields here; the output is JSON {"label": ...} (our pick).
        JobType("inference.vit.img2label.v1", "DOC", {}, required=(), kind="classify"),
        JobType(
            "inference.upscale.v1",
            "3P",
            {"image": Prop("string", min_length=1), "upscale": Prop("integer", enum=(2, 4, 8), default=2)},
            required=(),
            kind="upscale",
        ),
    )
}  # fmt: skip


def validate(job_type: JobType, raw: Any) -> dict[str, Any]:
    """The config with defaults filled in, as Prodia echoes it; SchemaError names the first problem."""
    if not isinstance(raw, dict):
        raise SchemaError(_failed("/config/type", f"got {_kind(raw)}, want object"))
    for name in job_type.required:
        if name not in raw:
            raise SchemaError(_failed("/config/required", f"missing properties {name!r}"))
    unknown = sorted(set(raw) - set(job_type.properties))
    if unknown:
        names = ", ".join(repr(n) for n in unknown)
        raise SchemaError(_failed("/config/additionalProperties", f"additional properties {names} not allowed"))
    config: dict[str, Any] = {}
    for name, prop in job_type.properties.items():
        if name in raw:
            config[name] = _check(name, prop, raw[name])
        elif prop.default is not None:
            config[name] = prop.default
    return config


def _check(name: str, prop: Prop, value: Any) -> Any:
    at = f"/config/{name}"
    kinds = {"integer": int, "number": int | float, "string": str, "boolean": bool, "array": list}
    if (isinstance(value, bool) and prop.kind != "boolean") or not isinstance(value, kinds[prop.kind]):
        raise SchemaError(_failed(f"{at}/type", f"got {_kind(value)}, want {prop.kind}"))
    return _check_limits(at, prop, value)


def _check_limits(at: str, prop: Prop, value: Any) -> Any:
    if prop.minimum is not None and value < prop.minimum:
        raise SchemaError(_failed(f"{at}/minimum", f"got {_number(value)}, want {_number(prop.minimum)}"))
    if prop.maximum is not None and value > prop.maximum:
        raise SchemaError(_failed(f"{at}/maximum", f"got {_number(value)}, want {_number(prop.maximum)}"))
    if prop.min_length is not None and len(value) < prop.min_length:
        raise SchemaError(_failed(f"{at}/minLength", f"got {len(value)}, want {prop.min_length}"))
    if prop.max_length is not None and len(value) > prop.max_length:
        raise SchemaError(_failed(f"{at}/maxLength", f"got {_number(len(value))}, want {prop.max_length}"))
    if prop.enum is not None and value not in prop.enum:
        raise SchemaError(_failed(f"{at}/enum", f"value must be one of {', '.join(map(json.dumps, prop.enum))}"))
    if prop.max_items is not None and len(value) > prop.max_items:
        raise SchemaError(_failed(f"{at}/maxItems", f"got {len(value)}, want {prop.max_items}"))
    return value


def _failed(where: str, detail: str) -> str:
    return f"jsonschema validation failed: {where}: {detail}"


def _number(value: float) -> str:
    whole = isinstance(value, int) or (float(value).is_integer() and abs(value) >= 1000)
    return f"{value:,}" if whole else f"{value:g}"


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    return {bool: "boolean", int: "integer", float: "number", str: "string", list: "array", dict: "object"}.get(
        type(value), type(value).__name__
    )
