"""The buttons under a result (🔄 reroll, ✏️ edit, 🗑️ delete) and a refused 🔄 reaction, through simcord against
the local Prodia server, on both APIs."""

from __future__ import annotations

import discord
import pytest

from bot.render import REROLL_EMOJI

pytestmark = pytest.mark.simcord(settle_timeout=10)

NOT_ALLOWED = "Only the person who asked for this image (or a member with Manage Messages) may do that."


def fields_of(embed) -> dict[str, str]:
    return {field.name: field.value for field in embed.fields}


def submits(prodia) -> list:
    return [r for r in prodia.requests if r.method == "POST"]


def sent(api: str, post) -> dict:
    return post.json if api == "v1" else post.json["config"]


def replies_to(world, original) -> list[discord.Message]:
    return [m for m in world.channel.history() if m.reference and m.reference.message_id == original.id]


async def imagine(world, **options) -> discord.Message:
    result = await world.alice.slash(world.channel, "imagine", prompt="a red fox", seed=42, **options)
    return result.response


def buttons(message) -> list[tuple[str, str | None, str]]:
    """(custom_id, label, emoji) of each button: a response's components are Discord's dicts, a message's objects."""
    found = []
    for row in message.components:
        for b in row["components"] if isinstance(row, dict) else row.children:
            found.append((b["custom_id"], b.get("label"), b["emoji"]["name"]) if isinstance(b, dict) else
                         (b.custom_id, b.label, str(b.emoji)))  # fmt: skip
    return found


async def test_a_result_carries_reroll_edit_and_delete_buttons(world, api):
    original = await imagine(world)
    assert buttons(original) == [
        ("imagine:reroll", "Reroll", REROLL_EMOJI),
        ("imagine:edit", "Edit", "✏️"),
        ("imagine:delete", "Delete", "🗑️"),
    ]


async def test_buttons_speak_the_servers_language(world, api):
    await world.admin.slash(world.channel, "settings set", language="ru")
    original = await imagine(world)
    assert [label for _, label, _ in buttons(original)] == ["Заново", "Изменить", "Удалить"]


async def test_reroll_button_posts_a_new_seed_as_a_reply(world, prodia, api):
    original = await imagine(world)
    click = await world.alice.click(original, custom_id="imagine:reroll")
    assert click.acknowledged and not click.ephemeral

    (reroll,) = [m for m in replies_to(world, original) if m.embeds]
    assert reroll.type is discord.MessageType.reply
    seed = fields_of(reroll.embeds[0])["Seed"]
    assert reroll.embeds[0].title == "a red fox" and seed != "42"
    post = submits(prodia)[-1]
    assert sent(api, post)["prompt"] == "a red fox" and str(sent(api, post)["seed"]) == seed
    assert await reroll.attachments[0].read() == prodia.jobs[list(prodia.jobs)[-1]].image
    assert buttons(reroll)[0][0] == "imagine:reroll"  # a reroll's result has its own buttons


async def test_reroll_button_by_someone_else_is_refused_privately(world, prodia, api):
    original = await imagine(world)
    click = await world.bob.click(original, custom_id="imagine:reroll")
    assert click.response.ephemeral and click.response.content == NOT_ALLOWED
    assert len(submits(prodia)) == 1 and replies_to(world, original) == []


async def test_reroll_button_by_anyone_when_the_server_allows_it_and_by_a_moderator(world, prodia, api):
    original = await imagine(world)
    await world.mod.click(original, custom_id="imagine:reroll")
    await world.admin.slash(world.channel, "settings set", reroll="anyone")
    await world.bob.click(original, custom_id="imagine:reroll")
    assert len([m for m in replies_to(world, original) if m.embeds]) == 2
    assert len(submits(prodia)) == 3


async def test_buttons_of_a_result_made_before_a_restart_still_work(world, prodia, api):
    original = await imagine(world)
    await world.restart()
    await world.alice.click(original, custom_id="imagine:reroll")
    (reroll,) = [m for m in replies_to(world, original) if m.embeds]
    assert reroll.embeds[0].title == "a red fox"


async def test_a_button_refusal_says_why_privately(world, prodia, api):
    await world.admin.slash(world.channel, "settings set", blocked_words="fox")  # blocked after the result
    original = await world.admin.slash(world.channel, "imagine", prompt="a red cat")
    await world.admin.slash(world.channel, "settings set", blocked_words="cat")
    click = await world.admin.click(original.response, custom_id="imagine:reroll")
    assert click.response.ephemeral and click.response.content == "This server does not allow “cat” in prompts."
    assert len(submits(prodia)) == 1


async def test_edit_opens_a_prefilled_modal_and_runs_what_was_submitted(world, prodia, api):
    original = await imagine(world, negative_prompt="blur")
    shown = await world.alice.click(original, custom_id="imagine:edit")
    modal = shown.modal
    assert modal is not None and modal["title"] == "Edit and run again"
    defaults = [c["components"][0].get("value") for c in modal["components"]]
    assert defaults == ["a red fox", "blur", "42"]

    inputs = [c["components"][0]["custom_id"] for c in modal["components"]]
    await world.alice.submit_modal(shown, dict(zip(inputs, ["a blue fox", "", "7"], strict=True)))
    (edited,) = [m for m in replies_to(world, original) if m.embeds]
    assert edited.embeds[0].title == "a blue fox" and fields_of(edited.embeds[0])["Seed"] == "7"
    body = sent(api, submits(prodia)[-1])
    assert body["prompt"] == "a blue fox" and body["seed"] == 7
    assert not body.get("negative_prompt")  # cleared in the modal


@pytest.mark.parametrize(
    ("prompt", "seed", "answer"),
    [
        ("   ", "", "The prompt is empty. Describe the image you want."),
        ("x" * 1001, "", "The prompt is too long: at most 1000 characters."),
        ("a fox", "seven", "seed must be between 0 and 4294967295."),
        ("a fox", "4294967296", "seed must be between 0 and 4294967295."),
    ],
)
async def test_edit_with_bad_input_is_refused_privately_and_sends_nothing(world, prodia, api, prompt, seed, answer):
    original = await imagine(world)
    shown = await world.alice.click(original, custom_id="imagine:edit")
    inputs = [c["components"][0]["custom_id"] for c in shown.modal["components"]]
    submitted = await world.alice.submit_modal(shown, dict(zip(inputs, [prompt, "", seed], strict=True)))
    assert submitted.response.ephemeral and submitted.response.content == answer
    assert len(submits(prodia)) == 1


async def test_edit_by_someone_else_is_refused_without_a_modal(world, prodia, api):
    original = await imagine(world)
    click = await world.bob.click(original, custom_id="imagine:edit")
    assert click.modal is None and click.response.content == NOT_ALLOWED


async def test_delete_by_the_requester_removes_the_message_and_its_record(world, prodia, api):
    original = await imagine(world)
    click = await world.alice.click(original, custom_id="imagine:delete")
    assert click.response.ephemeral and click.response.content == "The result was deleted."
    assert original.id not in [m.id for m in world.channel.history()]
    assert await world.bot.pipeline.store.get_result(original.id) is None


async def test_delete_by_a_moderator_and_refused_for_others_even_when_anyone_may_reroll(world, prodia, api):
    await world.admin.slash(world.channel, "settings set", reroll="anyone")
    original = await imagine(world)
    refused = await world.bob.click(original, custom_id="imagine:delete")
    assert refused.response.ephemeral and refused.response.content == NOT_ALLOWED
    assert original.id in [m.id for m in world.channel.history()]
    await world.mod.click(original, custom_id="imagine:delete")
    assert original.id not in [m.id for m in world.channel.history()]


async def test_a_button_on_a_result_the_bot_no_longer_knows_says_so(world, prodia, api):
    original = await imagine(world)
    await world.bot.pipeline.store.delete_result(original.id)  # e.g. purged after the retention time
    click = await world.alice.click(original, custom_id="imagine:reroll")
    assert click.response.ephemeral and "no longer knows this result" in click.response.content
    assert len(submits(prodia)) == 1


# -- the 🔄 reaction never vanishes silently ------------------------------------------------------


async def test_a_refused_reaction_reroll_is_taken_back_and_explained_to_that_user_alone(world, prodia, api):
    original = await imagine(world)
    await world.bob.react(original, REROLL_EMOJI)
    notices = [m for m in world.channel.history() if m.content.startswith(f"<@{world.bob.id}>")]
    assert [m.content for m in notices] == [f"<@{world.bob.id}>, your 🔄 was not started: {NOT_ALLOWED}"]
    assert notices[0].raw_mentions == [world.bob.id]
    reactions = {
        str(r.emoji): r.count for r in next(m for m in world.channel.history() if m.id == original.id).reactions
    }
    assert reactions.get(REROLL_EMOJI) == 1  # only the bot's own: bob's was removed
    assert len(submits(prodia)) == 1


class TestCooldown:
    @pytest.fixture
    def bot_env(self) -> dict[str, str]:
        return {"USER_COOLDOWN": "20"}

    async def test_a_reaction_reroll_held_by_the_cooldown_starts_when_it_ends(self, world, prodia, api):
        original = await imagine(world)
        await world.alice.react(original, REROLL_EMOJI)
        (note,) = [m for m in world.channel.history() if "starts in" in m.content]
        assert note.content.startswith(f"<@{world.alice.id}>, your 🔄 starts in ")
        assert len(submits(prodia)) == 1  # not yet
        await world.env.advance_time(25)
        assert len([m for m in replies_to(world, original) if m.embeds]) == 1
        assert len(submits(prodia)) == 2

    async def test_a_button_reroll_in_the_cooldown_is_refused_privately_with_when(self, world, prodia, api):
        original = await imagine(world)
        click = await world.alice.click(original, custom_id="imagine:reroll")
        assert click.response.ephemeral and click.response.content.startswith(
            "Slow down a little: you can ask again in"
        )
        assert len(submits(prodia)) == 1
