"""The model catalog: which models exist, what they accept, and `get_model`'s fallback made visible."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field, replace

from .errors import InvalidInput
from .model_lists import DEFAULT_SAMPLER, DEFAULT_SD_MODEL, SD_MODELS, SDXL_MODELS, V2_DEFAULT_MODELS
from .request import DEFAULT_CFG, DEFAULT_STEPS, GenerationRequest, check_range

TUNING = frozenset({"negative_prompt", "cfg", "sampler"})  # what flux has no use for
# v2 config fields per request parameter, where a job type documents one (`width` stands for the size).
V2_FIELDS = {"negative_prompt": "negative_prompt", "cfg": "guidance", "aspect_ratio": "width", "style": "style_preset"}

# Width x height per aspect ratio, for models that take pixel sizes (SD 1.x takes the ratio itself).
SIZES_XL = {"square": (1024, 1024), "portrait": (832, 1216), "landscape": (1216, 832)}
SIZES_SD = {"square": (512, 512), "portrait": (512, 768), "landscape": (768, 512)}

# Actions on a result. A job is one of these kinds; all run through the same client path (`generate`).
JOB_KINDS = ("generate", "transform", "upscale")
# How much of the diffusion a variation re-runs (img2img "denoising strength", 0-1): at 0.5 about half the steps
# redo the image, so its composition and colours stay and its details change - a variation, not a new picture.
# 0.7-0.8 (third-party Prodia code, diffusers' default) is for restyling and mostly loses the composition; below
# about 0.3 the result barely differs from the input.
DEFAULT_STRENGTH = 0.5
STRENGTH_RANGE = (0.0, 1.0)
UPSCALE_FACTOR = 2  # v1 `/upscale` takes `resize` 2|4, v2 `inference.upscale.v1` `upscale` 2|4|8
# Where each API upscales, and the evidence: v1 `/upscale` is in Prodia's v1 docs (prodia-api.md section 2) and
# third-party clients (prodiapy's `upscale`); v2's upscale job type is known from third-party code only.
UPSCALERS = {
    "v1": ("/upscale", "Prodia's v1 docs and third-party clients"),
    "v2": ("inference.upscale.v1", "third-party code"),
}


@dataclass(frozen=True)
class Model:
    name: str  # what users pick and see
    family: str  # "sd", "sdxl" or "flux": decides the endpoint and the parameters sent
    job_type: str | None = None  # the v2 job type; None on v1
    aliases: tuple[str, ...] = ()
    max_steps: int = 25
    default_steps: int = DEFAULT_STEPS
    ignores: frozenset[str] = frozenset()
    fields: frozenset[str] = frozenset()  # v2: the config fields its job type documents (what is sent)
    evidence: str = ""  # v2: where the job type and its fields are known from
    img2img_type: str | None = None  # v2: its image-to-image job type; None: no known one, it cannot vary
    img2img_fields: frozenset[str] = frozenset()  # v2: the config fields of that type (the image goes as `input`)

    def size(self, aspect_ratio: str) -> tuple[int, int]:
        return (SIZES_SD if self.family == "sd" and self.job_type is None else SIZES_XL)[aspect_ratio]

    @property
    def short_name(self) -> str:
        """The name people know it by: a v1 checkpoint's file stem (`absolutereality_v181` for
        `absolutereality_v181.safetensors [3d9d4d2b]`), a v2 model's name as it is."""
        return self.name if self.job_type is not None else _stem(self.name) or self.name

    @property
    def can_vary(self) -> bool:
        """Whether an image of this model can be varied (image-to-image): every v1 model (`/sd/transform`,
        `/sdxl/transform`), a v2 model only where an img2img job type of its family is known."""
        return self.job_type is None or self.img2img_type is not None


def can_upscale(api: str) -> bool:
    """Whether `api` ("v1" or "v2") can upscale a result (see `UPSCALERS` for the evidence)."""
    return api in UPSCALERS


@dataclass(frozen=True)
class PreparedJob:
    """A request bound to a model: seed fixed, steps fitted, and what changed on the way said aloud."""

    request: GenerationRequest
    model: Model
    steps: int
    fallback_from: str | None = None  # the unknown model name replaced by the default
    ignored: tuple[str, ...] = ()  # parameters the user set that this model does not take
    capped_steps: int | None = None  # the steps asked for, when above the model's maximum
    kind: str = "generate"  # one of JOB_KINDS: a new image, a variation of `input_image`, or it upscaled
    input_image: bytes | None = field(default=None, repr=False)  # transform and upscale: the image worked on
    strength: float | None = None  # transform: how much of the image is redone (0-1)

    def __post_init__(self) -> None:
        if self.kind not in JOB_KINDS:
            raise ValueError(f"unknown job kind {self.kind!r}")
        if (self.kind == "generate") == bool(self.input_image):
            raise ValueError("transform and upscale jobs need an input image; a generation takes none")

    @property
    def poll_key(self) -> str:
        """What the poll policy learns durations under: a transform runs shorter than its model's generation
        (a share of the steps), an upscale is the same work whatever the model."""
        return {"generate": self.model.name, "transform": f"{self.model.name} (transform)"}.get(self.kind, "upscale")

    def images(self) -> list[PreparedJob]:
        """One job per image of the request (`count:`), each with its own seed (`GenerationRequest.seeds`): what
        goes to Prodia, which takes one image per job."""
        if self.request.count == 1:
            return [self]
        return [replace(self, request=replace(self.request, seed=seed, count=1)) for seed in self.request.seeds()]


def _stem(name: str) -> str:
    """A v1 checkpoint's file stem: `absolutereality_v181` for `absolutereality_v181.safetensors [3d9d4d2b]`."""
    return re.sub(r"\.(safetensors|ckpt)$", "", name.split(" [")[0])


def _v1_aliases(names: Iterable[str]) -> dict[str, str]:
    """Short names: `absolutereality_v181` for the file stem, `absolutereality` for the family.

    Where several versions share a family name, the last listed wins (the lists run old to new).
    """
    aliases: dict[str, str] = {}
    for name in names:
        stem = _stem(name).lower()
        aliases[stem] = name
        family = re.sub(r"[_-]?v?\d[\w.]*$", "", stem)
        if family and family != stem:
            aliases[family] = name
    return aliases


def v1_models(sd: Iterable[str] = SD_MODELS, sdxl: Iterable[str] = SDXL_MODELS) -> list[Model]:
    sd, sdxl = list(sd), list(sdxl)
    aliases = _v1_aliases([*sd, *sdxl])
    if DEFAULT_SD_MODEL in sd:
        aliases["absolutereality"] = DEFAULT_SD_MODEL  # the original provider's default, kept as the family's name
    by_target: dict[str, list[str]] = {}
    for alias, target in aliases.items():
        by_target.setdefault(target, []).append(alias)
    models = [Model(n, "sd", aliases=tuple(by_target.get(n, ()))) for n in sd]
    models += [Model(n, "sdxl", aliases=tuple(by_target.get(n, ()))) for n in sdxl]
    return models


def _v2(
    name: str, job_type: str, aliases: tuple[str, ...], fields: str, evidence: str, img2img: str = "", **limits: int
) -> Model:
    """A v2 model: it takes what its job type's documented `fields` carry and ignores the rest. `img2img`: its
    image-to-image job type and that type's fields ("type field ..."), where one is known."""
    sent = frozenset(fields.split())
    ignores = frozenset(p for p in (*TUNING, "aspect_ratio", "style") if V2_FIELDS.get(p) not in sent)
    img2img_type, *img2img_fields = img2img.split() or [""]
    return Model(name, "flux" if "flux" in job_type else "sd", job_type, aliases, ignores=ignores, fields=sent,
                 evidence=evidence, img2img_type=img2img_type or None, img2img_fields=frozenset(img2img_fields),
                 **limits)  # fmt: skip


V2_MODELS = {
    m.name: m
    for m in (
        _v2("flux-fast", "inference.flux-fast.schnell.txt2img.v2", ("flux",), "prompt seed steps width style_preset",
            "Prodia's docs and official client", max_steps=4, default_steps=4),
        _v2("flux-schnell", "inference.flux.schnell.txt2img.v1", ("schnell",), "prompt seed steps width",
            "Prodia's official client", max_steps=4, default_steps=4),
        _v2("flux-dev", "inference.flux.dev.txt2img.v1", ("dev",), "prompt seed steps width",
            "Prodia's official client"),
        # Job type and fields known from third-party code only: offered when PRODIA_V2_MODELS names them. Their
        # img2img types too (third-party code names `inference.sdxl.img2img.v1` and `inference.sd15.img2img.v1`
        # "with strength control"); the FLUX.1 models above have no documented img2img type (Prodia documents
        # one for FLUX.2 pro and flex only, prodia-api.md 3a), so they cannot vary.
        _v2("sdxl", "inference.sdxl.txt2img.v1", ("sd-xl",), "prompt seed steps negative_prompt style_preset",
            "third-party code",
            "inference.sdxl.img2img.v1 prompt seed steps negative_prompt strength"),
        _v2("sd15", "inference.sd15.txt2img.v1", ("sd1.5", "stable-diffusion"), "prompt seed steps negative_prompt",
            "third-party code", "inference.sd15.img2img.v1 prompt seed steps negative_prompt strength"),
    )
}  # fmt: skip


def v2_models(names: Iterable[str] = V2_DEFAULT_MODELS) -> list[Model]:
    return [V2_MODELS[name] for name in names]


class Catalog:
    """The models one Prodia API offers, with the default first."""

    def __init__(self, models: Iterable[Model], default: str) -> None:
        self.models: dict[str, Model] = {m.name: m for m in models}
        self.default = self.models[default]
        self._by_key: dict[str, Model] = {}
        for model in self.models.values():
            for key in (model.name, *model.aliases):
                self._by_key.setdefault(key.lower(), model)

    @classmethod
    def from_v1_lists(cls, sd: list[str], sdxl: list[str]) -> Catalog:
        """A v1 catalog from Prodia's live lists; the default stays the original's if Prodia still has it."""
        if not sd and not sdxl:
            raise ValueError("empty model lists")
        models = v1_models(sd, sdxl)
        default = DEFAULT_SD_MODEL if DEFAULT_SD_MODEL in sd else models[0].name
        return cls(models, default)

    @classmethod
    def for_api(cls, api: str, v2_names: Iterable[str] = V2_DEFAULT_MODELS) -> Catalog:
        """The built-in catalog of `api`; for v2, the models named (the first is the default)."""
        if api == "v1":
            return cls(v1_models(), DEFAULT_SD_MODEL)
        models = v2_models(v2_names)
        return cls(models, models[0].name)

    def __contains__(self, name: str) -> bool:
        return self.get(name) is not None

    def __len__(self) -> int:
        return len(self.models)

    def can_vary(self, name: str | None) -> bool:
        """Whether an image made with model `name` (a name or alias; None: the default) can be varied."""
        return self.resolve(name)[0].can_vary

    def get(self, name: str) -> Model | None:
        """The model with this exact name, else the one with this alias (case-insensitive), else None."""
        return self.models.get(name) or self._by_key.get(name.strip().lower())

    def resolve(self, name: str | None) -> tuple[Model, bool]:
        """`get_model` of the original provider: (model, fell_back). Unknown names give the default."""
        if not name:
            return self.default, False
        model = self.get(name)
        return (model, False) if model else (self.default, True)

    def search(self, query: str, limit: int = 25) -> list[Model]:
        """Models ranked for autocomplete: name or alias prefix, then word prefix, then substring."""
        query = query.strip().lower()
        if not query:
            return [self.default, *[m for m in self.models.values() if m is not self.default]][:limit]
        ranked: list[tuple[int, int, str, Model]] = []
        for model in self.models.values():
            keys = [model.name.lower(), *model.aliases]
            rank = min(_rank(key, query) for key in keys)
            if rank < 3:
                ranked.append((rank, len(model.name), model.name.lower(), model))
        ranked.sort(key=lambda r: r[:3])
        return [r[3] for r in ranked[:limit]]

    def prepare(self, request: GenerationRequest) -> PreparedJob:
        """Bind a request to its model: fix the seed, fit the steps, list what the model ignores."""
        model, fell_back = self.resolve(request.model)
        ignored = tuple(
            name
            for name, changed in (
                ("negative_prompt", bool(request.negative_prompt)),
                ("cfg", request.cfg != DEFAULT_CFG),
                ("sampler", request.sampler != DEFAULT_SAMPLER),
                ("aspect_ratio", request.aspect_ratio != "square"),
                ("style", request.style is not None),
            )
            if changed and name in model.ignores
        )
        steps, capped = request.steps, None
        if steps == DEFAULT_STEPS:
            steps = model.default_steps
        elif steps > model.max_steps:
            steps, capped = model.max_steps, steps
        fixed = replace(request.with_seed(), model=model.name)
        return PreparedJob(
            request=fixed,
            model=model,
            steps=steps,
            fallback_from=request.model if fell_back else None,
            ignored=ignored,
            capped_steps=capped,
        )

    def prepare_variation(
        self, request: GenerationRequest, image: bytes, strength: float = DEFAULT_STRENGTH
    ) -> PreparedJob:
        """A variation of `image` (image-to-image) with `request`'s prompt, model, steps and seed; `strength`
        is the share redone (0-1). InvalidInput if the model cannot vary (see `Model.can_vary`)."""
        check_range("strength", strength, STRENGTH_RANGE, integer=False)
        job = self.prepare(request)
        if not job.model.can_vary:
            raise InvalidInput(f"{job.model.name} has no image-to-image job type", problem="cannot_vary",
                               model=job.model.name)  # fmt: skip
        ignored = job.ignored
        style_sent = job.model.job_type is not None and "style_preset" in job.model.img2img_fields
        if job.request.style and not style_sent and "style" not in ignored:  # v1 documents it for generate only
            ignored = (*ignored, "style")
        return replace(job, kind="transform", input_image=image, strength=float(strength), ignored=ignored)

    def prepare_upscale(self, request: GenerationRequest, image: bytes) -> PreparedJob:
        """`image` upscaled `UPSCALE_FACTOR` times; `request` is what made it (kept for the result's details)."""
        one = replace(request, count=1)  # one image: the one clicked
        return replace(self.prepare(one), kind="upscale", input_image=image, ignored=(), capped_steps=None)


def _rank(key: str, query: str) -> int:
    if key.startswith(query):
        return 0
    if any(word.startswith(query) for word in re.split(r"[\s_\-.\[\]()]+", key)):
        return 1
    return 2 if query in key else 3
