"""/settings (per-guild defaults) and 🔄 reroll, through simcord against the local Prodia server."""

from __future__ import annotations

import discord
import pytest
import simcord

from bot.render import REROLL_EMOJI
from devtools.local_prodia import Fault

pytestmark = pytest.mark.simcord(settle_timeout=10)


def fields_of(embed) -> dict[str, str]:
    return {field.name: field.value for field in embed.fields}


def submits(prodia):
    return [r.json for r in prodia.image_posts()]


def model_for(api: str) -> tuple[str, str]:
    """(what an admin types, the catalog name it stands for)."""
    if api == "v1":
        return "dreamshaper_8", "dreamshaper_8.safetensors [9d40847d]"
    return "dev", "flux-dev"


# -- /settings ----------------------------------------------------------------------------------


async def test_guild_defaults_are_used_by_the_next_imagine(world, prodia, api):
    typed, model = model_for(api)
    saved = await world.admin.slash(world.channel, "settings set", model=typed, steps=12, sampler="Euler")
    assert saved.response.ephemeral
    assert fields_of(saved.response.embeds[0])["Model"] == model

    result = await world.alice.slash(world.channel, "imagine", prompt="a castle")
    fields = fields_of(result.response.embeds[0])
    assert (fields.get("Checkpoint", fields["Model"]), fields["Steps"], fields.get("Sampler")) == (
        model, "12", "Euler" if api == "v1" else None
    )  # fmt: skip
    body = submits(prodia)[-1]
    sent = body if api == "v1" else body["config"]
    assert sent["steps"] == 12
    assert sent.get("sampler") == ("Euler" if api == "v1" else None)  # flux takes no sampler
    expected = "dreamshaper_8.safetensors [9d40847d]" if api == "v1" else "inference.flux.dev.txt2img.v1"
    assert (body["model"] if api == "v1" else body["type"]) == expected


async def test_options_given_beat_guild_defaults(world, prodia, api):
    await world.admin.slash(world.channel, "settings set", steps=12)
    result = await world.alice.slash(world.channel, "imagine", prompt="a castle", steps=3)
    assert fields_of(result.response.embeds[0])["Steps"] == "3"


async def test_settings_show_and_reset(world, prodia, api):
    await world.admin.slash(world.channel, "settings set", cfg=4.5, reroll="anyone")
    shown = await world.admin.slash(world.channel, "settings show")
    fields = fields_of(shown.response.embeds[0])
    assert shown.response.ephemeral
    assert fields["CFG"] == "4.5"
    assert fields["Who may reroll"] == "anyone"
    assert fields["Steps"] == "built-in: 20"

    await world.admin.slash(world.channel, "settings reset")
    shown = await world.admin.slash(world.channel, "settings show")
    assert fields_of(shown.response.embeds[0])["CFG"] == "built-in: 7"


async def test_settings_reset_puts_back_the_defaults_and_language_and_keeps_moderation(world, prodia, api):
    await world.admin.slash(
        world.channel, "settings set", steps=12, language="ru", reroll="anyone", blocked_words="castle", daily_cap=5
    )
    reset = await world.admin.slash(world.channel, "settings reset")
    assert reset.response.ephemeral
    assert reset.response.content == (
        "This server's defaults (model, sampler, steps, CFG, negative prompt, aspect ratio, style) and its language "
        "are back to the built-in ones. Moderation is kept: who may reroll, blocked words, images per day and the "
        "content policy; to clear it too: "
        "`/settings set reroll:requester blocked_words:- daily_cap:0 nsfw:block nsfw_age_restricted:allow`."
    )
    fields = fields_of(reset.response.embeds[0])  # what now applies
    assert fields["Steps"] == "built-in: 20"
    assert fields["Language of public messages"].startswith("automatic: English")
    assert (fields["Who may reroll"], fields["Blocked words"], fields["Images per day"]) == ("anyone", "castle", "5")

    refused = await world.alice.slash(world.channel, "imagine", prompt="a castle")  # still refused
    assert refused.response.content == "This server does not allow “castle” in prompts."
    original = (await world.alice.slash(world.channel, "imagine", prompt="a fox")).response
    assert fields_of(original.embeds[0])["Steps"] == ("20" if api == "v1" else "4")  # built-in (flux takes 4 at most)
    await world.bob.react(original, REROLL_EMOJI)  # anyone may still reroll
    assert len(rerolls_of(world, original)) == 1

    # The way the reply gives clears them.
    await world.admin.slash(world.channel, "settings set", reroll="requester", blocked_words="-", daily_cap=0)
    settings = await world.bot.pipeline.store.guild_settings(world.guild.id)
    assert (settings.reroll, settings.blocked_words, settings.daily_cap) == ("requester", (), None)


async def test_unknown_model_in_settings_is_refused(world, api):
    result = await world.admin.slash(world.channel, "settings set", model="no-such-model")
    assert result.response.ephemeral
    assert "There is no model called “no-such-model”" in result.response.content
    assert (await world.bot.pipeline.store.guild_settings(world.guild.id)).model is None


async def test_settings_are_hidden_from_members_without_manage_server(world, api):
    with pytest.raises(simcord.SetupError, match="default-member-permissions"):
        await world.alice.slash(world.channel, "settings set", steps=3)


async def test_settings_check_is_enforced_by_the_bot_too(world, api):
    # A server admin may show the command to everyone in Integrations: the bot still refuses.
    commands = await world.bot.tree.fetch_commands()
    settings = next(c for c in commands if c.name == "settings")
    world.guild.set_command_permissions(settings, {world.alice: True})
    result = await world.alice.slash(world.channel, "settings set", steps=3)
    assert result.response.ephemeral
    assert "Manage Server" in result.response.content
    assert (await world.bot.pipeline.store.guild_settings(world.guild.id)).steps is None
    (refusal,) = world.env.errors  # the tree's error path saw the failed check, and answered it
    assert isinstance(refusal, discord.app_commands.MissingPermissions)
    assert refusal.missing_permissions == ["manage_guild"]


async def test_model_autocomplete_in_settings(world, api):
    choices = await world.admin.autocomplete(world.channel, "settings set", "model", model_for(api)[0])
    assert choices[0]["value"] == model_for(api)[1]


# -- reroll --------------------------------------------------------------------------------------


async def imagine(world, **options):
    result = await world.alice.slash(world.channel, "imagine", prompt="a red fox", seed=42, **options)
    return result.response


def rerolls_of(world, original):
    return [m for m in world.channel.history() if m.reference and m.reference.message_id == original.id]


async def test_reroll_by_the_requester_uses_a_new_seed(world, prodia, api):
    original = await imagine(world)
    await world.alice.react(original, REROLL_EMOJI)

    (reroll,) = rerolls_of(world, original)
    assert reroll.type is discord.MessageType.reply
    embed = reroll.embeds[0]
    assert embed.title == "a red fox"
    assert fields_of(embed)["Seed"] != "42"
    assert len(prodia.image_jobs) == 2
    newest = prodia.image_posts()[-1]
    sent = newest.json if api == "v1" else newest.json["config"]
    assert sent["prompt"] == "a red fox"
    assert str(sent["seed"]) == fields_of(embed)["Seed"]
    assert await reroll.attachments[0].read() == prodia.image_jobs[list(prodia.image_jobs)[-1]].image
    assert [str(r.emoji) for r in reroll.reactions] == [REROLL_EMOJI]


async def test_reroll_by_someone_else_is_ignored_by_default(world, prodia, api):
    original = await imagine(world)
    await world.bob.react(original, REROLL_EMOJI)
    assert rerolls_of(world, original) == []
    assert len(prodia.image_jobs) == 1


async def test_reroll_by_anyone_when_the_guild_allows_it(world, prodia, api):
    await world.admin.slash(world.channel, "settings set", reroll="anyone")
    original = await imagine(world)
    await world.bob.react(original, REROLL_EMOJI)
    assert len(rerolls_of(world, original)) == 1


async def test_members_with_manage_messages_may_always_reroll(world, prodia, api):
    original = await imagine(world)
    await world.mod.react(original, REROLL_EMOJI)
    assert len(rerolls_of(world, original)) == 1


async def test_other_emoji_and_other_messages_are_ignored(world, prodia, api):
    original = await imagine(world)
    await world.alice.react(original, "👍")
    await world.alice.send(world.channel, "just chatting")
    await world.alice.react(world.channel.last_message, REROLL_EMOJI)
    assert len(prodia.image_jobs) == 1


async def test_reroll_works_after_a_restart(world, prodia, api):
    original = await imagine(world)
    await world.restart()
    await world.alice.react(original, REROLL_EMOJI)
    (reroll,) = rerolls_of(world, original)
    assert reroll.embeds[0].title == "a red fox"


@pytest.mark.parametrize("api", ["v1"])  # its image is downloaded: a fault can make it large
async def test_a_reaction_reroll_fits_its_image_to_the_servers_upload_limit(world, prodia, api):
    original = await imagine(world)
    limit = world.bot.get_guild(world.guild.id).filesize_limit  # 10 MiB: a server without boosts
    prodia.add_fault(Fault("image_huge", size=limit + 2**20, path="/images/*"))  # a whole PNG, over it
    await world.alice.react(original, REROLL_EMOJI)
    (reroll,) = rerolls_of(world, original)
    attachment = reroll.attachments[0]
    assert attachment.filename.endswith(".jpg")  # re-encoded to fit
    assert len(await attachment.read()) <= limit


async def test_a_button_reroll_fits_its_image_to_the_channels_upload_limit(world, prodia, api, monkeypatch):
    original_payload = simcord.interactions.base_payload

    def small_uploads(*args, **kwargs):  # what Discord says of this channel with each interaction, only smaller
        record, payload = original_payload(*args, **kwargs)
        payload["attachment_size_limit"] = 4_000
        return record, payload

    monkeypatch.setattr(simcord.interactions, "base_payload", small_uploads)
    prodia.image_scale = 1.0  # full-size PNGs, far over 4,000 bytes
    original = await imagine(world)
    await world.alice.click(original, custom_id="imagine:reroll")
    (reroll,) = rerolls_of(world, original)
    attachment = reroll.attachments[0]
    assert attachment.filename.endswith(".jpg")
    assert len(await attachment.read()) <= 4_000


# -- /models -------------------------------------------------------------------------------------


class TestThirdPartyModels:
    @pytest.fixture
    def bot_env(self) -> dict[str, str]:
        return {"PRODIA_V2_MODELS": "flux-fast,sdxl"}

    @pytest.mark.parametrize("api", ["v2"])
    async def test_models_says_what_an_opt_in_model_takes_and_that_it_is_unconfirmed(self, world, api):
        result = await world.alice.slash(world.channel, "models")
        assert result.response.embeds[0].description.splitlines()[2:] == [
            "`sdxl` · `sd-xl`",
            "  takes: Negative prompt, Steps, Seed (steps up to 25) · not confirmed by Prodia's documentation",
        ]

    @pytest.mark.parametrize("api", ["v2"])
    async def test_opt_in_model_sends_only_its_known_fields(self, world, prodia, api):
        result = await world.alice.slash(
            world.channel, "imagine", prompt="a fox", model="sdxl", negative_prompt="blur", seed=4, sampler="DDIM"
        )
        assert result.response.embeds[0].description == "sdxl does not use: Sampler."
        (post,) = prodia.image_posts()
        assert post.json == {
            "type": "inference.sdxl.txt2img.v1",
            "config": {"prompt": "a fox", "seed": 4, "steps": 20, "negative_prompt": "blur"},
        }

    @pytest.mark.parametrize("api", ["v2"])
    async def test_the_servers_negative_prompt_reaches_a_model_that_takes_one(self, world, prodia, api):
        await world.admin.slash(world.channel, "settings set", negative_prompt="blurry, text")
        result = await world.alice.slash(world.channel, "imagine", prompt="a fox", model="sdxl", seed=4)
        assert fields_of(result.response.embeds[0])["Negative prompt"] == "blurry, text"
        (post,) = prodia.image_posts()
        assert post.json["config"]["negative_prompt"] == "blurry, text"


async def test_models_lists_pages_and_searches(world, api):
    result = await world.alice.slash(world.channel, "models")
    embed = result.response.embeds[0]
    assert result.response.ephemeral
    assert embed.title == f"Models ({len(world.bot.pipeline.catalog)})"
    default = world.bot.pipeline.catalog.default.name
    assert embed.description.splitlines()[0].startswith(f"`{default}` (default)")
    if api == "v1":
        assert embed.footer.text.startswith("Page 1 of 5")
        last = await world.alice.slash(world.channel, "models", page=99)
        assert last.response.embeds[0].footer.text.startswith("Page 5 of 5")
        found = await world.alice.slash(world.channel, "models", search="dreamshaper")
        lines = found.response.embeds[0].description.splitlines()
        assert lines and all("dreamshaper" in line.lower() for line in lines)
    else:
        assert embed.description.splitlines()[:2] == [
            "`flux-fast` (default) · `flux`",
            "  takes: Steps, Seed, Aspect ratio (steps up to 4)",
        ]
    missing = await world.alice.slash(world.channel, "models", search="zzzz")
    assert missing.response.content == "No model matches “zzzz”."


async def test_a_command_that_crashes_ends_in_one_sentence_through_the_trees_error_path(
    world, api, monkeypatch, caplog
):
    def broken(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(world.bot.pipeline.catalog, "search", broken)
    result = await world.alice.slash(world.channel, "models")
    assert result.response.ephemeral
    assert result.response.content == "Something went wrong on the bot's side. Please try again in a moment."
    (logged,) = [r for r in caplog.records if r.name == "bot.tree"]
    assert logged.getMessage() == "/models failed" and "boom" in str(logged.exc_info[1])
    assert ["boom" in str(error) for error in world.env.errors] == [True]  # the one crash, handled
