"""v1's live model lists (`ProdiaV1.model_lists`) against the local server, and the catalog made from them
(`Catalog.from_v1_lists`): what the bot offers when Prodia adds or drops a model."""

from __future__ import annotations

import aiohttp
import pytest

from bot.core.catalog import Catalog, can_upscale
from bot.core.errors import BadResponse
from bot.core.model_lists import DEFAULT_SD_MODEL, SAMPLERS, SD_MODELS, SDXL_MODELS

from .test_clients import KEY, make_client


@pytest.fixture
async def session():
    async with aiohttp.ClientSession() as session:
        yield session


async def test_v1_reads_the_sd_and_sdxl_models_and_the_samplers(prodia, session):
    prodia.sd_models = ["new-sd.safetensors [1]", *SD_MODELS[:2]]
    prodia.sdxl_models = ["new-xl.safetensors [2]"]
    sd, sdxl, samplers = await make_client(session, prodia, "v1").model_lists()
    assert (sd, sdxl, samplers) == (prodia.sd_models, ["new-xl.safetensors [2]"], list(SAMPLERS))
    asked = [(r.method, r.path, r.headers.get("X-Prodia-Key")) for r in prodia.requests]
    assert asked == [("GET", f"/v1/{path}", KEY) for path in ("sd/models", "sdxl/models", "sd/samplers")]


@pytest.mark.parametrize("listed", [{"models": []}, ["a", ""], ["a", 3], "a"])
async def test_v1_refuses_a_list_that_is_not_a_list_of_names(prodia, session, listed):
    prodia.sdxl_models = listed
    with pytest.raises(BadResponse, match="/sdxl/models"):
        await make_client(session, prodia, "v1").model_lists()


def test_a_catalog_from_live_lists_offers_exactly_them_and_keeps_the_original_default():
    catalog = Catalog.from_v1_lists(["new-sd [1]", DEFAULT_SD_MODEL], ["new-xl [2]"])
    assert sorted(catalog.models) == sorted(["new-sd [1]", DEFAULT_SD_MODEL, "new-xl [2]"])
    assert catalog.default.name == DEFAULT_SD_MODEL
    assert (catalog.get("new-sd [1]").family, catalog.get("new-xl [2]").family) == ("sd", "sdxl")
    assert catalog.resolve("absolutereality") == (catalog.default, False)  # the family's name still works
    assert catalog.resolve(SD_MODELS[5]) == (catalog.default, True)  # dropped by Prodia: the default instead


def test_without_the_original_default_the_first_listed_model_is_the_default():
    catalog = Catalog.from_v1_lists(["first [1]", "second [2]"], [])
    assert catalog.default.name == "first [1]"
    assert Catalog.from_v1_lists([], ["xl [3]"]).default.name == "xl [3]"


def test_empty_live_lists_are_refused():
    with pytest.raises(ValueError, match="empty"):
        Catalog.from_v1_lists([], [])


def test_every_v1_model_can_be_varied_and_both_apis_upscale():
    catalog = Catalog.from_v1_lists(list(SD_MODELS), list(SDXL_MODELS))
    assert all(catalog.can_vary(name) for name in (*SD_MODELS, *SDXL_MODELS, None))
    assert (can_upscale("v1"), can_upscale("v2"), can_upscale("v3")) == (True, True, False)


def test_the_family_name_of_the_original_default_picks_it_among_its_versions():
    versions = [m for m in SD_MODELS if m.lower().startswith("absolutereality")]
    assert len(versions) > 1 and DEFAULT_SD_MODEL in versions
    catalog = Catalog.from_v1_lists(versions, [])
    assert catalog.resolve("absolutereality") == (catalog.get(DEFAULT_SD_MODEL), False)


def test_a_new_live_model_is_found_by_its_file_stem_and_its_family_in_any_case():
    catalog = Catalog.from_v1_lists(["newmix_v20.safetensors [ab12]", "other [1]"], [])
    new = catalog.get("newmix_v20.safetensors [ab12]")
    assert catalog.resolve("newmix_v20") == catalog.resolve("NewMix") == (new, False)
