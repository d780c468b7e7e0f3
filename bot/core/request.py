"""What a user asks for: the original provider's parameters, their defaults and ranges."""

from __future__ import annotations

import random
from dataclasses import dataclass, replace

from .errors import InvalidInput
from .model_lists import DEFAULT_SAMPLER, SAMPLERS

DEFAULT_STEPS = 20
DEFAULT_CFG = 7.0

ASPECT_RATIOS = ("square", "portrait", "landscape")
STEPS_RANGE = (1, 25)
CFG_RANGE = (0.0, 20.0)
SEED_RANGE = (0, 2**32 - 1)
COUNT_RANGE = (1, 4)  # images in one request (`count:`): Discord shows up to four embeds as one grid
# Caps on what a user types, each declared in the command's signature (Discord enforces it) and checked again here
# and in the cogs: a request over one is refused privately, never cut (what reaches Prodia is what was typed).
PROMPT_MAX = 1000  # characters; Discord allows 6000 in options, Prodia documents no limit
NEGATIVE_PROMPT_MAX = 1000
MODEL_NAME_MAX = 100  # a model name as typed: Discord's longest choice value (autocomplete offers no longer one)


# Prodia's style presets (`style_preset`), as documented for v1's generate endpoints and v2's flux-fast schnell.
STYLES = (
    "3d-model", "analog-film", "anime", "cinematic", "comic-book", "digital-art", "enhance", "fantasy-art",
    "isometric", "line-art", "low-poly", "neon-punk", "origami", "photographic", "pixel-art", "texture", "craft-clay",
)  # fmt: skip


def random_seed() -> int:
    return random.randint(*SEED_RANGE)


@dataclass(frozen=True)
class GenerationRequest:
    """A validated generation request. `seed=None` means "pick one"; `with_seed()` fixes it."""

    prompt: str
    negative_prompt: str = ""
    model: str | None = None  # a catalog name or alias; None: the default model
    steps: int = DEFAULT_STEPS
    cfg: float = DEFAULT_CFG
    seed: int | None = None
    sampler: str = DEFAULT_SAMPLER
    aspect_ratio: str = "square"
    style: str | None = None  # one of STYLES (Prodia's style presets), where the model takes one
    count: int = 1  # images made at once, with seeds seed, seed + 1, … (`seeds`)

    def __post_init__(self) -> None:
        prompt = " ".join(self.prompt.split()) if isinstance(self.prompt, str) else ""
        if not prompt:
            raise InvalidInput("empty prompt", problem="prompt_empty")
        check_length("prompt", prompt, PROMPT_MAX)
        object.__setattr__(self, "prompt", prompt)
        negative = " ".join((self.negative_prompt or "").split())
        check_length("negative_prompt", negative, NEGATIVE_PROMPT_MAX)
        object.__setattr__(self, "negative_prompt", negative)
        _check_range("steps", self.steps, STEPS_RANGE, integer=True)
        _check_range("cfg", self.cfg, CFG_RANGE, integer=False)
        object.__setattr__(self, "cfg", float(self.cfg))
        if self.seed is not None:
            _check_range("seed", self.seed, SEED_RANGE, integer=True)
        if self.sampler not in SAMPLERS:
            raise InvalidInput(
                f"unknown sampler {self.sampler!r}", problem="choice", name="sampler", allowed=", ".join(SAMPLERS)
            )
        if self.aspect_ratio not in ASPECT_RATIOS:
            raise InvalidInput(
                f"unknown aspect ratio {self.aspect_ratio!r}",
                problem="choice",
                name="aspect_ratio",
                allowed=", ".join(ASPECT_RATIOS),
            )

        _check_range("count", self.count, COUNT_RANGE, integer=True)
        if self.style is not None and self.style not in STYLES:
            allowed = ", ".join(STYLES)
            raise InvalidInput(f"unknown style {self.style!r}", problem="choice", name="style", allowed=allowed)

    def seeds(self) -> list[int]:
        """The seed of each image (the seed fixed): seed, seed + 1, …, past the largest seed going on from 0."""
        assert self.seed is not None, "seeds of a request whose seed is not fixed"
        return [(self.seed + n) % (SEED_RANGE[1] + 1) for n in range(self.count)]

    def with_seed(self, seed: int | None = None) -> GenerationRequest:
        """This request with its seed fixed: `seed`, else the one it has, else a random one."""
        return replace(self, seed=seed if seed is not None else self.seed if self.seed is not None else random_seed())


def check_length(name: str, value: str, limit: int) -> None:
    """InvalidInput naming option `name` and its limit if `value` is over `limit` characters."""
    if len(value) > limit:
        raise InvalidInput(f"{name} too long", problem="too_long", name=name, limit=limit)


def _check_range(name: str, value: object, bounds: tuple[float, float], *, integer: bool) -> None:
    low, high = bounds
    ok_type = isinstance(value, int) if integer else isinstance(value, int | float)
    if isinstance(value, bool) or not ok_type or not low <= value <= high:  # type: ignore[operator]
        raise InvalidInput(
            f"{name}={value!r} out of range", problem="range", name=name, low=_number(low), high=_number(high)
        )


check_range = _check_range  # for the other checks of the core (a variation's strength)


def _number(value: float) -> str:
    """2.0 -> "2", 4294967295 -> "4294967295" (no exponent), 0.5 -> "0.5"."""
    return str(int(value)) if float(value).is_integer() else str(value)
