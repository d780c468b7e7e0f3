"""/help: private, in the reader's language, with this server's limits and what is left today."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.simcord(settle_timeout=10)


def fields_of(embed) -> dict[str, str]:
    return {field.name: field.value for field in embed.fields}


async def test_help_is_private_and_names_the_commands_and_actions(world, api):
    result = await world.bob.slash(world.channel, "help")
    assert result.response.ephemeral
    embed = result.response.embeds[0]
    assert embed.title == "Imagine: what you can do"
    assert "`/imagine prompt`" in embed.description and "**Imagine this**" in embed.description
    fields = fields_of(embed)
    assert fields["Your limits here"] == "2 images at a time, and 0 s between two requests.\nNo daily cap here."
    assert "Who may reroll, edit, vary and upscale here: only the requester" in fields["On a result"]


async def test_help_shows_the_servers_daily_cap_and_what_is_left_today(world, prodia, api):
    await world.admin.slash(world.channel, "settings set", daily_cap=3, reroll="anyone")
    await world.alice.slash(world.channel, "imagine", prompt="a fox")
    fields = fields_of((await world.bob.slash(world.channel, "help")).response.embeds[0])
    assert fields["Your limits here"].splitlines()[1] == "This server: 3 images a day, 2 left today (UTC)."
    assert "here: anyone;" in fields["On a result"]


async def test_help_speaks_the_readers_language(world, api, monkeypatch):
    import simcord.interactions as interactions

    original = interactions.base_payload

    def in_russian(backend, **options):  # simcord sends en-US: a reader whose Discord speaks Russian
        record, payload = original(backend, **options)
        payload["locale"] = "ru"
        return record, payload

    monkeypatch.setattr(interactions, "base_payload", in_russian)
    result = await world.bob.slash(world.channel, "help")
    embed = result.response.embeds[0]
    assert embed.title == "Imagine: что можно сделать"
    assert fields_of(embed)["Ваши лимиты здесь"].startswith("2 изображения одновременно")


async def test_help_in_a_dm_shows_the_dm_cap_and_what_is_left(world, prodia, api):
    olga = world.env.create_user("olga")
    await olga.slash("imagine", prompt="a fox")
    fields = fields_of((await olga.slash("help")).response.embeds[0])
    assert fields["Your limits here"].splitlines()[1] == "In direct messages: 20 images a day, 19 left today (UTC)."
