"""`bot.delivery` on its own: a job's reply (which way each edit goes out, and where it lands when a way is gone), the
pacing of progress edits, the reroll reaction, and images read back from Discord. Under simcord, with a bot that only
answers `/go` ("thinking") and hands the test its interaction; the e2e tests cover the same code through `/imagine`."""

from __future__ import annotations

import asyncio
import contextvars
import io
from collections.abc import Coroutine
from typing import Any, TypeVar

import discord
import pytest
from discord import app_commands

from bot.core.errors import ImageGone
from bot.core.messages import text
from bot.delivery import TOKEN_LIFETIME, ProgressReporter, Reply, add_reroll, result_image, uploaded_image
from bot.render import REROLL_EMOJI, ProgressState, progress_text

T = TypeVar("T")
PNG = b"\x89PNG\r\n\x1a\n" + b"\0" * 64  # only read back, never decoded


class ReplyBot(discord.Client):
    """Answers `/go` with "thinking" and keeps the interaction, for the test to report through."""

    def __init__(self) -> None:
        super().__init__(intents=discord.Intents.default())
        self.tree = app_commands.CommandTree(self)
        self.interactions: list[discord.Interaction] = []
        self.context: contextvars.Context | None = None

        @self.tree.command(name="go", description="Start a reply")
        async def go(interaction: discord.Interaction) -> None:
            await interaction.response.send_message("thinking")
            self.interactions.append(interaction)
            self.context = contextvars.copy_context()

    def run(self, work: Coroutine[Any, Any, T]) -> asyncio.Task[T]:
        """`work` as the bot's own task, as `bot.pipeline` runs a reporter: on simcord's virtual clock
        (`time.monotonic`, sleeps), which the test moves with `env.advance_time`."""
        assert self.context is not None, "/go first"
        return self.context.run(asyncio.create_task, work)

    async def setup_hook(self) -> None:
        await self.tree.sync()


@pytest.fixture
def simcord_bot() -> ReplyBot:
    return ReplyBot()


@pytest.fixture
def env(simcord_env):
    return simcord_env  # (a test's own Env argument is what puts it on simcord's virtual clock)


@pytest.fixture
def guild(env):
    return env.create_guild("Gallery")


@pytest.fixture
def channel(guild):
    return guild.create_text_channel("gen")


@pytest.fixture
def alice(env, guild):
    return guild.add_member(env.create_user("alice"))


async def started(env, channel, alice) -> tuple[Reply, discord.Message]:
    """A reply to `/go` as /imagine starts one: by the interaction, its message known."""
    await alice.slash(channel, "go")
    interaction = env.bot.interactions[-1]
    reply = Reply(env.bot.get_channel(channel.id), interaction=interaction)
    reply.message = await interaction.original_response()
    return reply, channel.history()[-1]


def edits_of(env, message_id: int) -> list[str]:
    """How each edit of a message went out, in order: "token" (the interaction's webhook) or "channel"."""
    out = []
    for request in env.http_requests:
        if request.method != "PATCH":
            continue
        if request.path.startswith(f"/webhooks/{env.bot.application_id}/"):
            out.append("token")
        elif request.path.endswith(f"/messages/{message_id}"):
            out.append("channel")
    return out


def png(name: str) -> discord.File:
    return discord.File(io.BytesIO(PNG), name)


def cancel_view() -> discord.ui.View:
    view = discord.ui.View()
    view.add_item(discord.ui.Button(label="Cancel", custom_id="cancel"))
    return view


def buttons_of(message) -> list[str]:
    return [c.custom_id for row in message.components for c in row.children]


def posts(env) -> list[str]:
    return [r.path for r in env.http_requests if r.method == "POST" and r.path.endswith("/messages")]


# --- Reply ---


async def test_a_live_token_edits_the_reply_through_the_interaction(env, channel, alice):
    reply, thinking = await started(env, channel, alice)
    reply.message = None  # known by its interaction only
    heard: list[int] = []

    async def on_message(message_id: int) -> None:
        heard.append(message_id)

    reply.on_message = on_message
    message = await reply.edit(content="a fox", embed=discord.Embed(title="Result"))

    shown = channel.history()[-1]
    assert (shown.id, shown.content, shown.embeds[0].title) == (thinking.id, "a fox", "Result")
    assert message.id == thinking.id
    assert edits_of(env, thinking.id) == ["token"]
    assert heard == [thinking.id]  # the journal hears of the message once


async def test_an_edit_after_the_first_does_not_announce_the_same_message_again(env, channel, alice):
    reply, thinking = await started(env, channel, alice)
    heard: list[int] = []

    async def on_message(message_id: int) -> None:
        heard.append(message_id)

    reply.on_message = on_message
    reply.message = None
    await reply.edit(content="one")
    await reply.edit(content="two")
    assert heard == [thinking.id]


async def test_an_edit_without_a_file_clears_the_attachments(env, channel, alice):
    reply, _ = await started(env, channel, alice)
    await reply.edit(content="with", file=discord.File(io.BytesIO(PNG), "result.png"))
    assert [a.filename for a in channel.history()[-1].attachments] == ["result.png"]

    await reply.edit(content="without")
    assert channel.history()[-1].attachments == []


async def test_a_reply_made_with_a_webhook_edits_its_message_by_the_token(env, channel, alice):
    """After a restart the journal has the webhook (the token) and the message, not the interaction."""
    await alice.slash(channel, "go")
    interaction = env.bot.interactions[-1]
    thinking = channel.history()[-1]
    bot_channel = env.bot.get_channel(channel.id)
    reply = Reply(
        bot_channel,
        webhook=interaction.followup,
        token_created_at=interaction.created_at.timestamp(),
        message=bot_channel.get_partial_message(thinking.id),
    )
    await reply.edit(content="resumed", embed=discord.Embed(title="Result"), file=png("result.png"), view=cancel_view())
    shown = channel.history()[-1]
    assert (shown.content, shown.embeds[0].title, [a.filename for a in shown.attachments]) == (
        "resumed",
        "Result",
        ["result.png"],
    )
    assert buttons_of(shown) == ["cancel"]
    assert edits_of(env, thinking.id) == ["token"]


async def test_a_token_near_the_end_of_its_fifteen_minutes_is_not_tried(env, channel, alice):
    reply, thinking = await started(env, channel, alice)
    await env.advance_time(TOKEN_LIFETIME - 29)  # within the 30 s margin kept for the request itself
    await reply.edit(content="late")
    assert channel.history()[-1].content == "late"
    assert edits_of(env, thinking.id) == ["channel"]


async def test_a_token_short_of_the_margin_is_still_used(env, channel, alice):
    reply, thinking = await started(env, channel, alice)
    await env.advance_time(TOKEN_LIFETIME - 31)
    await reply.edit(content="in time")
    assert channel.history()[-1].content == "in time"
    assert edits_of(env, thinking.id) == ["token"]


async def test_a_reply_without_token_edits_its_message_through_the_channel(env, channel, alice):
    bot_channel = env.bot.get_channel(channel.id)
    first = await bot_channel.send("thinking")
    reply = Reply(bot_channel, message=first)
    await reply.edit(content="done", embed=discord.Embed(title="Result"), file=png("result.png"), view=cancel_view())
    shown = channel.history()[-1]
    assert (shown.content, shown.embeds[0].title, [a.filename for a in shown.attachments]) == (
        "done",
        "Result",
        ["result.png"],
    )
    assert buttons_of(shown) == ["cancel"]
    assert edits_of(env, first.id) == ["channel"]


async def test_a_token_at_exactly_the_margin_is_not_tried(env, channel, alice):
    reply, thinking = await started(env, channel, alice)
    await env.advance_time(TOKEN_LIFETIME - 30)
    await reply.edit(content="late")
    assert edits_of(env, thinking.id) == ["channel"]


async def test_a_new_post_whose_reference_is_gone_is_posted_without_it(env, channel, alice):
    asked = await alice.send(channel, "draw a fox")
    bot_channel = env.bot.get_channel(channel.id)
    reference = bot_channel.get_partial_message(asked.id)
    await alice.delete(asked)
    posted = await Reply(bot_channel, reference=reference).edit(content="a fox")
    assert channel.history()[-1].id == posted.id


@pytest.mark.parametrize(("status", "code"), [(404, 10015), (401, 50027)])
async def test_a_token_refused_as_gone_or_expired_falls_back_to_the_channel_with_the_same_file(
    env, channel, alice, status, code
):
    reply, thinking = await started(env, channel, alice)
    env.inject_error("PATCH", "/webhooks/*", status=status, code=code)
    await reply.edit(content="fallback", file=discord.File(io.BytesIO(PNG), "result.png"))

    shown = channel.history()[-1]
    assert (shown.id, shown.content) == (thinking.id, "fallback")
    assert await shown.attachments[0].read() == PNG  # the file read again from its start, not empty
    assert edits_of(env, thinking.id) == ["token", "channel"]

    await reply.edit(content="again")
    assert edits_of(env, thinking.id) == ["token", "channel", "channel"]  # the dead token is not tried again


async def test_other_refusals_of_the_token_are_raised(env, channel, alice):
    reply, thinking = await started(env, channel, alice)
    env.inject_error("PATCH", "/webhooks/*", status=403, code=50013, message="Missing Permissions")
    with pytest.raises(discord.Forbidden):
        await reply.edit(content="nope")
    assert channel.history()[-1].content == "thinking"
    assert edits_of(env, thinking.id) == ["token"]


async def test_a_deleted_reply_is_posted_again_with_its_file_and_announced(env, channel, alice):
    bot_channel = env.bot.get_channel(channel.id)
    first = await bot_channel.send("thinking")
    await first.delete()
    heard: list[int] = []

    async def on_message(message_id: int) -> None:
        heard.append(message_id)

    reply = Reply(bot_channel, message=first)
    reply.on_message = on_message
    posted = await reply.edit(content="again", file=discord.File(io.BytesIO(PNG), "result.png"))

    (shown,) = channel.history()
    assert shown.id == posted.id != first.id
    assert shown.content == "again"
    assert await shown.attachments[0].read() == PNG
    assert heard == [posted.id]


async def test_a_new_post_replies_to_its_reference(env, channel, alice):
    asked = await alice.send(channel, "draw a fox")
    bot_channel = env.bot.get_channel(channel.id)
    reply = Reply(bot_channel, reference=bot_channel.get_partial_message(asked.id))
    posted = await reply.edit(content="a fox", embed=discord.Embed(title="Result"))

    shown = channel.history()[-1]
    assert shown.id == posted.id
    assert shown.reference is not None and shown.reference.message_id == asked.id
    assert shown.embeds[0].title == "Result"


async def test_a_new_post_carries_its_buttons_files_and_every_embed(env, channel, alice):
    reply = Reply(env.bot.get_channel(channel.id))  # a result posted anew (its reply deleted, or a reroll)
    embeds = [discord.Embed(title="Result", url="https://example.com/"), discord.Embed(url="https://example.com/")]
    await reply.edit(content=None, embeds=embeds, files=[png("one.png"), png("two.png")], view=cancel_view())
    shown = channel.history()[-1]
    assert [embed.url for embed in shown.embeds] == ["https://example.com/"] * 2
    assert [a.filename for a in shown.attachments] == ["one.png", "two.png"]
    assert buttons_of(shown) == ["cancel"]


async def test_a_new_post_without_reference_is_a_plain_message(env, channel, alice):
    reply = Reply(env.bot.get_channel(channel.id))
    await reply.edit(content="hello")
    shown = channel.history()[-1]
    assert (shown.content, shown.reference, shown.attachments, shown.embeds) == ("hello", None, [], [])
    assert len(posts(env)) == 1


# --- ProgressReporter ---


def progress(state: str, position: int | None = None, locale: str | None = None) -> str:
    return progress_text(ProgressState(state, 0, position), locale)


async def reporter_on(env, channel, alice, **options) -> tuple[ProgressReporter, discord.Message]:
    """A reporter (a 2 s interval) on a reply to `/go` just made, as the bot's own: see `ReplyBot.run`."""
    reply, thinking = await started(env, channel, alice)

    async def make() -> ProgressReporter:
        return ProgressReporter(reply, locale=options.pop("locale", None), interval=2.0, started_at=0, **options)

    return await env.bot.run(make()), thinking


async def update(env, reporter: ProgressReporter, state: str, position: int | None = None) -> None:
    await env.bot.run(reporter.update(state, position))


def shown_in(channel) -> str:
    return channel.history()[-1].content


async def test_progress_waits_an_interval_after_the_reply_appeared(env, channel, alice):
    reporter, _ = await reporter_on(env, channel, alice)
    await update(env, reporter, "waiting", position=3)
    assert shown_in(channel) == "thinking"  # not at once
    await env.advance_time(1.9)
    assert shown_in(channel) == "thinking"
    await env.advance_time(0.2)
    assert shown_in(channel) == progress("waiting", 3) != progress("waiting", 0)
    assert reporter.edits == 1


async def test_a_change_with_half_a_second_of_the_interval_left_waits_for_it(env, channel, alice):
    reporter, _ = await reporter_on(env, channel, alice)
    await env.advance_time(5)
    await update(env, reporter, "queued")
    await env.advance_time(1.5)
    await update(env, reporter, "generating")
    await env.advance_time(0.4)
    assert shown_in(channel) == progress("queued")
    await env.advance_time(0.2)
    assert shown_in(channel) == progress("generating")


async def test_changes_after_a_delayed_edit_are_edited_too(env, channel, alice):
    reporter, thinking = await reporter_on(env, channel, alice)
    await update(env, reporter, "submitted")  # delayed: the reply appeared just now
    await env.advance_time(2.1)
    assert shown_in(channel) == progress("submitted")
    await env.advance_time(5)
    await update(env, reporter, "generating")  # an interval later: at once
    assert shown_in(channel) == progress("generating")
    assert (reporter.edits, len(edits_of(env, thinking.id))) == (2, 2)


async def test_progress_changes_within_an_interval_fold_into_one_edit(env, channel, alice):
    reporter, thinking = await reporter_on(env, channel, alice)
    await env.advance_time(2.5)
    await update(env, reporter, "submitted")
    assert shown_in(channel) == progress("submitted")  # an interval has passed: at once

    await env.advance_time(0.5)
    await update(env, reporter, "queued", position=2)
    await update(env, reporter, "generating")
    await env.advance_time(1.4)
    assert shown_in(channel) == progress("submitted")  # 1.9 s since the last edit
    await env.advance_time(0.2)
    assert shown_in(channel) == progress("generating")  # the latest, once
    assert (reporter.edits, len(edits_of(env, thinking.id))) == (2, 2)


async def test_an_unchanged_progress_is_not_edited_again(env, channel, alice):
    reporter, thinking = await reporter_on(env, channel, alice)
    await env.advance_time(5)
    await update(env, reporter, "generating")
    await env.advance_time(5)
    await update(env, reporter, "generating")
    await env.advance_time(5)
    assert (reporter.edits, len(edits_of(env, thinking.id))) == (1, 1)


async def test_a_progress_changed_back_before_its_edit_is_not_edited(env, channel, alice):
    reporter, thinking = await reporter_on(env, channel, alice)
    await env.advance_time(5)
    await update(env, reporter, "generating")
    await env.advance_time(0.5)
    await update(env, reporter, "downloading")
    await update(env, reporter, "generating")  # what is shown already, by the time the pending edit is due
    await env.advance_time(5)
    assert (reporter.edits, len(edits_of(env, thinking.id))) == (1, 1)


async def test_a_failed_progress_edit_is_not_raised(env, channel, alice):
    reporter, _ = await reporter_on(env, channel, alice)
    await env.advance_time(5)
    env.inject_error("PATCH", "/webhooks/*", status=500)
    await update(env, reporter, "generating")
    assert shown_in(channel) == "thinking"
    assert reporter.edits == 1


async def test_the_final_edit_keeps_the_interval_after_the_last_progress_edit(env, channel, alice):
    reporter, _ = await reporter_on(env, channel, alice)
    await env.advance_time(5)
    await update(env, reporter, "generating")
    await env.advance_time(0.5)
    await update(env, reporter, "downloading")  # pending behind a timer
    final = env.bot.run(reporter.final_turn())
    await env.advance_time(1.4)
    assert not final.done()
    await env.advance_time(0.2)
    assert final.done()
    await env.advance_time(5)
    assert shown_in(channel) == progress("generating")  # the pending progress is dropped


async def test_the_final_edit_waits_out_even_half_a_second(env, channel, alice):
    reporter, _ = await reporter_on(env, channel, alice)
    await env.advance_time(5)
    await update(env, reporter, "generating")
    await env.advance_time(1.5)
    final = env.bot.run(reporter.final_turn())
    await env.advance_time(0.4)
    assert not final.done()
    await env.advance_time(0.2)
    assert final.done()


async def test_without_progress_edits_the_final_edit_follows_at_once(env, channel, alice):
    reporter, _ = await reporter_on(env, channel, alice)
    await update(env, reporter, "generating")  # pending: the reply appeared just now
    final = env.bot.run(reporter.final_turn())
    await env.advance_time(0.1)
    assert final.done()
    await env.advance_time(5)
    assert shown_in(channel) == "thinking"


async def test_the_final_edit_after_a_full_interval_waits_no_more(env, channel, alice):
    reporter, _ = await reporter_on(env, channel, alice)
    await env.advance_time(5)
    await update(env, reporter, "generating")
    await env.advance_time(2.0)
    final = env.bot.run(reporter.final_turn())
    await env.advance_time(0.01)
    assert final.done()


async def test_progress_speaks_the_language_and_shows_the_cancel_button(env, channel, alice):
    view = discord.ui.View()
    view.add_item(discord.ui.Button(label="Cancel", custom_id="cancel"))
    reporter, _ = await reporter_on(env, channel, alice, locale="ru", buttons=view)
    await env.advance_time(5)
    await update(env, reporter, "generating")
    shown = channel.history()[-1]
    assert shown.content == progress("generating", locale="ru") != progress("generating")
    assert [c.custom_id for row in shown.components for c in row.children] == ["cancel"]


# --- add_reroll ---


async def test_the_reroll_reaction_is_added(env, channel, alice):
    message = await env.bot.get_channel(channel.id).send("result")
    await add_reroll(message, None)
    assert [str(r.emoji) for r in channel.history()[-1].reactions] == [REROLL_EMOJI]


async def test_without_permission_to_react_the_result_says_how_to_reroll(env, channel, alice):
    message = await env.bot.get_channel(channel.id).send("result", embed=discord.Embed(title="Result"))
    env.inject_error("PUT", "/channels/*/reactions/*", status=403, code=50013, message="Missing Permissions")
    await add_reroll(message, "ru")
    shown = channel.history()[-1]
    assert shown.content == text("result.no_reaction", "ru") != text("result.no_reaction")
    assert shown.embeds[0].title == "Result"  # the result kept
    assert shown.reactions == []


async def test_without_permission_to_react_a_message_without_embed_is_left_alone(env, channel, alice):
    message = await env.bot.get_channel(channel.id).send("result")
    env.inject_error("PUT", "/channels/*/reactions/*", status=403, code=50013, message="Missing Permissions")
    await add_reroll(message, None)
    assert channel.history()[-1].content == "result"
    assert edits_of(env, message.id) == []


async def test_without_permission_to_react_a_partial_message_is_left_alone(env, channel, alice):
    bot_channel = env.bot.get_channel(channel.id)
    message = await bot_channel.send("result", embed=discord.Embed(title="Result"))
    env.inject_error("PUT", "/channels/*/reactions/*", status=403, code=50013, message="Missing Permissions")
    await add_reroll(bot_channel.get_partial_message(message.id), None)  # as recovery has it: no embeds to keep
    assert channel.history()[-1].content == "result"
    assert edits_of(env, message.id) == []


async def test_a_failing_explanation_is_not_raised(env, channel, alice):
    message = await env.bot.get_channel(channel.id).send("result", embed=discord.Embed(title="Result"))
    env.inject_error("PUT", "/channels/*/reactions/*", status=403, code=50013, message="Missing Permissions")
    env.inject_error("PATCH", "/channels/*/messages/*", status=500)
    await add_reroll(message, None)
    assert channel.history()[-1].content == "result"


async def test_discord_failing_on_the_reaction_is_not_raised(env, channel, alice):
    message = await env.bot.get_channel(channel.id).send("result", embed=discord.Embed(title="Result"))
    env.inject_error("PUT", "/channels/*/reactions/*", status=500)
    await add_reroll(message, None)
    shown = channel.history()[-1]
    assert (shown.content, shown.reactions) == ("result", [])  # no explanation: the reaction may work next time


# --- images read back ---


async def test_a_result_image_is_read_from_its_message(env, channel, alice):
    bot_channel = env.bot.get_channel(channel.id)
    message = await bot_channel.send(
        "result",
        files=[discord.File(io.BytesIO(b"notes"), "notes.txt"), discord.File(io.BytesIO(PNG), "result.png")],
    )
    assert await result_image(message) == PNG  # the image, not the first attachment
    assert await result_image(bot_channel.get_partial_message(message.id)) == PNG  # fetched first


async def test_a_result_without_attachment_is_gone(env, channel, alice):
    message = await env.bot.get_channel(channel.id).send("result")
    with pytest.raises(ImageGone):
        await result_image(message)


async def test_a_deleted_result_is_gone(env, channel, alice):
    bot_channel = env.bot.get_channel(channel.id)
    message = await bot_channel.send("result", file=discord.File(io.BytesIO(PNG), "result.png"))
    await message.delete()
    with pytest.raises(ImageGone):
        await result_image(bot_channel.get_partial_message(message.id))


async def test_an_upload_is_read_back_by_its_url(env, channel, alice):
    message = await env.bot.get_channel(channel.id).send("result", file=discord.File(io.BytesIO(PNG), "up.png"))
    assert await uploaded_image(env.bot, message.attachments[0].url) == PNG


async def test_an_upload_the_cdn_refuses_is_gone(env, channel, alice):
    with pytest.raises(ImageGone):
        await uploaded_image(env.bot, "https://cdn.discordapp.com/attachments/1/2/missing.png")
