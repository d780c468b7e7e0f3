"""`/imagine count:` — several images in one message: one Prodia job per image with consecutive seeds, a gallery of
embeds, every image counted against the limits, a button per image to vary or upscale it. simcord for Discord, the
local Prodia server over real HTTP, both APIs."""

from __future__ import annotations

import base64
import io
import json

import pytest
from PIL import Image

from devtools.local_prodia import Fault

pytestmark = pytest.mark.simcord(settle_timeout=10)


def fields_of(embed) -> dict[str, str]:
    return {field.name: field.value for field in embed.fields}


def seed_sent(api: str, post) -> int:
    if api == "v1":
        return post.json["seed"]
    return (
        post.json["config"]["seed"]
        if post.json
        else json.loads(post.form_parts()["job"].get_content())["config"]["seed"]
    )


def private_answer(result):
    assert result.response.ephemeral
    assert not result.deferred  # refused before the defer: no public reply ever appeared
    return result.response


def buttons(message) -> list[list[dict]]:
    """The buttons under a message (Discord's dicts), row by row."""
    return [row["components"] for row in message.components]


def button_ids(message) -> list[list[str]]:
    return [[button["custom_id"] for button in row] for row in buttons(message)]


def labels(message) -> list[str]:
    return [button.get("label") for row in buttons(message) for button in row]


def replies_to(world, original) -> list:
    return [m for m in world.channel.history() if m.reference and m.reference.message_id == original.id and m.embeds]


async def test_count_4_delivers_four_images_with_four_seeds_in_one_message(world, prodia, api):
    result = await world.alice.slash(world.channel, "imagine", prompt="four foxes", seed=42, count=4)
    message = result.response

    assert sorted(seed_sent(api, post) for post in prodia.image_posts()) == [42, 43, 44, 45]
    assert len(prodia.image_jobs) == 4  # one Prodia job per image: v2 has no batch field
    assert len(message.attachments) == 4
    made = {job.image for job in prodia.image_jobs.values()}
    assert {await attachment.read() for attachment in message.attachments} == made  # each image, as Prodia made it
    first, *others = message.embeds
    assert first.title == "four foxes"
    assert fields_of(first)["Seeds"] == "42, 43, 44, 45"
    assert "Seed" not in fields_of(first)
    # A gallery: four embeds sharing one URL, each showing one of the attachments (Discord draws them as one grid).
    assert len(others) == 3 and len({embed.url for embed in message.embeds}) == 1 and first.url
    assert [embed.image.url for embed in message.embeds] == [f"attachment://{a.filename}" for a in message.attachments]
    assert [a.filename.split(".")[0] for a in message.attachments] == [f"imagine-{seed}" for seed in (42, 43, 44, 45)]


async def test_seeds_past_the_largest_go_on_from_zero(world, prodia, api):
    await world.alice.slash(world.channel, "imagine", prompt="wrap", seed=2**32 - 2, count=3)
    assert sorted(seed_sent(api, post) for post in prodia.image_posts()) == [0, 2**32 - 2, 2**32 - 1]


async def test_one_image_is_still_one_embed_with_its_seed(world, prodia, api):
    message = (await world.alice.slash(world.channel, "imagine", prompt="one fox", seed=7, count=1)).response
    assert len(message.embeds) == 1 and len(message.attachments) == 1
    assert fields_of(message.embeds[0])["Seed"] == "7"
    assert message.embeds[0].url is None


@pytest.mark.parametrize("bot_env", [{"USER_DAILY_CAP": "5"}])
async def test_count_is_refused_when_it_would_pass_the_daily_cap(world, prodia, api):
    assert len((await world.alice.slash(world.channel, "imagine", prompt="first", count=4)).response.attachments) == 4
    refused = await world.alice.slash(world.channel, "imagine", prompt="second", count=2)
    assert private_answer(refused).content.startswith("You have reached your daily limit of 5 images.")
    assert len(prodia.image_jobs) == 4  # nothing more was sent
    # One more image still fits under the cap.
    assert (await world.alice.slash(world.channel, "imagine", prompt="last", count=1)).response.embeds
    assert len(prodia.image_jobs) == 5


async def test_a_servers_daily_cap_counts_every_image(world, prodia, api):
    await world.admin.slash(world.channel, "settings set", daily_cap=3)
    refused = await world.alice.slash(world.channel, "imagine", prompt="too many", count=4)
    assert private_answer(refused).content == (
        "This server has reached its daily limit of 3 images. The count starts again at midnight UTC."
    )
    assert (await world.alice.slash(world.channel, "imagine", prompt="three", count=3)).response.embeds
    refused = await world.bob.slash(world.channel, "imagine", prompt="one more")
    assert "reached its daily limit of 3 images" in private_answer(refused).content
    assert len(prodia.image_jobs) == 3


@pytest.mark.parametrize("bot_env", [{"USER_MAX_JOBS": "1"}])
async def test_a_batch_is_one_job_for_the_users_jobs_in_flight(world, prodia, api):
    message = (await world.alice.slash(world.channel, "imagine", prompt="one request", count=4)).response
    assert len(message.attachments) == 4


@pytest.mark.parametrize("bot_env", [{"MAX_CONCURRENT_JOBS": "3", "QUEUE_SIZE": "0"}])
async def test_a_batch_needs_a_place_in_the_queue_for_each_image(world, prodia, api):
    refused = await world.alice.slash(world.channel, "imagine", prompt="crowd", count=4)
    assert private_answer(refused).content == "The bot is at capacity (0 images waiting). Please try again in a minute."
    assert prodia.image_posts() == []
    message = (await world.alice.slash(world.channel, "imagine", prompt="three", count=3)).response
    assert len(message.attachments) == 3


async def test_an_image_that_fails_leaves_the_others_delivered_and_says_so(world, prodia, api):
    prodia.add_fault(Fault("job_fails", times=1))
    message = (await world.alice.slash(world.channel, "imagine", prompt="one fails", seed=10, count=3)).response
    assert len(message.attachments) == 2
    assert len(message.embeds) == 2
    assert message.embeds[0].description.startswith("1 of 3 images could not be shown: ")
    seeds = fields_of(message.embeds[0])["Seeds"].split(", ")
    assert len(seeds) == 2 and set(seeds) < {"10", "11", "12"}
    metrics = world.bot.pipeline.metrics.exposition().decode()
    assert 'imagine_prodia_errors_total{kind="job_failed"} 1.0' in metrics  # the lost image, counted once


async def test_a_batch_whose_every_image_fails_says_why_like_one_image(world, prodia, api):
    prodia.add_fault(Fault("job_fails", times=2))
    message = (await world.alice.slash(world.channel, "imagine", prompt="all fail", count=2)).response
    assert message.attachments == [] and message.embeds == []
    assert "could not make this image" in message.content


async def test_a_batch_gets_a_vary_and_upscale_button_per_image(world, prodia, api):
    message = (await world.alice.slash(world.channel, "imagine", prompt="grid", model="sdxl", count=4)).response
    rows = button_ids(message)
    assert rows[0] == ["imagine:reroll", "imagine:edit", "imagine:delete"]
    assert ["imagine:upscale:0", "imagine:upscale:1", "imagine:upscale:2", "imagine:upscale:3"] in rows
    assert "Upscale 4" in labels(message)
    vary = ["imagine:vary:0", "imagine:vary:1", "imagine:vary:2", "imagine:vary:3"]
    if api == "v1":
        assert rows[1] == vary and labels(message)[3:7] == ["Vary 1", "Vary 2", "Vary 3", "Vary 4"]
    else:  # sdxl is not among this server's v2 models: the default (FLUX.1) has no image-to-image job type
        assert vary not in rows


@pytest.mark.parametrize("api", ["v2"])
@pytest.mark.parametrize("bot_env", [{"PRODIA_V2_MODELS": "sdxl"}])
async def test_upscale_n_upscales_the_nth_image_of_the_batch(world, prodia, api):
    message = (await world.alice.slash(world.channel, "imagine", prompt="pick one", seed=5, count=3)).response
    third = await message.attachments[2].read()
    await world.alice.click(message, custom_id="imagine:upscale:2")
    post = prodia.image_posts()[-1]
    parts = post.form_parts()
    assert json.loads(parts["job"].get_content())["type"] == "inference.upscale.v1"
    assert parts["input"].get_content() == third
    (upscaled,) = replies_to(world, message)
    assert len(upscaled.attachments) == 1  # one image: the one clicked
    width, height = Image.open(io.BytesIO(third)).size
    assert Image.open(io.BytesIO(await upscaled.attachments[0].read())).size == (2 * width, 2 * height)


@pytest.mark.parametrize("api", ["v1"])
async def test_vary_n_varies_the_nth_image_of_the_batch(world, prodia, api):
    message = (await world.alice.slash(world.channel, "imagine", prompt="pick two", count=2)).response
    second = await message.attachments[1].read()
    await world.alice.click(message, custom_id="imagine:vary:1")
    transform = prodia.image_posts()[-1]
    assert transform.path.endswith("/transform")
    assert base64.b64decode(transform.json["imageData"]) == second
    (variation,) = replies_to(world, message)
    assert len(variation.attachments) == 1


async def test_reroll_of_a_batch_makes_a_new_batch(world, prodia, api):
    message = (await world.alice.slash(world.channel, "imagine", prompt="again", seed=1, count=2)).response
    await world.alice.click(message, custom_id="imagine:reroll")
    (reroll,) = replies_to(world, message)
    assert len(reroll.attachments) == 2
    first, second = sorted(seed_sent(api, post) for post in prodia.image_posts()[2:])
    assert second == (first + 1) % 2**32
    assert fields_of(reroll.embeds[0])["Seeds"] == f"{first}, {second}"


async def test_count_speaks_russian(world, prodia, api):
    await world.admin.slash(world.channel, "settings set", language="ru")
    message = (await world.alice.slash(world.channel, "imagine", prompt="лисы", seed=3, count=2)).response
    assert fields_of(message.embeds[0])["Сиды"] == "3, 4"
    assert "Увеличить 2" in labels(message)


@pytest.mark.simcord(settle_timeout=0.5)  # the bot waits on a slow Prodia: the test moves the clock itself
@pytest.mark.parametrize("bot_env", [{"PRODIA_POLL_INTERVAL": "2", "PRODIA_TIMEOUT": "3600"}])
async def test_a_batch_resumed_after_a_restart_polls_each_image_and_sends_none_again(world, prodia, api):
    prodia.job_duration = 3600  # running until finished below
    await world.alice.slash(world.channel, "imagine", prompt="a harbour", seed=3, count=2)
    await world.env.advance_time(5)
    rows = await world.bot.pipeline.store._query("SELECT id FROM jobs")
    job = await world.bot.pipeline.store.get_job(rows[0]["id"])
    assert len(rows) == 1 and job.images == 2
    assert job.state == "submitted"
    assert sorted(job.prodia_job_id.split(",")) == sorted(prodia.image_jobs)  # both images, resumable by their ids

    await world.restart()
    prodia.finish_all()
    await world.env.advance_time(10)

    assert (await world.bot.pipeline.store.get_job(job.id)).state == "delivered"
    (delivered,) = [m for m in world.channel.history() if m.attachments]
    assert len(delivered.attachments) == 2
    assert fields_of(delivered.embeds[0])["Seeds"] == "3, 4"
    assert len(prodia.image_posts()) == 2  # neither image was sent again


@pytest.mark.parametrize("api", ["v2"])
async def test_each_image_of_a_batch_is_checked_and_withheld_as_one_would_be(world, prodia, api):
    result = await world.alice.slash(world.channel, "imagine", prompt="a beach, label-high", count=2)
    assert result.response.content.startswith("The image was withheld: the content check rated it possibly sexual")
    assert not result.response.attachments and not result.response.embeds
    classified = [r for r in prodia.requests if r.method == "POST" and b"inference.vit.img2label.v1" in r.body]
    assert len(classified) == 2
    assert {job.image for job in prodia.image_jobs.values()} == {
        post.form_parts()["input"].get_content() for post in classified
    }


@pytest.mark.parametrize("api", ["v2"])
async def test_a_spoilered_batch_hides_every_image(world, prodia, api):
    await world.admin.slash(world.channel, "settings set", nsfw="spoiler")
    message = (await world.alice.slash(world.channel, "imagine", prompt="a beach, label-medium", count=3)).response
    assert [a.filename.startswith("SPOILER_imagine-") for a in message.attachments] == [True, True, True]
    (embed,) = message.embeds  # no gallery: an embed's image is never hidden
    assert not embed.image.url
    assert embed.description.endswith("Shown as a spoiler: the content check rated it possibly sexual.")


@pytest.mark.simcord(settle_timeout=0.5)  # the bot waits on a slow Prodia: the test moves the clock itself
@pytest.mark.parametrize("api", ["v1"])
@pytest.mark.parametrize("bot_env", [{"PRODIA_POLL_INTERVAL": "2", "PRODIA_TIMEOUT": "3600"}])
async def test_a_vary_of_a_batch_image_resumed_after_a_restart_varies_that_image(world, prodia, api):
    await world.alice.slash(world.channel, "imagine", prompt="two boats", count=2)
    await world.env.advance_time(5)  # polled: done
    (message,) = [m for m in world.channel.history() if m.attachments]
    second = await message.attachments[1].read()
    prodia.add_fault(Fault("slow", delay=600, path="/v1/sd/transform"))
    try:
        await world.alice.click(message, custom_id="imagine:vary:1")
    except TimeoutError:
        pass  # the transform is in flight: nothing settles until the clock moves

    await world.restart()
    await world.env.advance_time(5)

    transforms = [post for post in prodia.image_posts() if post.path.endswith("/transform")]
    assert len(transforms) == 2  # sent, cut off by the restart, sent again
    assert {base64.b64decode(post.json["imageData"]) for post in transforms} == {second}
    (variation,) = replies_to(world, message)
    assert len(variation.attachments) == 1


@pytest.mark.simcord(settle_timeout=0.5)  # the jobs are held at Prodia: nothing settles until they are released
@pytest.mark.parametrize("bot_env", [{"PRODIA_POLL_INTERVAL": "2", "PRODIA_TIMEOUT": "3600"}])
async def test_a_batchs_images_run_at_prodia_at_the_same_time(world, prodia, api):
    prodia.hold()  # every image job stays running until released
    try:
        await world.alice.slash(world.channel, "imagine", prompt="together", count=4)
    except TimeoutError:
        pass
    await world.env.advance_time(5)
    assert len(prodia.held) == 4  # all four at Prodia at once, none waiting for another
    assert prodia.release() == 4
    await world.env.advance_time(5)
    (message,) = [m for m in world.channel.history() if m.attachments]
    assert len(message.attachments) == 4
