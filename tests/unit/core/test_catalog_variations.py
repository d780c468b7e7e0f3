"""What a user is told about a variation (`Catalog.prepare_variation`), what a server's content policy may be set to,
and Russian sentences whose count is a fraction or ends in 12-14 past a hundred: the cases the mutation run found
unasked. The rest of the catalog and the catalogue is in test_request_catalog.py and test_messages.py."""

from __future__ import annotations

from dataclasses import replace

import pytest

from bot.core.catalog import Catalog
from bot.core.errors import InvalidInput
from bot.core.messages import error_text, plural_category, text
from bot.core.model_lists import V2_MODEL_NAMES
from bot.core.request import GenerationRequest
from bot.core.store import GuildSettings, Store

FOX = GenerationRequest(prompt="a fox", style="anime")


@pytest.fixture(scope="module")
def v2() -> Catalog:
    return Catalog.for_api("v2", V2_MODEL_NAMES)


def test_a_model_that_cannot_vary_is_refused_naming_it(v2: Catalog) -> None:
    with pytest.raises(InvalidInput) as refused:
        v2.prepare_variation(replace(FOX, model="flux-dev"), b"\x89PNG")
    assert (refused.value.key, refused.value.params["model"]) == ("input.cannot_vary", "flux-dev")
    assert "flux-dev" in error_text(refused.value)


@pytest.mark.parametrize("strength", [-0.1, 1.01])
def test_a_strength_out_of_range_is_refused_naming_it(v2: Catalog, strength: float) -> None:
    with pytest.raises(InvalidInput) as refused:
        v2.prepare_variation(replace(FOX, model="sdxl"), b"\x89PNG", strength)
    assert (refused.value.key, refused.value.params["name"]) == ("input.range", "strength")


def test_a_style_a_models_image_to_image_type_does_not_take_is_said_to_be_ignored(v2: Catalog) -> None:
    sdxl = replace(FOX, model="sdxl")
    assert v2.prepare(sdxl).ignored == ()  # its text-to-image type takes style_preset
    job = v2.prepare_variation(sdxl, b"\x89PNG", 1)
    assert job.ignored == ("style",)  # its image-to-image type does not
    assert (job.kind, job.strength, type(job.strength)) == ("transform", 1.0, float)
    assert v2.prepare_variation(replace(sdxl, style=None), b"\x89PNG").ignored == ()


def test_a_style_ignored_by_the_model_already_is_said_once_for_a_variation(v2: Catalog) -> None:
    sd15 = replace(FOX, model="sd15")  # neither of its job types takes style_preset
    assert v2.prepare(sd15).ignored == ("style",)
    assert v2.prepare_variation(sd15, b"\x89PNG").ignored == ("style",)
    v1 = Catalog.for_api("v1").prepare_variation(FOX, b"\x89PNG")  # v1 documents it for generate only
    assert v1.ignored == ("style",)


@pytest.mark.parametrize(
    ("field", "allowed", "refused"),
    [("nsfw", ("block", "spoiler"), "allow"), ("nsfw_age_restricted", ("allow", "block", "spoiler"), "show")],
)
async def test_a_content_policy_takes_only_its_choices(store: Store, field: str, allowed, refused: str) -> None:
    for value in allowed:
        assert getattr(await store.update_guild_settings(1, **{field: value}), field) == value
    with pytest.raises(ValueError, match=field):
        await store.update_guild_settings(1, **{field: refused})
    assert getattr(await store.guild_settings(1), field) == allowed[-1]
    assert getattr(await store.update_guild_settings(1, **{field: None}), field) == getattr(GuildSettings(), field)


def test_russian_counts_ending_in_12_to_14_past_a_hundred_take_the_many_form() -> None:
    assert [plural_category("ru", n) for n in (112, 113, 114, 122)] == ["many", "many", "many", "few"]


def test_a_russian_fraction_takes_the_genitive_singular() -> None:
    assert text("limit.daily_cap", "ru", limit=1.5).startswith(
        "Этот сервер уже исчерпал дневной лимит в 1.5 изображения."
    )


def test_a_request_for_several_images_is_one_job_per_image_with_seeds_counting_up(v2: Catalog) -> None:
    jobs = v2.prepare(GenerationRequest(prompt="a fox", seed=7, count=3)).images()
    assert [(job.request.seed, job.request.count) for job in jobs] == [(7, 1), (8, 1), (9, 1)]
    assert [job.request.seed for job in v2.prepare(GenerationRequest(prompt="a fox", seed=7)).images()] == [7]


def test_whether_an_image_can_be_varied_depends_on_its_model(v2: Catalog) -> None:
    assert (v2.can_vary("sdxl"), v2.can_vary("flux-dev"), v2.can_vary("sd15")) == (True, False, True)


def test_an_unexpected_error_is_told_in_the_users_language() -> None:
    assert error_text(RuntimeError("internal"), "ru") == text("error.unexpected", "ru") != text("error.unexpected")
