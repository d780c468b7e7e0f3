"""Defaults in layers: what the user typed > their /preferences > the channel's (/settings set channel:) > the
server's > built-in, through simcord against the local Prodia server."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.simcord(settle_timeout=10)


def fields_of(embed) -> dict[str, str]:
    return {field.name: field.value for field in embed.fields}


def sent(api: str, prodia) -> dict:
    post = prodia.image_posts()[-1]
    return post.json if api == "v1" else post.json["config"]


async def test_the_layers_resolve_in_the_documented_order(world, prodia, api):
    model = {"model": "dev"} if api == "v2" else {}  # a v2 model that takes more than 4 steps
    await world.admin.slash(world.channel, "settings set", steps=10, negative_prompt="server-blur", **model)
    await world.admin.slash(world.channel, "settings set", channel=world.channel, steps=11)
    await world.alice.slash(world.channel, "preferences set", steps=12)

    await world.bob.slash(world.channel, "imagine", prompt="a fox")  # no preferences: the channel's
    assert sent(api, prodia)["steps"] == 11
    await world.alice.slash(world.channel, "imagine", prompt="a fox")  # hers beat the channel's
    assert sent(api, prodia)["steps"] == 12
    await world.alice.slash(world.channel, "imagine", prompt="a fox", steps=13)  # typed beats everything
    assert sent(api, prodia)["steps"] == 13
    other = world.guild.create_text_channel("elsewhere")
    await world.bob.slash(other, "imagine", prompt="a fox")  # another channel: the server's
    assert sent(api, prodia)["steps"] == 10
    if api == "v1":  # the server's negative prompt still applies under the layers above that leave it unset
        assert sent(api, prodia)["negative_prompt"] == "server-blur"


async def test_preferences_are_private_shown_and_reset(world, api):
    saved = await world.alice.slash(world.channel, "preferences set", cfg=4.5, style="anime")
    assert saved.response.ephemeral
    fields = fields_of(saved.response.embeds[0])
    assert (fields["CFG"], fields["Style"], fields["Steps"]) == ("4.5", "anime", "not set")
    shown = await world.alice.slash(world.channel, "preferences show")
    assert fields_of(shown.response.embeds[0])["Style"] == "anime"
    reset = await world.alice.slash(world.channel, "preferences reset")
    assert reset.response.ephemeral and reset.response.content.startswith("Your own defaults are forgotten")
    shown = await world.alice.slash(world.channel, "preferences show")
    assert fields_of(shown.response.embeds[0])["Style"] == "not set"


async def test_a_bad_preference_is_refused_privately(world, api):
    refused = await world.alice.slash(world.channel, "preferences set", model="no-such-model")
    assert refused.response.ephemeral
    assert refused.response.content == "There is no model called “no-such-model”. Pick one from the list."


async def test_a_channel_takes_image_defaults_only(world, api):
    refused = await world.admin.slash(world.channel, "settings set", channel=world.channel, daily_cap=3)
    assert refused.response.ephemeral and refused.response.content.startswith("A channel takes only image defaults")
    saved = await world.admin.slash(world.channel, "settings set", channel=world.channel, aspect_ratio="portrait")
    assert fields_of(saved.response.embeds[0])["Aspect ratio"] == "Portrait"
    shown = await world.admin.slash(world.channel, "settings show", channel=world.channel)
    assert fields_of(shown.response.embeds[0])["Aspect ratio"] == "Portrait"
    await world.admin.slash(world.channel, "settings reset", channel=world.channel)
    shown = await world.admin.slash(world.channel, "settings show", channel=world.channel)
    assert fields_of(shown.response.embeds[0])["Aspect ratio"] == "not set"


async def test_preferences_work_in_a_dm(world, prodia, api):
    olga = world.env.create_user("olga")
    await olga.slash("preferences set", steps=7, **({"model": "dev"} if api == "v2" else {}))
    await olga.slash("imagine", prompt="a fox")
    assert sent(api, prodia)["steps"] == 7
