"""The buttons under a result (🔄 reroll, ✏️ edit, 🗑️ delete) and a refused 🔄 reaction, through simcord against
the local Prodia server, on both APIs."""

from __future__ import annotations

import base64
import io
import json

import discord
import pytest
from PIL import Image

from bot.render import REROLL_EMOJI
from tests.plugins.discord_world import results_in

pytestmark = pytest.mark.simcord(settle_timeout=10)

NOT_ALLOWED = "Only the person who asked for this image (or a member with Manage Messages) may do that."


def fields_of(embed) -> dict[str, str]:
    return {field.name: field.value for field in embed.fields}


def submits(prodia) -> list:
    return prodia.image_posts()


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


async def test_a_result_carries_its_buttons(world, api):
    original = await imagine(world)
    expected = [
        ("imagine:reroll", "Reroll", REROLL_EMOJI),
        ("imagine:edit", "Edit", "✏️"),
        ("imagine:vary", "Vary", "🎨"),
        ("imagine:upscale", "Upscale", "⬆️"),
        ("imagine:delete", "Delete", "🗑️"),
    ]
    if api == "v2":  # the default model (FLUX.1) has no known image-to-image job type
        expected.remove(("imagine:vary", "Vary", "🎨"))
    assert buttons(original) == expected


async def test_buttons_speak_the_servers_language(world, api):
    await world.admin.slash(world.channel, "settings set", language="ru")
    original = await imagine(world)
    assert [label for _, label, _ in buttons(original)][:2] == ["Заново", "Изменить"]
    assert [label for _, label, _ in buttons(original)][-2:] == ["Увеличить", "Удалить"]


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
    assert await reroll.attachments[0].read() == prodia.image_jobs[list(prodia.image_jobs)[-1]].image
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


# -- vary and upscale ------------------------------------------------------------------------------


def size_of(data: bytes) -> tuple[int, int]:
    return Image.open(io.BytesIO(data)).size


def multipart(post) -> tuple[dict, bytes]:
    """(the job.json part, the input part's bytes) of a v2 multipart request."""
    parts = post.form_parts()
    return json.loads(parts["job"].get_content()), parts["input"].get_content()


@pytest.mark.parametrize("api", ["v1"])
async def test_v1_vary_sends_the_result_to_transform_and_replies_with_a_variation(world, prodia, api):
    original = await imagine(world)
    image = await original.attachments[0].read()
    click = await world.alice.click(original, custom_id="imagine:vary")
    assert click.acknowledged and not click.followups

    post = submits(prodia)[-1]
    assert post.path == "/v1/sd/transform"
    assert base64.b64decode(post.json["imageData"]) == image
    assert post.json["prompt"] == "a red fox" and post.json["denoising_strength"] == 0.5
    assert post.json["seed"] != 42
    (variation,) = [m for m in replies_to(world, original) if m.embeds]
    assert variation.embeds[0].description == "A variation of the image it replies to (strength 0.5)."
    assert await variation.attachments[0].read() == prodia.image_jobs[list(prodia.image_jobs)[-1]].image


@pytest.mark.parametrize("api", ["v1"])
async def test_v1_upscale_sends_resize_2_and_replies_with_the_image_twice_as_large(world, prodia, api):
    original = await imagine(world)
    image = await original.attachments[0].read()
    await world.alice.click(original, custom_id="imagine:upscale")
    post = submits(prodia)[-1]
    assert post.path == "/v1/upscale" and post.json["resize"] == 2
    assert base64.b64decode(post.json["imageData"]) == image
    (upscaled,) = [m for m in replies_to(world, original) if m.embeds]
    width, height = size_of(image)
    assert size_of(await upscaled.attachments[0].read()) == (2 * width, 2 * height)
    assert upscaled.embeds[0].description == "Upscaled 2×."
    assert [b[0] for b in buttons(upscaled)] == ["imagine:reroll", "imagine:edit", "imagine:delete"]


class TestV2ImageJobs:
    @pytest.fixture
    def bot_env(self) -> dict[str, str]:
        return {"PRODIA_V2_MODELS": "flux-dev,sdxl"}

    @pytest.mark.parametrize("api", ["v2"])
    async def test_vary_sends_an_img2img_job_with_the_result_as_its_input_part(self, world, prodia, api):
        original = await imagine(world, model="sdxl")
        image = await original.attachments[0].read()
        await world.alice.click(original, custom_id="imagine:vary")
        job, sent_image = multipart(submits(prodia)[-1])
        assert job["type"] == "inference.sdxl.img2img.v1"
        assert job["config"]["prompt"] == "a red fox" and job["config"]["strength"] == 0.5
        assert sent_image == image
        (variation,) = [m for m in replies_to(world, original) if m.embeds]
        assert variation.embeds[0].description == "A variation of the image it replies to (strength 0.5)."

    @pytest.mark.parametrize("api", ["v2"])
    async def test_upscale_sends_the_upscale_job_type(self, world, prodia, api):
        original = await imagine(world)
        image = await original.attachments[0].read()
        await world.alice.click(original, custom_id="imagine:upscale")
        job, sent_image = multipart(submits(prodia)[-1])
        assert (job["type"], job["config"]["upscale"], sent_image) == ("inference.upscale.v1", 2, image)
        (upscaled,) = [m for m in replies_to(world, original) if m.embeds]
        width, height = size_of(image)
        assert size_of(await upscaled.attachments[0].read()) == (2 * width, 2 * height)


async def test_vary_and_upscale_by_someone_else_are_refused_privately(world, prodia, api):
    original = await imagine(world)
    click = await world.bob.click(original, custom_id="imagine:upscale")
    assert click.followups[-1].ephemeral and click.followups[-1].content == NOT_ALLOWED
    assert len(submits(prodia)) == 1


async def test_an_upscale_over_the_upload_limit_is_refused_before_prodia(world, prodia, api, monkeypatch):
    prodia.image_scale = 1.0  # a full-size image
    original = await imagine(world)
    import simcord.interactions

    base_payload = simcord.interactions.base_payload

    def small_uploads(*args, **kwargs):  # a channel whose upload limit is 0.01 MB (10 KiB)
        record, payload = base_payload(*args, **kwargs)
        payload["attachment_size_limit"] = 10_485
        return record, payload

    monkeypatch.setattr(simcord.interactions, "base_payload", small_uploads)
    click = await world.alice.click(original, custom_id="imagine:upscale")
    assert click.followups[-1].ephemeral
    assert click.followups[-1].content == (
        "Upscaled, this image would be over this channel's upload limit (0.01 MB) even compressed, so it was not sent."
    )
    assert len(submits(prodia)) == 1


async def test_a_result_image_that_cannot_be_read_back_is_said_privately(world, prodia, api):
    original = await imagine(world)
    world.env.backend.cdn._blobs.clear()  # internal: simcord's CDN loses the upload
    click = await world.alice.click(original, custom_id="imagine:upscale")
    assert click.followups[-1].content == (
        "The result's image can no longer be read from Discord, so it cannot be worked on."
    )
    assert len(submits(prodia)) == 1


# -- cancel --------------------------------------------------------------------------------------


async def progress_of(world):
    rows = await world.bot.pipeline.store._query("SELECT id, message_id FROM jobs")
    assert len(rows) == 1
    return rows[0]["id"], next(m for m in world.channel.history() if m.id == rows[0]["message_id"])


@pytest.mark.simcord(settle_timeout=0.5)
class TestQueue:
    @pytest.fixture
    def bot_env(self) -> dict[str, str]:
        return {"MAX_CONCURRENT_JOBS": "1", "QUEUE_SIZE": "5", "PRODIA_POLL_INTERVAL": "2", "PRODIA_TIMEOUT": "3600"}

    @pytest.mark.parametrize("api", ["v1"])
    async def test_cancel_takes_a_waiting_job_out_of_the_queue_before_it_is_sent(self, world, prodia, api):
        prodia.job_duration = 30
        await unsettled(world.alice.slash(world.channel, "imagine", prompt="first"))
        # bob's job waits on the queue, which simcord does not recognise as parked (see test_durability)
        await unsettled(world.bob.slash(world.channel, "imagine", prompt="second"))
        rows = await world.bot.pipeline.store._query("SELECT id, message_id FROM jobs ORDER BY created_at")
        waiting = next(m for m in world.channel.history() if m.id == rows[1]["message_id"])
        assert "Waiting in the bot's queue: position 1" in waiting.content
        assert world.bot.pipeline.queue.waiting == 1
        await world.bob.click(waiting, custom_id=f"imagine:cancel:{rows[1]['id']}")
        shown = next(m for m in world.channel.history() if m.id == waiting.id)
        assert shown.content == f"✖️ Cancelled by <@{world.bob.id}>."  # never sent: nothing to take back
        assert world.bot.pipeline.queue.waiting == 0
        assert [r for r in submits(prodia) if "second" in json.dumps(r.json)] == []


# -- restarts --------------------------------------------------------------------------------------


async def unsettled(action) -> None:
    """Run a member's action whose job is still waiting on Prodia when simcord stops settling (that is the point)."""
    try:
        await action
    except TimeoutError:
        pass


async def finished_imagine(world) -> discord.Message:
    await unsettled(world.alice.slash(world.channel, "imagine", prompt="a red fox", seed=42))
    await world.env.advance_time(5)
    (original,) = results_in(world.channel)
    return original


@pytest.mark.simcord(settle_timeout=0.5)
class TestJobsInFlight:
    @pytest.fixture
    def bot_env(self) -> dict[str, str]:
        return {"PRODIA_POLL_INTERVAL": "2", "PRODIA_TIMEOUT": "3600"}

    @pytest.mark.parametrize("api", ["v1"])
    async def test_a_vary_cut_off_by_a_restart_is_finished_by_the_next_start(self, world, prodia, api):
        original = await finished_imagine(world)
        prodia.job_duration = 3
        await unsettled(world.alice.click(original, custom_id="imagine:vary"))
        assert [m for m in replies_to(world, original) if m.embeds] == []  # still running
        await world.restart()
        await world.env.advance_time(10)
        (variation,) = [m for m in replies_to(world, original) if m.embeds]
        assert variation.embeds[0].description == "A variation of the image it replies to (strength 0.5)."
        assert len([r for r in submits(prodia) if r.path == "/v1/sd/transform"]) == 1  # polled again, not resent

    @pytest.mark.parametrize("api", ["v1"])
    async def test_a_vary_whose_original_is_gone_after_a_restart_says_so(self, world, prodia, api):
        original = await finished_imagine(world)
        prodia.job_duration = 3
        await unsettled(world.alice.click(original, custom_id="imagine:vary"))
        (progress,) = replies_to(world, original)
        world.env.backend.cdn._blobs.clear()  # internal: the original's image is gone from the CDN
        await world.restart()
        await world.env.advance_time(10)
        shown = next(m for m in world.channel.history() if m.id == progress.id)
        assert shown.content == "The result's image can no longer be read from Discord, so it cannot be worked on."
        rows = await world.bot.pipeline.store._query("SELECT state, error FROM jobs ORDER BY created_at")
        assert (rows[-1]["state"], rows[-1]["error"]) == ("failed", "action.image_gone")

    async def test_cancel_stops_a_running_job_and_says_it_was_sent(self, world, prodia, api):
        prodia.job_duration = 30
        await unsettled(world.alice.slash(world.channel, "imagine", prompt="a harbour"))
        job_id, progress = await progress_of(world)
        assert (f"imagine:cancel:{job_id}", "Cancel", "✖️") in buttons(progress)

        refused = await world.bob.click(progress, custom_id=f"imagine:cancel:{job_id}")
        assert refused.response.ephemeral and refused.response.content == NOT_ALLOWED
        await world.alice.click(progress, custom_id=f"imagine:cancel:{job_id}")
        polls = sum(job.polls for job in prodia.image_jobs.values())
        await world.env.advance_time(5)  # many poll intervals

        shown = next(m for m in world.channel.history() if m.id == progress.id)
        assert shown.content.startswith(f"✖️ Cancelled by <@{world.alice.id}>. It had already been sent")
        assert not shown.components and not shown.attachments
        assert sum(job.polls for job in prodia.image_jobs.values()) == polls  # no longer polled
        assert (await world.bot.pipeline.store.get_job(job_id)).state == "failed"
