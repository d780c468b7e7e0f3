"""GenerationRequest validation, the model catalog, and the message catalogue behind every error."""

from __future__ import annotations

import re
from dataclasses import fields, replace

import pytest

import bot.core.errors
import bot.core.jobs
from bot.core.catalog import TUNING, Catalog, Model
from bot.core.errors import ImagineError, InvalidInput
from bot.core.messages import EN, error_text, text
from bot.core.model_lists import DEFAULT_SAMPLER, DEFAULT_SD_MODEL, SAMPLERS, SD_MODELS, SDXL_MODELS, V2_MODEL_NAMES
from bot.core.request import ASPECT_RATIOS, PROMPT_MAX, SEED_RANGE, GenerationRequest
from tests import REPO_ROOT


def _refusal(**kwargs: object) -> InvalidInput:
    kwargs.setdefault("prompt", "a red fox")
    with pytest.raises(InvalidInput) as caught:
        GenerationRequest(**kwargs)  # type: ignore[arg-type]
    return caught.value


# --- GenerationRequest ---


def test_request_defaults() -> None:
    request = GenerationRequest("a red fox")
    assert (request.steps, request.cfg, request.sampler, request.aspect_ratio) == (20, 7.0, "DPM++ 2M Karras", "square")


def test_request_default_seed_and_model_are_unset() -> None:
    request = GenerationRequest("a red fox")
    assert (request.seed, request.model, request.negative_prompt) == (None, None, "")


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("steps", 0, "steps must be between 1 and 25."),
        ("steps", 26, "steps must be between 1 and 25."),
        ("steps", True, "steps must be between 1 and 25."),
        ("steps", 20.0, "steps must be between 1 and 25."),
        ("cfg", -1, "cfg must be between 0 and 20."),
        ("cfg", 21, "cfg must be between 0 and 20."),
        ("cfg", False, "cfg must be between 0 and 20."),
    ],
)
def test_out_of_range_value_message_states_the_range(name: str, value: object, expected: str) -> None:
    assert error_text(_refusal(**{name: value})) == expected


@pytest.mark.parametrize("seed", [-1, 2**32, True])
def test_out_of_range_seed_is_refused(seed: object) -> None:
    error = _refusal(seed=seed)
    assert (error.key, error.params["name"]) == ("input.range", "seed")


def test_seed_range_message_states_exact_bounds() -> None:
    assert error_text(_refusal(seed=2**32)) == "seed must be between 0 and 4294967295."


@pytest.mark.parametrize("seed", [SEED_RANGE[0], SEED_RANGE[1]])
def test_seed_bounds_are_accepted(seed: int) -> None:
    assert GenerationRequest("a red fox", seed=seed).seed == seed


def test_cfg_integer_is_stored_as_float() -> None:
    cfg = GenerationRequest("a red fox", cfg=12).cfg
    assert (cfg, type(cfg)) == (12.0, float)


@pytest.mark.parametrize("prompt", ["", "   ", "\n\t  \n"])
def test_empty_prompt_is_refused_with_clear_message(prompt: str) -> None:
    assert error_text(_refusal(prompt=prompt)) == "The prompt is empty. Describe the image you want."


def test_too_long_prompt_is_refused_naming_the_limit() -> None:
    assert error_text(_refusal(prompt="a" * (PROMPT_MAX + 1))) == "The prompt is too long: at most 1000 characters."


def test_prompt_at_the_limit_is_accepted() -> None:
    assert len(GenerationRequest("a" * PROMPT_MAX).prompt) == PROMPT_MAX


def test_too_long_negative_prompt_is_refused_naming_it() -> None:
    message = error_text(_refusal(negative_prompt="b" * 1001))
    assert message == "The negative_prompt is too long: at most 1000 characters."


def test_prompt_whitespace_is_collapsed() -> None:
    assert GenerationRequest("  a   red\n\tfox  ").prompt == "a red fox"


def test_negative_prompt_whitespace_is_collapsed() -> None:
    assert GenerationRequest("x", negative_prompt=" blurry \n  dark ").negative_prompt == "blurry dark"


def test_prompt_length_is_counted_after_collapsing_whitespace() -> None:
    assert GenerationRequest("a" + " " * 2000 + "b").prompt == "a b"


def test_unknown_sampler_is_refused_listing_choices() -> None:
    message = error_text(_refusal(sampler="Euler b"))
    assert message == f"sampler must be one of: {', '.join(SAMPLERS)}."


def test_unknown_aspect_ratio_is_refused_listing_choices() -> None:
    assert error_text(_refusal(aspect_ratio="wide")) == "aspect_ratio must be one of: square, portrait, landscape."


def test_with_seed_keeps_a_given_seed() -> None:
    assert GenerationRequest("x", seed=42).with_seed().seed == 42


def test_with_seed_argument_overrides_the_seed() -> None:
    assert GenerationRequest("x", seed=42).with_seed(7).seed == 7


def test_with_seed_fixes_a_random_seed_in_range() -> None:
    seeded = GenerationRequest("x").with_seed()
    assert isinstance(seeded.seed, int)
    assert SEED_RANGE[0] <= seeded.seed <= SEED_RANGE[1]
    assert seeded.with_seed().seed == seeded.seed


def test_with_seed_leaves_the_original_unchanged() -> None:
    original = GenerationRequest("x")
    original.with_seed()
    assert original.seed is None


# --- Catalog: contents and resolution ---


@pytest.fixture(scope="module")
def v1() -> Catalog:
    return Catalog.for_api("v1")


@pytest.fixture(scope="module")
def v2() -> Catalog:
    return Catalog.for_api("v2", V2_MODEL_NAMES)  # every v2 model, the third-party-only ones included


def test_v1_has_the_65_sd_models() -> None:
    assert len(SD_MODELS) == 65


def test_v1_lists_sd_models_then_sdxl_models(v1: Catalog) -> None:
    assert list(v1.models) == [*SD_MODELS, *SDXL_MODELS]


def test_v1_families(v1: Catalog) -> None:
    assert {name for name, m in v1.models.items() if m.family == "sdxl"} == set(SDXL_MODELS)
    assert {name for name, m in v1.models.items() if m.family == "sd"} == set(SD_MODELS)


def test_v1_default_is_absolutereality(v1: Catalog) -> None:
    assert v1.default.name == DEFAULT_SD_MODEL == "absolutereality_v181.safetensors [3d9d4d2b]"


def test_v2_models_and_default(v2: Catalog) -> None:
    assert list(v2.models) == ["flux-fast", "flux-schnell", "flux-dev", "sdxl", "sd15"]
    assert v2.default.name == "flux-fast"


def test_v2_offers_only_job_types_with_first_party_evidence_by_default() -> None:
    catalog = Catalog.for_api("v2")
    assert list(catalog.models) == ["flux-fast", "flux-schnell", "flux-dev"]
    assert [m.job_type for m in catalog.models.values()] == [
        "inference.flux-fast.schnell.txt2img.v2",  # Prodia's docs and the official client's tests
        "inference.flux.schnell.txt2img.v1",  # the official client's tests
        "inference.flux.dev.txt2img.v1",  # the official client's tests
    ]


def test_v2_default_model_is_the_first_one_named() -> None:
    catalog = Catalog.for_api("v2", ["flux-dev", "sdxl"])
    assert (list(catalog.models), catalog.default.name) == (["flux-dev", "sdxl"], "flux-dev")


def test_v2_third_party_models_send_only_prompt_seed_steps_and_negative_prompt(v2: Catalog) -> None:
    assert v2.models["sdxl"].fields == {"prompt", "seed", "steps", "negative_prompt", "style_preset"}
    assert v2.models["sdxl"].ignores == {"cfg", "sampler", "aspect_ratio"}
    assert v2.models["sd15"].fields == {"prompt", "seed", "steps", "negative_prompt"}
    assert v2.models["sd15"].ignores == {"cfg", "sampler", "aspect_ratio", "style"}


def test_resolve_exact_name(v1: Catalog) -> None:
    name = "deliberate_v2.safetensors [10ec4b29]"
    assert v1.resolve(name) == (v1.models[name], False)


@pytest.mark.parametrize("alias", ["absolutereality", "AbsoluteReality", "ABSOLUTEREALITY", " absolutereality "])
def test_resolve_family_alias_case_insensitively(v1: Catalog, alias: str) -> None:
    model, fell_back = v1.resolve(alias)
    assert (model.name, fell_back) == ("absolutereality_v181.safetensors [3d9d4d2b]", False)


def test_resolve_file_stem_alias(v1: Catalog) -> None:
    assert v1.resolve("absolutereality_v16")[0].name == "absolutereality_V16.safetensors [37db0fc3]"


def test_family_alias_picks_the_last_listed_version(v1: Catalog) -> None:
    assert v1.get("dreamshaper").name == "dreamshaper_8.safetensors [9d40847d]"


def test_file_stem_alias_keeps_dotted_versions(v1: Catalog) -> None:
    assert v1.get("realistic_vision_v5.0").name == "Realistic_Vision_V5.0.safetensors [614d1063]"


def test_resolve_v2_alias(v2: Catalog) -> None:
    assert v2.resolve("FLUX") == (v2.models["flux-fast"], False)


def test_resolve_unknown_name_falls_back_to_default(v2: Catalog) -> None:
    assert v2.resolve("no-such-model") == (v2.default, True)


@pytest.mark.parametrize("name", [None, ""])
def test_resolve_no_name_gives_default_without_fallback(v2: Catalog, name: str | None) -> None:
    assert v2.resolve(name) == (v2.default, False)


def test_contains_uses_aliases(v2: Catalog) -> None:
    assert ("schnell" in v2, "nothing" in v2) == (True, False)


# --- Catalog.prepare ---


def test_prepare_reports_fallback_from(v2: Catalog) -> None:
    job = v2.prepare(GenerationRequest("x", model="midjourney"))
    assert (job.model.name, job.fallback_from, job.request.model) == ("flux-fast", "midjourney", "flux-fast")


def test_prepare_known_model_has_no_fallback(v2: Catalog) -> None:
    assert v2.prepare(GenerationRequest("x", model="sdxl")).fallback_from is None


def test_prepare_fixes_the_seed(v2: Catalog) -> None:
    assert v2.prepare(GenerationRequest("x")).request.seed is not None


def test_prepare_keeps_a_given_seed(v2: Catalog) -> None:
    assert v2.prepare(GenerationRequest("x", seed=1234)).request.seed == 1234


def test_prepare_flux_ignores_only_changed_tuning_params(v2: Catalog) -> None:
    job = v2.prepare(GenerationRequest("x", negative_prompt="blurry", cfg=9))
    assert job.ignored == ("negative_prompt", "cfg")


def test_prepare_flux_with_default_tuning_ignores_nothing(v2: Catalog) -> None:
    assert v2.prepare(GenerationRequest("x", cfg=7.0, sampler=DEFAULT_SAMPLER)).ignored == ()


def test_prepare_flux_reports_changed_sampler(v2: Catalog) -> None:
    assert v2.prepare(GenerationRequest("x", sampler="Euler a")).ignored == ("sampler",)


def test_prepare_sdxl_takes_the_negative_prompt_and_reports_what_it_ignores(v2: Catalog) -> None:
    job = v2.prepare(
        GenerationRequest("x", model="sdxl", negative_prompt="blurry", cfg=9, sampler="Euler", aspect_ratio="portrait")
    )
    assert job.ignored == ("cfg", "sampler", "aspect_ratio")


def test_prepare_flux_takes_the_aspect_ratio(v2: Catalog) -> None:
    assert v2.prepare(GenerationRequest("x", aspect_ratio="landscape")).ignored == ()


def test_prepare_default_steps_become_the_models_default(v2: Catalog) -> None:
    job = v2.prepare(GenerationRequest("x", model="flux-fast"))
    assert (job.steps, job.capped_steps) == (4, None)


def test_prepare_default_steps_on_sdxl_stay_20(v2: Catalog) -> None:
    assert v2.prepare(GenerationRequest("x", model="sdxl")).steps == 20


def test_prepare_caps_steps_above_the_models_maximum(v2: Catalog) -> None:
    job = v2.prepare(GenerationRequest("x", model="flux-fast", steps=10))
    assert (job.steps, job.capped_steps) == (4, 10)


def test_prepare_keeps_steps_within_the_maximum(v2: Catalog) -> None:
    job = v2.prepare(GenerationRequest("x", model="flux-fast", steps=3))
    assert (job.steps, job.capped_steps) == (3, None)


# --- Catalog.search ---


@pytest.fixture
def ranked() -> Catalog:
    models = [
        Model("bobcat", "sd"),  # substring
        Model("big-cat", "sd"),  # word prefix
        Model("cat", "sd"),  # prefix
        Model("dog", "sd"),  # no match
        Model("zebra", "sd", aliases=("catalogue-zebra",)),  # prefix through its alias
    ]
    return Catalog(models, "dog")


def test_search_ranks_prefix_then_word_prefix_then_substring(ranked: Catalog) -> None:
    names = [m.name for m in ranked.search("cat")]
    assert names == ["cat", "zebra", "big-cat", "bobcat"]


def test_search_matches_aliases(v2: Catalog) -> None:
    assert [m.name for m in v2.search("stable")] == ["sd15"]


def test_search_is_case_insensitive(v2: Catalog) -> None:
    assert [m.name for m in v2.search("  DEV ")] == ["flux-dev"]


def test_search_ranks_real_models(v2: Catalog) -> None:
    # "dev" alias prefix, "stable-diffusion" word prefix, "sdxl" substring.
    assert [m.name for m in v2.search("d")] == ["flux-dev", "sd15", "sdxl"]


def test_search_empty_query_returns_default_first(v2: Catalog) -> None:
    assert [m.name for m in v2.search("")] == ["flux-fast", "flux-schnell", "flux-dev", "sdxl", "sd15"]


def test_search_empty_query_on_v1_starts_with_default_and_respects_limit(v1: Catalog) -> None:
    found = v1.search("   ")
    assert (len(found), found[0].name) == (25, DEFAULT_SD_MODEL)


def test_search_respects_limit(v1: Catalog) -> None:
    assert len(v1.search("a", limit=3)) == 3


def test_search_without_match_is_empty(v2: Catalog) -> None:
    assert v2.search("zzzz") == []


# --- Message catalogue ---


def _source_text() -> str:
    files = sorted([*(REPO_ROOT / "bot").rglob("*.py"), *(REPO_ROOT / "cogs").rglob("*.py")])
    return "\n".join(f.read_text(encoding="utf-8") for f in files)


def test_every_literal_text_key_exists_in_english() -> None:
    keys = set(re.findall(r"""\btext\(\s*["']([\w.]+)["']""", _source_text()))
    assert keys, "the regex found no text() calls"
    assert sorted(keys - EN.keys()) == []


def test_every_invalid_input_problem_has_a_message() -> None:
    problems = set(re.findall(r"""problem=["'](\w+)["']""", _source_text()))
    assert {"prompt_empty", "too_long", "range", "choice"} <= problems
    assert sorted(f"input.{p}" for p in problems if f"input.{p}" not in EN) == []


def _error_classes() -> list[type[ImagineError]]:
    found = []
    for module in (bot.core.errors, bot.core.jobs):
        for value in vars(module).values():
            if isinstance(value, type) and issubclass(value, ImagineError) and value not in found:
                found.append(value)
    return found


@pytest.mark.parametrize("cls", _error_classes(), ids=lambda c: c.__name__)
def test_every_error_class_key_exists_in_english(cls: type[ImagineError]) -> None:
    assert cls.key in EN


def test_every_aspect_ratio_has_a_label() -> None:
    assert sorted(r for r in ASPECT_RATIOS if f"aspect.{r}" not in EN) == []


def test_every_request_field_and_ignorable_param_has_a_label() -> None:
    names = {f.name for f in fields(GenerationRequest)} - {"prompt"} | TUNING
    assert sorted(n for n in names if f"field.{n}" not in EN) == []


@pytest.mark.parametrize("cls", _error_classes(), ids=lambda c: c.__name__)
def test_error_text_never_shows_the_exception_detail(cls: type[ImagineError]) -> None:
    detail = "internal-DETAIL-CANARY token=abc123"
    error = cls(detail, problem="range") if cls is InvalidInput else cls(detail)
    assert "CANARY" not in error_text(error)


def test_error_text_for_non_imagine_error_is_the_generic_message() -> None:
    assert error_text(RuntimeError("internal-DETAIL-CANARY")) == EN["error.unexpected"]


def test_error_text_fills_params() -> None:
    assert error_text(bot.core.jobs.QueueFull("full", limit=50)) == (
        "The bot is at capacity (50 images waiting). Please try again in a minute."
    )


def test_text_unknown_locale_falls_back_to_english() -> None:
    assert text("progress.generating", "xx-YY") == "Generating"


def test_text_missing_key_gives_the_generic_message() -> None:
    assert text("no.such.key") == EN["error.unexpected"]


def test_a_style_is_kept_where_the_model_takes_one_and_listed_as_ignored_where_not(v1: Catalog, v2: Catalog) -> None:
    request = GenerationRequest(prompt="a fox", style="anime")
    assert v1.prepare(request).ignored == ()  # v1 generate takes style_preset
    assert v1.prepare_variation(request, b"\x89PNG").ignored == ("style",)  # documented for generate only
    assert v2.prepare(replace(request, model="flux-dev")).ignored == ("style",)
    assert v2.prepare(replace(request, model="flux-fast")).ignored == ()


def test_an_unknown_style_is_refused_naming_the_choices() -> None:
    with pytest.raises(InvalidInput) as refused:
        GenerationRequest(prompt="a fox", style="watercolour")
    assert refused.value.key == "input.choice" and "pixel-art" in refused.value.params["allowed"]


@pytest.mark.parametrize("seed", [1.5, "7", True])
def test_a_seed_must_be_a_whole_number(seed: object) -> None:
    with pytest.raises(InvalidInput) as refused:
        GenerationRequest(prompt="a fox", seed=seed)  # type: ignore[arg-type]
    assert refused.value.key == "input.range" and refused.value.params["name"] == "seed"


def test_a_prompt_that_is_not_text_is_an_empty_prompt() -> None:
    with pytest.raises(InvalidInput) as refused:
        GenerationRequest(prompt=None)  # type: ignore[arg-type]
    assert refused.value.key == "input.prompt_empty"


def test_an_unknown_style_names_the_option_and_lists_the_presets_in_order() -> None:
    with pytest.raises(InvalidInput) as refused:
        GenerationRequest(prompt="a fox", style="watercolour")
    assert refused.value.params["name"] == "style"
    assert refused.value.params["allowed"].startswith("3d-model, analog-film, anime, ")
