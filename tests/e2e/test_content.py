"""NSFW results only where Discord allows them: the server's content policy per kind of channel, the explicit-term
check on prompts, and (v2) Prodia's classifier on every result, through simcord against the local Prodia server.

The local server labels the images of a prompt holding "label-high" (or -medium, -low) so, and every other image
"neutral" (`LocalProdia.labels`)."""

from __future__ import annotations

import json

import pytest
import simcord.backend.serializers as serializers

from bot.render import REROLL_EMOJI
from devtools.local_prodia import Fault
from tests.plugins.discord_world import results_in

pytestmark = pytest.mark.simcord(settle_timeout=10)

CLASSIFIER = "inference.vit.img2label.v1"
WITHHELD = (
    "The image was withheld: the content check rated it possibly sexual, which this server does not show in this "
    "channel."
)


@pytest.fixture
def age_restricted(monkeypatch):
    """Channels whose name starts with "adult" are age-restricted, as Discord reports them (`nsfw: true`)."""
    original = serializers.channel_payload

    def payload(backend, channel):
        data = dict(original(backend, channel))
        if str(data.get("name", "")).startswith("adult"):
            data["nsfw"] = True
        return data

    monkeypatch.setattr(serializers, "channel_payload", payload)


def classifier_posts(prodia) -> list:
    return [r for r in prodia.requests if r.method == "POST" and b'"' + CLASSIFIER.encode() + b'"' in r.body]


def generation_posts(prodia) -> list:
    return [r for r in prodia.requests if r.method == "POST" and r not in classifier_posts(prodia)]


async def test_an_explicit_prompt_is_refused_privately_in_an_ordinary_channel(world, prodia, api):
    result = await world.alice.slash(world.channel, "imagine", prompt="a NUDE portrait")
    assert result.response.ephemeral
    assert result.response.content == (
        "“nude” is not allowed in prompts in this channel: possibly sexual images are kept to age-restricted channels."
    )
    assert [r for r in prodia.requests if r.method == "POST"] == []


async def test_explicit_terms_are_matched_after_unicode_folding_in_russian_too(world, prodia, api):
    result = await world.alice.slash(world.channel, "imagine", prompt="ПОРНО\u200b")
    assert result.response.ephemeral and result.response.content.startswith("“порно” is not allowed in prompts")
    assert [r for r in prodia.requests if r.method == "POST"] == []


async def test_an_explicit_prompt_is_made_in_an_age_restricted_channel(world, prodia, api, age_restricted):
    adult = world.guild.create_text_channel("adult-art")
    result = await world.alice.slash(adult, "imagine", prompt="a nude portrait, label-high")
    assert result.response.attachments and not result.response.ephemeral
    assert classifier_posts(prodia) == []  # "allow": nothing to check


@pytest.mark.parametrize("api", ["v2"])
async def test_a_flagged_result_is_withheld_in_an_ordinary_channel(world, prodia, api):
    result = await world.alice.slash(world.channel, "imagine", prompt="a beach, label-high")
    assert result.response.content == WITHHELD
    assert not result.response.attachments and not result.response.embeds
    (check,) = classifier_posts(prodia)
    generated = next(iter(prodia.jobs.values())).image
    assert generated in check.body  # the result itself went to the classifier, as the `input` part
    assert results_in(world.channel) == []
    rows = await world.bot.pipeline.store._query("SELECT state, error FROM jobs")
    assert [(r["state"], r["error"]) for r in rows] == [("failed", "content.withheld")]


@pytest.mark.parametrize("api", ["v2"])
async def test_a_neutral_result_is_checked_and_posted(world, prodia, api):
    result = await world.alice.slash(world.channel, "imagine", prompt="a beach, label-low")  # below "medium"
    assert result.response.attachments and result.response.embeds[0].image.url.startswith("attachment://imagine-")
    assert len(classifier_posts(prodia)) == 1


@pytest.mark.parametrize("api", ["v2"])
async def test_under_spoiler_a_flagged_result_is_a_spoiler_attachment_outside_the_embed(world, prodia, api):
    await world.admin.slash(world.channel, "settings set", nsfw="spoiler")
    result = await world.alice.slash(world.channel, "imagine", prompt="a beach, label-medium")
    (attachment,) = result.response.attachments
    assert attachment.filename.startswith("SPOILER_imagine-")
    embed = result.response.embeds[0]
    assert not embed.image.url  # an embed's image is never hidden: the spoiler is the attachment alone
    assert embed.description.endswith("Shown as a spoiler: the content check rated it possibly sexual.")


@pytest.mark.parametrize("api", ["v2"])
async def test_a_flagged_result_is_posted_in_an_age_restricted_channel(world, prodia, api, age_restricted):
    adult = world.guild.create_text_channel("adult-art")
    result = await world.alice.slash(adult, "imagine", prompt="a beach, label-high")
    assert result.response.attachments[0].filename.startswith("imagine-")
    await world.admin.slash(world.channel, "settings set", nsfw_age_restricted="block")
    blocked = await world.alice.slash(adult, "imagine", prompt="a beach, label-high")
    assert blocked.response.content == WITHHELD


@pytest.mark.parametrize("api", ["v2"])
@pytest.mark.parametrize(
    "fault",
    [
        Fault("status", status=503, times=None, path="/v2/job"),
        Fault("status", status=429, retry_after=0.01, times=None, path="/v2/job"),
    ],
    ids=["5xx", "429"],
)
async def test_a_failing_classifier_fails_safe(world, prodia, api, fault, monkeypatch):
    first = await world.alice.slash(world.channel, "imagine", prompt="a beach")  # a generation that worked

    # From now on every job POST fails: the classifier's of the next result (its generation runs async).
    monkeypatch.setattr(world.bot.pipeline.prodia, "mode", "async")
    prodia.add_fault(fault)
    result = await world.alice.click(first.response, custom_id="imagine:reroll")
    assert result.acknowledged
    replies = [m for m in world.channel.history() if m.reference and m.reference.message_id == first.response.id]
    assert [m.content for m in replies] == [
        "The image was withheld: the content check could not run, and this channel shows only checked images. "
        "Try again in a minute."
    ]
    assert not replies[0].attachments


@pytest.mark.parametrize("api", ["v2"])
async def test_a_malformed_classifier_answer_fails_safe(world, prodia, api, monkeypatch):
    monkeypatch.setattr(prodia, "label_of", lambda image: {"unexpected": "shape"})
    result = await world.alice.slash(world.channel, "imagine", prompt="a beach")
    assert result.response.content.startswith("The image was withheld: the content check could not run")


@pytest.mark.parametrize("api", ["v2"])
async def test_rerolls_and_upscales_obey_the_same_policy(world, prodia, api):
    await world.admin.slash(world.channel, "settings set", nsfw="spoiler")
    first = await world.alice.slash(world.channel, "imagine", prompt="a beach, label-high")
    for action in ("reroll", "upscale"):
        await world.alice.click(first.response, custom_id=f"imagine:{action}")
    await world.alice.react(first.response, REROLL_EMOJI)
    replies = [m for m in world.channel.history() if m.reference and m.reference.message_id == first.response.id]
    assert len(replies) == 3
    assert all(m.attachments[0].filename.startswith("SPOILER_") for m in replies)
    assert len(classifier_posts(prodia)) == 4


@pytest.mark.parametrize("api", ["v1"])
async def test_v1_has_no_classifier_and_decides_by_the_prompt_alone(world, prodia, api):
    result = await world.alice.slash(world.channel, "imagine", prompt="a beach, label-high")
    assert result.response.attachments  # the README says so: with v1 only the prompt is checked
    assert all("img2label" not in json.dumps(r.json or {}) for r in prodia.requests)


async def test_settings_show_and_change_the_policy(world, api):
    shown = await world.admin.slash(world.channel, "settings show")
    fields = {field.name: field.value for field in shown.response.embeds[0].fields}
    assert fields["Possibly sexual results, ordinary channels"] == "withheld"
    assert fields["Possibly sexual results, age-restricted channels"] == "shown"
    saved = await world.admin.slash(world.channel, "settings set", nsfw="spoiler", nsfw_age_restricted="block")
    fields = {field.name: field.value for field in saved.response.embeds[0].fields}
    assert fields["Possibly sexual results, ordinary channels"] == "shown as spoilers"
    assert fields["Possibly sexual results, age-restricted channels"] == "withheld"


@pytest.mark.simcord(settle_timeout=0.5)
class TestResumed:
    @pytest.fixture
    def bot_env(self) -> dict[str, str]:
        return {"PRODIA_POLL_INTERVAL": "2", "PRODIA_TIMEOUT": "3600", "PRODIA_V2_MODE": "async"}

    @pytest.mark.parametrize("api", ["v2"])
    async def test_a_job_resumed_after_a_restart_is_checked_too(self, world, prodia, api):
        prodia.job_duration = 3  # the image's; the classifier answers at once
        try:
            await world.alice.slash(world.channel, "imagine", prompt="a beach, label-high")
        except TimeoutError:
            pass  # still at Prodia: that is the point
        assert classifier_posts(prodia) == []
        await world.restart()
        await world.env.advance_time(10)
        (message,) = world.channel.history()
        assert message.content == WITHHELD and not message.attachments
        assert len(classifier_posts(prodia)) == 1
