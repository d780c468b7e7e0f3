"""/imagine end to end: simcord for Discord, the local Prodia server over real HTTP, both APIs."""

from __future__ import annotations

import base64
import dataclasses
import json

import discord
import pytest

from bot.render import REROLL_EMOJI
from devtools.local_prodia import Fault
from tests.plugins.discord_world import DISCORD_TOKEN, PRODIA_KEY, results_in

pytestmark = pytest.mark.simcord(settle_timeout=10)


def prodia_submits(prodia):
    return prodia.image_posts()


def original_edits(env):
    return [r for r in env.http_requests if r.method == "PATCH" and r.path.endswith("/messages/@original")]


def fields_of(embed) -> dict[str, str]:
    return {field.name: field.value for field in embed.fields}


async def test_imagine_defers_shows_progress_and_posts_the_image(world, prodia, api):
    result = await world.alice.slash(world.channel, "imagine", prompt="a lighthouse at dusk", sampler="DDIM", seed=42)

    callbacks = [r for r in world.env.http_requests if r.path.endswith("/callback")]
    assert callbacks[0].json["type"] == 5  # deferred, "thinking"
    edits = original_edits(world.env)
    assert len(edits) >= 2
    assert "▰" in edits[0].json["content"]  # a progress bar before the result

    message = result.response
    embed = message.embeds[0]
    assert embed.title == "a lighthouse at dusk"
    assert message.content == ""
    fields = fields_of(embed)
    assert fields["Seed"] == "42"
    assert fields["Aspect ratio"] == "Square"
    assert embed.footer.text.startswith("Requested by alice")
    attachment = message.attachments[0]
    assert embed.image.url == f"attachment://{attachment.filename}"

    (submit,) = prodia_submits(prodia)
    job = next(iter(prodia.image_jobs.values()))
    assert await attachment.read() == job.image
    if api == "v1":
        assert submit.json["sampler"] == "DDIM"
        assert submit.json["seed"] == 42
        assert fields["Sampler"] == "DDIM"
        assert fields["Model"] == "absolutereality_v181"  # as people know it
        assert fields["Checkpoint"] == "absolutereality_v181.safetensors [3d9d4d2b]"  # and its full name
    else:
        assert submit.json["config"]["seed"] == 42
        assert "sampler" not in submit.json["config"]
        assert "Sampler" not in fields
        assert "flux-fast does not use: Sampler." in embed.description  # stated, not silently dropped

    reactions = [r for r in world.env.http_requests if r.method == "PUT" and "/reactions/" in r.path]
    assert len(reactions) == 1
    assert [(str(r.emoji), r.count) for r in message.message.reactions] == [(REROLL_EMOJI, 1)]


async def test_unknown_model_is_replaced_by_the_default_and_said(world, prodia, api):
    result = await world.alice.slash(world.channel, "imagine", prompt="a fox", model="no-such-model")
    embed = result.response.embeds[0]
    default = world.bot.pipeline.catalog.default
    assert f"There is no model “no-such-model”, so {default.name} was used (/models lists them)." in embed.description
    assert fields_of(embed)["Model"] == default.short_name


def messages_sent(env) -> list[dict]:
    """Every message the bot sent or edited, by the channel or an interaction (its answer, its webhook)."""
    bodies = []
    for request in env.http_requests:
        body = request.json
        if request.method not in ("POST", "PATCH") or not isinstance(body, dict):
            continue
        if request.path.endswith("/callback"):  # an interaction's answer: the message is its `data`
            body = body.get("data")
        elif not ("/messages" in request.path or request.path.startswith("/webhooks/")):
            continue  # not a message (a command sync, a reaction)
        if body:
            bodies.append(body)
    return bodies


def assert_each_pings_nobody(bodies: list[dict]) -> None:
    """Each message says so itself: without `allowed_mentions` Discord pings everyone its content mentions."""
    assert bodies
    for body in bodies:
        assert body.get("allowed_mentions") == {"parse": []}, body  # no @everyone, user, role or replied user


async def test_a_prompt_with_mentions_pings_nobody(world, prodia, api):
    mentions = f"@everyone look <@{world.bob.id}> <@&{world.guild.id}>"
    result = await world.alice.slash(world.channel, "imagine", prompt=mentions)
    # Shown as typed: escaped, so no mention renders either.
    assert result.response.embeds[0].title == rf"\@everyone look \<\@{world.bob.id}\> \<\@&{world.guild.id}\>"
    await world.alice.react(result.response, REROLL_EMOJI)  # a reroll is posted anew, as a reply
    assert len(results_in(world.channel)) == 2
    assert_each_pings_nobody([body for body in messages_sent(world.env) if str(world.bob.id) in json.dumps(body)])


async def test_mentions_in_prodias_reason_ping_nobody(world, prodia, api):
    # Prodia's reason is shown as it came, and may quote the prompt: the mentions reach the message's content.
    mentions = f"@everyone look <@{world.bob.id}> <@&{world.guild.id}>"
    prodia.add_fault(Fault("status", status=400, message=f"prompt refused: {mentions}", times=None))
    result = await world.alice.slash(world.channel, "imagine", prompt=mentions)
    assert result.response.content == (
        f"The image service refused these settings (prompt refused: {mentions}). Change them and try again."
    )
    assert_each_pings_nobody([body for body in messages_sent(world.env) if mentions in (body.get("content") or "")])


@pytest.mark.parametrize(
    ("fault", "expected"),
    [
        (Fault("status", status=402, times=None), "out of credit"),
        (Fault("status", status=401, times=None), "refused the bot's access key"),
        (Fault("status", status=400, message="steps too high", times=None), "refused these settings (steps too high)"),
        (Fault("status", status=503, times=None), "not answering right now"),
        (Fault("job_fails"), "could not make this image"),
    ],
)
async def test_prodia_failure_ends_in_a_clear_message(world, prodia, api, fault, expected):
    prodia.add_fault(fault)
    result = await world.alice.slash(world.channel, "imagine", prompt="a fox")
    message = result.response
    assert expected in message.content
    assert not message.embeds and not message.attachments
    assert PRODIA_KEY not in message.content


@pytest.mark.parametrize("api", ["v2"])
async def test_refused_config_in_the_live_shape_shows_prodias_reason_only(world, prodia, api):
    # The live API refuses a config with a multipart answer whose job part carries the reason.
    flux = prodia.job_types["inference.flux-fast.schnell.txt2img.v2"]
    steps = dataclasses.replace(flux.properties["steps"], maximum=2)
    prodia.job_types[flux.name] = dataclasses.replace(flux, properties={**flux.properties, "steps": steps})
    result = await world.alice.slash(world.channel, "imagine", prompt="a fox")
    content = result.response.content
    assert content == (
        "The image service refused these settings (jsonschema validation failed: /config/steps/maximum: "
        "got 4, want 2). Change them and try again."
    )
    assert not prodia.image_jobs  # refused: nothing was generated (or billed)


@pytest.mark.parametrize("api", ["v2"])
@pytest.mark.parametrize(
    ("fault", "expected", "sent"),
    [
        (Fault("status", status=401, message="token is invalid", shape="text", times=None), "access key", 1),
        (Fault("status", status=429, retry_after=0, shape="text", times=None), "not available to the bot's account", 6),
    ],
)
async def test_live_auth_and_capacity_answers_end_in_a_sentence(world, prodia, api, fault, expected, sent):
    prodia.add_fault(dataclasses.replace(fault, path="/v2/job/async"))
    result = await world.alice.slash(world.channel, "imagine", prompt="a fox")
    assert expected in result.response.content
    assert sum(r.path == "/v2/job/async" for r in prodia.requests) == sent  # 401 final; 429: PRODIA_MAX_RETRIES


class TestProdiaNeverFinishes:
    @pytest.fixture
    def bot_env(self) -> dict[str, str]:
        return {"PRODIA_TIMEOUT": "3"}

    @pytest.mark.parametrize("api", ["v1"])
    async def test_the_reply_ends_in_a_timeout_message(self, world, prodia, api):
        prodia.add_fault(Fault("never_finish"))
        result = await world.alice.slash(world.channel, "imagine", prompt="a fox")
        await world.env.advance_time(10)  # past PRODIA_TIMEOUT on the bot's clock
        message = result.response
        assert message.content == "The image took longer than 3 seconds, so the bot gave up. Please try again."
        assert not message.embeds and not message.attachments


async def test_the_bot_keeps_working_after_a_failure(world, prodia, api):
    prodia.add_fault(Fault("status", status=500, times=None))
    await world.alice.slash(world.channel, "imagine", prompt="first")
    prodia.clear_faults()
    result = await world.alice.slash(world.channel, "imagine", prompt="second")
    assert result.response.embeds[0].title == "second"


async def test_model_autocomplete_ranks_prefix_matches_first(world, api):
    query = "dream" if api == "v1" else "dev"
    choices = await world.alice.autocomplete(world.channel, "imagine", "model", query)
    names = [choice["value"] for choice in choices]
    assert names and all(query in name.lower() for name in names)
    if api == "v1":
        assert names[0].startswith("dream")  # prefix matches before "…_dreamshaper…" style word matches
    else:
        assert names == ["flux-dev"]  # found through its alias "dev"


async def test_secrets_never_reach_discord(world, prodia, api):
    await world.alice.slash(world.channel, "imagine", prompt="a fox")
    transcript = world.env.transcript()
    assert PRODIA_KEY not in transcript
    assert DISCORD_TOKEN not in transcript


async def test_commands_are_not_synced_again_when_unchanged(world, api):
    syncs = lambda: [r for r in world.env.http_requests if r.method == "PUT" and r.path.endswith("/commands")]  # noqa: E731
    assert len(syncs()) == 1  # a fresh database syncs
    await world.restart()
    assert len(syncs()) == 1
    result = await world.alice.slash(world.channel, "imagine", prompt="after restart")
    assert result.response.embeds[0].title == "after restart"


async def test_an_image_over_the_upload_limit_is_re_encoded_to_fit(world, prodia, api, monkeypatch):
    import simcord.interactions
    from PIL import Image

    original = simcord.interactions.base_payload

    def small_uploads(*args, **kwargs):  # as in a channel of a server without boosts, only smaller
        record, payload = original(*args, **kwargs)
        payload["attachment_size_limit"] = 4_000
        return record, payload

    monkeypatch.setattr(simcord.interactions, "base_payload", small_uploads)
    prodia.image_scale = 1.0  # a full-size PNG
    result = await world.alice.slash(world.channel, "imagine", prompt="a big one", aspect_ratio="landscape")
    attachment = result.response.attachments[0]
    data = await attachment.read()
    assert attachment.filename.endswith(".jpg")
    assert len(data) <= 4_000
    assert Image.open(__import__("io").BytesIO(data)).format == "JPEG"
    assert result.response.embeds[0].image.url == f"attachment://{attachment.filename}"


async def test_a_delivered_result_frees_its_bytes_at_once(world, prodia, api, monkeypatch):
    # discord.py leaves a file object it was handed open, tied into a reference cycle: unclosed, every image
    # would wait for a full garbage collection (most of a gigabyte after a burst of 1,000 results).
    files, original = [], discord.File

    def recorded(*args, **kwargs):
        files.append(original(*args, **kwargs))
        return files[-1]

    monkeypatch.setattr(discord, "File", recorded)
    result = await world.alice.slash(world.channel, "imagine", prompt="a fox")
    assert result.response.attachments and [f.fp.closed for f in files] == [True]


async def test_an_unexpected_failure_still_ends_in_a_sentence(world, prodia, api):
    # Discord refusing the bot's read of its own reply: nothing the flow handles on purpose.
    world.env.inject_error("GET", "/webhooks/*/messages/@original", status=403, code=50001, message="Missing Access")
    result = await world.alice.slash(world.channel, "imagine", prompt="a fox")
    assert result.response.content == "Something went wrong on the bot's side. Please try again in a moment."
    assert [type(getattr(e, "original", e)).__name__ for e in world.env.errors] == ["Forbidden"]


# -- "Imagine this" on a message ---------------------------------------------------------------------


async def test_imagine_this_sends_the_messages_text_as_the_prompt(world, prodia, api):
    message = await world.bob.send(world.channel, "  a lighthouse\nat   dusk ")
    result = await world.alice.context_menu(world.channel, "Imagine this", message)
    assert not result.response.ephemeral and result.response.embeds[0].title == "a lighthouse at dusk"
    (submit,) = prodia.image_posts()
    assert (submit.json if api == "v1" else submit.json["config"])["prompt"] == "a lighthouse at dusk"


async def test_imagine_this_on_a_message_without_text_is_refused_privately(world, prodia, api):
    image_only = (await world.alice.slash(world.channel, "imagine", prompt="a fox")).response  # embed, no text
    result = await world.bob.context_menu(world.channel, "Imagine this", image_only)
    assert result.response.ephemeral
    assert result.response.content == "This message has no text to make an image from."
    assert len(prodia.image_posts()) == 1  # the first image only


async def test_imagine_this_obeys_the_prompt_checks(world, prodia, api):
    await world.admin.slash(world.channel, "settings set", blocked_words="castle")
    message = await world.bob.send(world.channel, "a castle")
    result = await world.alice.context_menu(world.channel, "Imagine this", message)
    assert result.response.ephemeral and result.response.content == "This server does not allow “castle” in prompts."
    assert prodia.image_posts() == []


# -- /imagine image: (image-to-image from an upload) -------------------------------------------------


def upload_png(size: tuple[int, int], mode: str = "RGB") -> bytes:
    import io

    from PIL import Image

    out = io.BytesIO()
    Image.new(mode, size, "white" if mode == "1" else (200, 120, 40)).save(out, "PNG")
    return out.getvalue()


def pixels(data: bytes) -> tuple[tuple[int, int], tuple]:
    import io

    from PIL import Image

    image = Image.open(io.BytesIO(data)).convert("RGB")
    return image.size, image.getpixel((0, 0))


@pytest.mark.parametrize("api", ["v1"])
async def test_v1_imagine_from_an_upload_sends_it_to_transform_with_the_strength(world, prodia, api):
    upload = upload_png((640, 480))
    result = await world.alice.slash(
        world.channel, "imagine", prompt="a fox", image=("start.png", upload), strength=0.3
    )
    (post,) = prodia.image_posts()
    assert post.path == "/v1/sd/transform"
    assert (post.json["prompt"], post.json["denoising_strength"]) == ("a fox", 0.3)
    assert pixels(base64.b64decode(post.json["imageData"])) == pixels(upload)  # the same picture, as a PNG
    embed = result.response.embeds[0]
    assert embed.thumbnail.url and embed.thumbnail.url.endswith("/start.png")  # what it started from
    assert embed.description == "Made from the uploaded image (top right), strength 0.3."


@pytest.mark.parametrize("api", ["v1"])
async def test_a_large_upload_is_made_at_most_1024_on_its_longest_side(world, prodia, api):
    await world.alice.slash(world.channel, "imagine", prompt="a fox", image=("big.png", upload_png((2048, 1024))))
    (post,) = prodia.image_posts()
    assert pixels(base64.b64decode(post.json["imageData"]))[0] == (1024, 512)


class TestV2ImageToImage:
    @pytest.fixture
    def bot_env(self) -> dict[str, str]:
        return {"PRODIA_V2_MODELS": "flux-dev,sdxl"}

    @pytest.mark.parametrize("api", ["v2"])
    async def test_an_upload_goes_as_the_input_part_of_the_img2img_job(self, world, prodia, api):
        upload = upload_png((512, 512))
        await world.alice.slash(world.channel, "imagine", prompt="a fox", model="sdxl", image=("start.png", upload))
        (post,) = prodia.image_posts()
        body = post.body
        assert b'"inference.sdxl.img2img.v1"' in body and b'"strength": 0.5' in body and b'"a fox"' in body
        assert b'name="input"' in body

    @pytest.mark.parametrize("api", ["v2"])
    async def test_a_model_without_img2img_refuses_an_upload_privately(self, world, prodia, api):
        result = await world.alice.slash(
            world.channel, "imagine", prompt="a fox", image=("a.png", upload_png((64, 64)))
        )
        assert result.response.ephemeral
        assert result.response.content.startswith("“flux-dev” cannot start from an image")
        assert prodia.image_posts() == []


@pytest.mark.parametrize(
    ("upload", "answer"),
    [
        (("huge.png", b"\x89PNG\r\n\x1a\n" + bytes(30 * 2**20)), "The image is too large: at most 10 MB."),
        (("notes.png", b"just some text, renamed"), "That image can't be used (not a PNG, JPEG or WebP image)."),
        (("notes.txt", b"just some text"), "The image must be a PNG, JPEG or WebP file."),
        (
            ("photo.png", upload_png((10_000, 10_000), "1")),
            "That image can't be used (10000x10000 pixels, over 40 MP).",
        ),
    ],
    ids=["30 MB", "text renamed .png", "text", "100 megapixels"],
)
@pytest.mark.parametrize("api", ["v1"])
async def test_an_upload_that_cannot_be_used_is_refused_privately_before_the_defer(world, prodia, api, upload, answer):
    result = await world.alice.slash(world.channel, "imagine", prompt="a fox", image=upload)
    assert result.response.ephemeral and result.response.content == answer
    assert not result.deferred
    assert prodia.image_posts() == []


# -- style: --------------------------------------------------------------------------------------------


def embed_fields(embed) -> dict[str, str]:
    return {field.name: field.value for field in embed.fields}


async def test_a_style_is_sent_where_the_model_takes_one(world, prodia, api):
    # The default models take one: every v1 model on generate, v2's flux-fast.
    result = await world.alice.slash(world.channel, "imagine", prompt="a fox", style="pixel-art")
    (post,) = prodia.image_posts()
    assert (post.json if api == "v1" else post.json["config"])["style_preset"] == "pixel-art"
    embed = result.response.embeds[0]
    assert embed_fields(embed)["Style"] == "pixel-art" and not embed.description


@pytest.mark.parametrize("api", ["v2"])
async def test_a_style_is_said_not_used_where_the_model_takes_none(world, prodia, api):
    result = await world.alice.slash(world.channel, "imagine", prompt="a fox", model="flux-dev", style="anime")
    (post,) = prodia.image_posts()
    assert post.json["type"] == "inference.flux.dev.txt2img.v1" and "style_preset" not in post.json["config"]
    embed = result.response.embeds[0]
    assert embed.description == "flux-dev does not use: Style." and "Style" not in embed_fields(embed)


@pytest.mark.parametrize("api", ["v1"])
async def test_a_servers_default_style_applies_and_can_be_cleared(world, prodia, api):
    await world.admin.slash(world.channel, "settings set", style="cinematic")
    await world.alice.slash(world.channel, "imagine", prompt="a fox")
    await world.admin.slash(world.channel, "settings set", style="none")
    await world.alice.slash(world.channel, "imagine", prompt="a fox")
    first, second = prodia.image_posts()
    assert first.json["style_preset"] == "cinematic" and "style_preset" not in second.json


@pytest.mark.simcord(settle_timeout=0.5)
class TestUploadResumed:
    @pytest.fixture
    def bot_env(self) -> dict[str, str]:
        return {"PRODIA_POLL_INTERVAL": "2", "PRODIA_TIMEOUT": "3600"}

    @pytest.mark.parametrize("api", ["v1"])
    async def test_an_upload_job_cut_off_by_a_restart_reads_its_upload_again(self, world, prodia, api):
        from tests.plugins.discord_world import results_in

        prodia.job_duration = 3
        upload = upload_png((320, 240))
        try:
            await world.alice.slash(world.channel, "imagine", prompt="a fox", image=("start.png", upload), strength=0.4)
        except TimeoutError:
            pass  # still at Prodia: that is the point
        rows = await world.bot.pipeline.store._query("SELECT input_url FROM jobs")
        assert rows[0]["input_url"].endswith("/start.png")  # kept while the job runs
        await world.restart()
        await world.env.advance_time(10)
        (result,) = results_in(world.channel)
        assert result.embeds[0].description == "Made from the uploaded image (top right), strength 0.4."
        assert len(prodia.image_posts()) == 1  # polled again by its id, not sent again
        rows = await world.bot.pipeline.store._query("SELECT state, input_url FROM jobs")
        assert (rows[0]["state"], rows[0]["input_url"]) == ("delivered", None)  # forgotten once it ended
