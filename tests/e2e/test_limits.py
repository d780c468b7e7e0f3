"""Limits against abuse and cost, as users meet them: queue, per user, per guild, prompt length."""

from __future__ import annotations

import asyncio
import contextlib
import fnmatch
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from functools import partial

import pytest
import simcord

from bot.core.limits import start_of_day
from bot.core.request import NEGATIVE_PROMPT_MAX
from bot.render import REROLL_EMOJI
from devtools.local_prodia import Fault, LocalProdia
from tests.plugins.discord_world import DISCORD_TOKEN, PRODIA_KEY, arriving_together, results_in

pytestmark = pytest.mark.simcord(settle_timeout=10)


def private_answer(result):
    """A refusal is the interaction's first answer, and only the requester sees it."""
    assert result.response.ephemeral
    assert not result.deferred  # answered at once: no public "thinking" reply ever appeared
    return result.response


def submits(prodia):
    return prodia.image_posts()


class TestPerUser:
    @pytest.fixture
    def bot_env(self) -> dict[str, str]:
        return {"USER_COOLDOWN": "30", "USER_MAX_JOBS": "1"}

    async def test_cooldown_is_answered_privately_with_the_wait(self, world, prodia, api):
        await world.alice.slash(world.channel, "imagine", prompt="first")
        second = await world.alice.slash(world.channel, "imagine", prompt="second")
        assert second.response.ephemeral
        assert second.response.content.startswith("Slow down a little: you can ask again in ")
        assert len(prodia.image_jobs) == 1
        # Another user is not slowed down by alice.
        other = await world.bob.slash(world.channel, "imagine", prompt="bob's")
        assert other.response.embeds[0].title == "bob's"
        await world.env.advance_time(31)
        third = await world.alice.slash(world.channel, "imagine", prompt="third")
        assert third.response.embeds[0].title == "third"

    async def test_rerolls_count_towards_the_cooldown(self, world, prodia, api):
        result = await world.alice.slash(world.channel, "imagine", prompt="first")
        await world.alice.react(result.response, REROLL_EMOJI)
        assert len(prodia.image_jobs) == 1  # refused: alice is cooling down
        await world.env.advance_time(31)
        await world.alice.unreact(result.response, REROLL_EMOJI)
        await world.alice.react(result.response, REROLL_EMOJI)
        assert len(prodia.image_jobs) == 2


@pytest.mark.parametrize("bot_env", [{"USER_MAX_JOBS": "1"}])
async def test_a_user_at_user_max_jobs_is_refused_privately_until_one_ends(world, prodia, api):
    async with arriving_together(world.env):  # alice's second arrives while her first is in flight
        first = await world.alice.slash(world.channel, "imagine", prompt="first")
        second = await world.alice.slash(world.channel, "imagine", prompt="second")
        others = await world.bob.slash(world.channel, "imagine", prompt="bob's")
    assert first.response.embeds[0].title == "first"
    assert private_answer(second).content == (
        "You already have 1 image in progress, the most allowed. Wait for one to finish."
    )
    assert others.response.embeds[0].title == "bob's"  # a limit per user
    assert len(submits(prodia)) == 2
    third = await world.alice.slash(world.channel, "imagine", prompt="third")  # her first has ended
    assert third.response.embeds[0].title == "third"


class TestQueue:
    @pytest.fixture
    def bot_env(self) -> dict[str, str]:
        return {"MAX_CONCURRENT_JOBS": "1", "QUEUE_SIZE": "0"}

    async def test_a_full_queue_says_so_at_once(self, world, prodia, api):
        world.bot.pipeline.queue.running = 1  # a job of someone else holds the only slot
        result = await world.alice.slash(world.channel, "imagine", prompt="a fox")
        assert result.response.ephemeral
        assert "at capacity" in result.response.content
        assert submits(prodia) == []
        world.bot.pipeline.queue.running = 0
        result = await world.alice.slash(world.channel, "imagine", prompt="a fox")
        assert result.response.embeds[0].title == "a fox"


async def test_blocked_words_are_refused_privately(world, prodia, api):
    saved = await world.admin.slash(world.channel, "settings set", blocked_words="Castle, red dragon")
    fields = {f.name: f.value for f in saved.response.embeds[0].fields}
    assert fields["Blocked words"] == "Castle, red dragon"  # as the server wrote them

    refused = await world.alice.slash(world.channel, "imagine", prompt="A CASTLE at night")
    assert private_answer(refused).content == "This server does not allow “Castle” in prompts."
    assert results_in(world.channel) == [] and submits(prodia) == []
    refused = await world.alice.slash(world.channel, "imagine", prompt="a red  dragon")
    assert "“red dragon”" in private_answer(refused).content
    assert submits(prodia) == []

    # Whole words only: "castles" and "redragon" are other words.
    allowed = await world.alice.slash(world.channel, "imagine", prompt="sand castles, a redragon")
    assert allowed.response.embeds[0].title == "sand castles, a redragon"

    await world.admin.slash(world.channel, "settings set", blocked_words="-")
    cleared = await world.alice.slash(world.channel, "imagine", prompt="A castle at night")
    assert cleared.response.embeds


@pytest.mark.parametrize(
    ("prompt", "word"),
    [
        ("a cas\u200btle at night", "Castle"),  # a zero-width space inside
        ("a cas\u00adtle at night", "Castle"),  # a soft hyphen (invisible unless the line breaks there)
        ("a ｃａｓｔｌｅ at night", "Castle"),  # full-width letters
        ("a ca\u0301stle at night", "Castle"),  # a combining accent on a letter
        ("the old STRASSE", "Straße"),  # casefold: ß is ss (ignoring case alone does not match them)
    ],
    ids=["zero-width", "soft-hyphen", "full-width", "accent", "casefold"],
)
async def test_a_blocked_word_in_disguise_is_refused(world, prodia, api, prompt, word):
    await world.admin.slash(world.channel, "settings set", blocked_words="Castle, Straße")
    refused = await world.alice.slash(world.channel, "imagine", prompt=prompt)
    assert private_answer(refused).content == f"This server does not allow “{word}” in prompts."
    assert submits(prodia) == []


async def test_a_blocked_word_in_the_negative_prompt_is_refused(world, prodia, api):
    await world.admin.slash(world.channel, "settings set", blocked_words="Castle")
    refused = await world.alice.slash(
        world.channel, "imagine", prompt="a quiet valley", negative_prompt="no ＣＡＳＴＬＥ"
    )
    assert private_answer(refused).content == "This server does not allow “Castle” in prompts."
    assert submits(prodia) == []


async def test_the_servers_default_negative_prompt_is_checked_when_it_is_sent(world, prodia, api):
    await world.admin.slash(world.channel, "settings set", negative_prompt="castle walls", blocked_words="Castle")
    refused = await world.alice.slash(world.channel, "imagine", prompt="a quiet valley")
    assert private_answer(refused).content == "This server does not allow “Castle” in prompts."
    assert submits(prodia) == []
    made = await world.alice.slash(world.channel, "imagine", prompt="a quiet valley", negative_prompt="fog")
    assert made.response.embeds  # the member's own negative prompt replaces the server's: nothing blocked is sent


async def test_a_reroll_is_checked_against_the_blocked_words_of_now(world, prodia, api):
    original = await world.alice.slash(world.channel, "imagine", prompt="a quiet valley", negative_prompt="fog")
    await world.admin.slash(world.channel, "settings set", blocked_words="ＦＯＧ")  # blocked since
    await world.alice.react(original.response, REROLL_EMOJI)
    assert len(submits(prodia)) == 1  # the reroll's negative prompt holds it: not sent again
    assert [m for m in world.channel.history() if m.reference] == []


# What someone typed, shown back: a masked link would render as a link to the address hidden behind its text, a
# role mention as the role. Escaped, both read as typed (Discord drops each escaping backslash when it renders).
MASKED = "[free nitro](https://evil.example/claim)"
MASKED_SHOWN = r"\[free nitro\](https://evil.example/claim)"


def fields_of(embed) -> dict[str, str]:
    return {field.name: field.value for field in embed.fields}


@pytest.mark.parametrize("api", ["v1"])  # v1 models take a negative prompt (flux-fast has none to show)
async def test_markup_in_the_prompt_and_negative_prompt_shows_as_typed(world, prodia, api):
    role = f"<@&{world.guild.id}>"
    negative = f"{MASKED} {role} @everyone **loud**"
    result = await world.alice.slash(world.channel, "imagine", prompt=f"a fox {MASKED}", negative_prompt=negative)
    embed = result.response.embeds[0]
    assert embed.title == f"a fox {MASKED_SHOWN}"
    shown_role = rf"\<\@&{world.guild.id}\>"
    assert fields_of(embed)["Negative prompt"] == rf"{MASKED_SHOWN} {shown_role} \@everyone \*\*loud\*\*"
    (submit,) = submits(prodia)
    assert (submit.json["prompt"], submit.json["negative_prompt"]) == (f"a fox {MASKED}", negative)  # as typed


async def test_an_unknown_model_is_named_escaped_where_the_default_stands_in(world, prodia, api):
    typed = f"{MASKED} <@&{world.guild.id}>"
    result = await world.alice.slash(world.channel, "imagine", prompt="a fox", model=typed)
    embed = result.response.embeds[0]
    default = world.bot.pipeline.catalog.default
    assert embed.description.splitlines()[0] == (
        rf"There is no model “{MASKED_SHOWN} \<\@&{world.guild.id}\>”, so {default.name} was used (/models lists them)."
    )
    (submit,) = submits(prodia)
    assert (submit.json["model"] if api == "v1" else submit.json["type"]) == (default.job_type or default.name)


async def test_text_typed_into_settings_is_shown_back_escaped(world, prodia, api):
    role, shown_role = f"<@&{world.guild.id}>", rf"\<\@&{world.guild.id}\>"
    refused = await world.admin.slash(world.channel, "settings set", model=f"{MASKED} {role}")
    assert private_answer(refused).content == (
        f"There is no model called “{MASKED_SHOWN} {shown_role}”. Pick one from the list."
    )
    saved = await world.admin.slash(
        world.channel, "settings set", blocked_words=f"{MASKED}, @everyone", negative_prompt=f"__blur__ {role}"
    )
    fields = fields_of(saved.response.embeds[0])
    assert fields["Blocked words"] == rf"{MASKED_SHOWN}, \@everyone"
    assert fields["Negative prompt"] == rf"\_\_blur\_\_ {shown_role}"
    refused = await world.alice.slash(world.channel, "imagine", prompt=f"look: {MASKED}")
    assert private_answer(refused).content == f"This server does not allow “{MASKED_SHOWN}” in prompts."


def skip_discords_length_check(monkeypatch) -> None:
    """From now on options longer than the command declares reach the bot (simcord checks lengths as Discord does):
    what the bot checks itself, should a client or Discord let one through."""
    import simcord.interactions

    original = simcord.interactions.validate_option_value

    def without_max_length(command_name, option, value):
        return original(command_name, {k: v for k, v in option.items() if k != "max_length"}, value)

    monkeypatch.setattr(simcord.interactions, "validate_option_value", without_max_length)


async def test_a_model_name_over_its_cap_is_refused_privately(world, prodia, api, monkeypatch):
    with pytest.raises(simcord.OptionError, match="at most 100 characters"):  # declared: Discord refuses it
        await world.alice.slash(world.channel, "imagine", prompt="a fox", model="m" * 101)
    skip_discords_length_check(monkeypatch)
    refused = await world.alice.slash(world.channel, "imagine", prompt="a fox", model="m" * 101)
    assert private_answer(refused).content == "The model is too long: at most 100 characters."
    assert submits(prodia) == []


@pytest.mark.parametrize("api", ["v1"])
async def test_a_long_negative_prompt_is_cut_for_display_only_and_one_over_its_cap_refused(
    world, prodia, api, monkeypatch
):
    negative = "_" * NEGATIVE_PROMPT_MAX  # each shown as \_: twice a field's room
    result = await world.alice.slash(world.channel, "imagine", prompt="a fox", negative_prompt=negative)
    assert fields_of(result.response.embeds[0])["Negative prompt"] == "\\_" * 511 + "…"  # 1,023 characters
    (submit,) = submits(prodia)
    assert submit.json["negative_prompt"] == negative  # Prodia gets all of it
    with pytest.raises(simcord.OptionError, match="at most 1000 characters"):
        await world.alice.slash(world.channel, "imagine", prompt="a fox", negative_prompt="n" * 1001)
    skip_discords_length_check(monkeypatch)
    refused = await world.alice.slash(world.channel, "imagine", prompt="a fox", negative_prompt="n" * 1001)
    assert private_answer(refused).content == "The negative_prompt is too long: at most 1000 characters."
    assert len(submits(prodia)) == 1


async def test_daily_cap_counts_the_guilds_images(world, prodia, api):
    await world.admin.slash(world.channel, "settings set", daily_cap=2)
    for n in range(2):
        assert (await world.alice.slash(world.channel, "imagine", prompt=f"image {n}")).response.embeds
    refused = await world.bob.slash(world.channel, "imagine", prompt="one too many")
    assert "reached its daily limit of 2 images" in private_answer(refused).content
    assert len(prodia.image_jobs) == 2


@pytest.mark.usefixtures("wall_clock_on_discord_time")  # a day that starts where the test says: no real midnight
async def test_the_daily_cap_counts_from_midnight_utc(world, prodia, api):
    await world.admin.slash(world.channel, "settings set", daily_cap=1)
    store = world.bot.pipeline.store
    midnight = start_of_day(time.time())
    await world.alice.slash(world.channel, "imagine", prompt="late last night")
    await store._query("UPDATE jobs SET created_at = ?", (midnight - 1,))  # made a second before midnight

    made = await world.alice.slash(world.channel, "imagine", prompt="just after midnight")
    assert made.response.embeds  # yesterday's image counted for yesterday only
    await store._query("UPDATE jobs SET created_at = ? WHERE created_at >= ?", (midnight, midnight))  # at 00:00:00

    refused = await world.bob.slash(world.channel, "imagine", prompt="one too many")
    assert private_answer(refused).content == (
        "This server has reached its daily limit of 1 image. The count starts again at midnight UTC."
    )


CAPPED_AT_TWO = "This server has reached its daily limit of 2 images. The count starts again at midnight UTC."


async def test_rerolls_count_towards_the_daily_cap_and_are_refused_by_it(world, prodia, api):
    await world.admin.slash(world.channel, "settings set", daily_cap=2)
    original = (await world.alice.slash(world.channel, "imagine", prompt="a fox")).response
    await world.alice.react(original, REROLL_EMOJI)  # today's second image
    assert len(results_in(world.channel)) == 2

    click = await world.alice.click(original, custom_id="imagine:reroll")
    assert click.response.ephemeral and click.response.content == CAPPED_AT_TWO
    await world.alice.unreact(original, REROLL_EMOJI)
    await world.alice.react(original, REROLL_EMOJI)
    assert world.channel.last_message.content == f"<@{world.alice.id}>, your 🔄 was not started: {CAPPED_AT_TWO}"
    assert len(submits(prodia)) == 2


def public_defers(env) -> int:
    """How many interactions got a public "thinking" reply."""
    return sum(1 for r in env.http_requests if r.path.endswith("/callback") and r.json == {"type": 5})


class TestRequestsArrivingTogether:
    """Each place is taken when a request is admitted, before its public reply, so requests arriving together never
    share one: those left without are refused privately."""

    @pytest.fixture
    def bot_env(self) -> dict[str, str]:
        return {"USER_MAX_JOBS": "10", "MAX_CONCURRENT_JOBS": "10"}

    async def test_they_never_pass_the_daily_cap(self, world, prodia, api):
        await world.admin.slash(world.channel, "settings set", daily_cap=3)
        members = [world.alice, world.bob, world.mod, world.alice, world.bob]
        async with arriving_together(world.env):
            results = [await m.slash(world.channel, "imagine", prompt=f"burst {n}") for n, m in enumerate(members)]
        made = [r for r in results if r.response.embeds]
        refused = [r for r in results if not r.response.embeds]
        assert (len(made), len(refused), len(prodia.image_jobs)) == (3, 2, 3)
        for result in refused:
            assert "reached its daily limit of 3 images" in private_answer(result).content
        assert public_defers(world.env) == 3

    # v2 sync: a job waits for its place on an asyncio.Event, which simcord does not count as parked, so no job
    # may sleep meanwhile (polls would) or its clock cannot move.
    @pytest.mark.parametrize("api", ["v2"])
    @pytest.mark.parametrize("bot_env", [{"MAX_CONCURRENT_JOBS": "1", "QUEUE_SIZE": "1", "PRODIA_V2_MODE": "sync"}])
    async def test_two_for_the_last_place_in_the_queue(self, world, prodia, api):
        await world.admin.slash(world.channel, "settings show")  # the server's settings are cached, as usual
        async with arriving_together(world.env):
            results = [
                await m.slash(world.channel, "imagine", prompt=m.name) for m in (world.alice, world.bob, world.mod)
            ]
        running, queued, refused = results
        assert running.response.embeds[0].title == "alice"
        assert queued.response.embeds[0].title == "bob"  # it waited for alice's, then ran
        assert "at capacity (1 image waiting)" in private_answer(refused).content
        assert public_defers(world.env) == 2 and len(prodia.image_jobs) == 2


def midnight_utc() -> int:
    """When today's caps start again, as the refusals show it."""
    return int(start_of_day(time.time()) + 86400)


@pytest.mark.parametrize("bot_env", [{"DM_DAILY_CAP": "2"}])
async def test_direct_messages_have_their_own_daily_cap(world, prodia, api):
    olga = world.env.create_user("olga")
    for n in range(2):
        assert (await olga.slash("imagine", prompt=f"dm {n}")).response.embeds
    refused = await olga.slash("imagine", prompt="one too many")
    assert private_answer(refused).content == (
        "You have reached today's limit of 2 images in direct messages. "
        f"The count starts again at midnight UTC (<t:{midnight_utc()}:R>)."
    )
    assert len(prodia.image_jobs) == 2
    # A server's images are the server's to cap.
    in_server = await world.guild.add_member(olga).slash(world.channel, "imagine", prompt="in a server")
    assert in_server.response.embeds


@pytest.mark.parametrize("bot_env", [{"USER_DAILY_CAP": "2"}])
async def test_a_users_daily_cap_counts_servers_and_dms_together(world, prodia, api):
    assert (await world.alice.slash(world.channel, "imagine", prompt="in the server")).response.embeds
    assert (await world.alice.user.slash("imagine", prompt="in a DM")).response.embeds
    refused = await world.alice.slash(world.channel, "imagine", prompt="one too many")
    assert private_answer(refused).content == (
        "You have reached your daily limit of 2 images. "
        f"The count starts again at midnight UTC (<t:{midnight_utc()}:R>)."
    )
    assert (await world.bob.slash(world.channel, "imagine", prompt="bob's first")).response.embeds


async def test_empty_prompt_is_refused_privately(world, prodia, api):
    result = await world.alice.slash(world.channel, "imagine", prompt="   ")
    assert result.response.ephemeral
    assert result.response.content == "The prompt is empty. Describe the image you want."
    assert submits(prodia) == []


async def test_long_prompts_are_truncated_to_discords_limits(world, prodia, api):
    prompt = "a very long prompt " * 52  # 988 characters: within our limit, over an embed title's 256
    result = await world.alice.slash(world.channel, "imagine", prompt=prompt.strip(), negative_prompt="n" * 1000)
    embed = result.response.embeds[0]
    assert len(embed.title) == 256 and embed.title.endswith("…")
    assert all(len(field.value) <= 1024 for field in embed.fields)
    assert len(embed) <= 6000


@pytest.mark.parametrize(
    ("fault", "expected"),
    [
        (Fault("status", status=429, retry_after=0, times=None), "busy"),
        (Fault("malformed_json", times=None), "not a usable image"),
        (Fault("status", status=403, times=None), "refused the bot's access key"),
    ],
)
async def test_more_prodia_failures_end_in_a_clear_message(world, prodia, api, fault, expected):
    prodia.add_fault(fault)
    result = await world.alice.slash(world.channel, "imagine", prompt="a fox")
    assert expected in result.response.content
    assert not result.response.embeds


BUSY = (
    "The image service is busy, or this model is not available to the bot's account. "
    "Please try again in a minute, or pick another model."
)
ASKED = {  # what each step of a job asks Prodia, by API
    ("v1", "submit"): "/v1/sd/generate",
    ("v1", "poll"): "/v1/job/*",
    ("v2", "submit"): "/v2/job/async",
    ("v2", "poll"): "/v2/job/async/*/job.state.current",
}


@pytest.mark.parametrize("step", ["submit", "poll"])
async def test_a_retry_after_over_a_minute_is_said_busy_at_once(world, prodia, api, step):
    # Waiting out an hour would hold the reply (and the user's place) that long: past 60 s it is not waited for.
    path = ASKED[api, step]
    prodia.add_fault(Fault("status", status=429, retry_after=3600, times=None, path=path))
    result = await world.alice.slash(world.channel, "imagine", prompt="a fox")
    assert result.response.content == BUSY
    assert sum(fnmatch.fnmatchcase(r.path, path) for r in prodia.requests) == 1  # not asked again


async def test_a_retry_after_of_a_minute_is_waited_out(world, prodia, api):
    path = ASKED[api, "submit"]
    prodia.add_fault(Fault("status", status=429, retry_after=60, path=path))
    result = await world.alice.slash(world.channel, "imagine", prompt="a fox")
    assert sum(r.path == path for r in prodia.requests) == 1
    await world.env.advance_time(65)  # the minute, then the job
    (made,) = results_in(world.channel)
    assert made.id == result.response.id and made.embeds[0].title == "a fox"
    assert sum(r.path == path for r in prodia.requests) == 2


NOT_USABLE = "The image service sent back something that is not a usable image. Please try again."


@pytest.mark.parametrize("api", ["v1"])
@pytest.mark.parametrize("fault", [Fault("image_404", path="/images/*"), Fault("not_image", path="/images/*")])
async def test_unusable_images_end_in_a_clear_message(world, prodia, api, fault):
    prodia.add_fault(fault)
    result = await world.alice.slash(world.channel, "imagine", prompt="a fox")
    assert result.response.content == NOT_USABLE
    assert not result.response.attachments


@pytest.mark.parametrize("api", ["v1"])
@pytest.mark.parametrize("bot_env", [{"MAX_IMAGE_BYTES": "100000"}])
async def test_an_image_over_max_image_bytes_is_not_read_past_the_cap(world, prodia, api):
    # A whole PNG, streamed without a Content-Length: nothing is wrong with it but its size, so only the cap on
    # the bytes read can stop it. Far larger than the socket buffers between the two ends, so a client that stops
    # at the cap leaves most of it unsent.
    size = 64 * 1024 * 1024
    prodia.add_fault(Fault("image_huge", size=size, path="/images/*"))
    result = await world.alice.slash(world.channel, "imagine", prompt="a fox")
    assert result.response.content == NOT_USABLE
    assert not result.response.attachments
    (streamed,) = prodia.streamed
    assert streamed < size  # the bot hung up at the cap


@pytest.fixture
async def foreign_host() -> AsyncIterator[LocalProdia]:
    """A server on another loopback address, standing for any host the bot must never reach; it records all."""
    async with LocalProdia(host="127.0.0.2") as server:
        yield server


@pytest.fixture
async def hop_host() -> AsyncIterator[LocalProdia]:
    """A server on 127.0.0.1, reached by the name `localhost`: an image host the bot allows (PRODIA_IMAGE_HOSTS)."""
    async with LocalProdia() as server:
        yield server


@pytest.mark.parametrize("api", ["v1"])
@pytest.mark.parametrize("bot_env", [{"PRODIA_IMAGE_HOSTS": "localhost"}])
async def test_an_image_redirected_to_a_foreign_host_on_its_second_hop_is_never_fetched(
    world, prodia, api, hop_host, foreign_host
):
    # Prodia's image URL -> localhost (allowed) -> 127.0.0.2 (not allowed): each hop is checked, not the first only.
    hop = hop_host.url.replace("127.0.0.1", "localhost") + "/images/hop.png"
    prodia.add_fault(Fault("redirect", location=hop, path="/images/*"))
    hop_host.add_fault(Fault("status", status=302, location=f"{foreign_host.url}/images/stolen.png", times=None))
    result = await world.alice.slash(world.channel, "imagine", prompt="a fox")
    assert result.response.content == NOT_USABLE
    assert [r.path for r in hop_host.requests] == ["/images/hop.png"]  # the first redirect was followed
    assert foreign_host.requests == []  # the second was not: no request, so no key and no prompt either


@pytest.mark.parametrize(("api", "path"), [("v1", "/v1/sd/generate"), ("v2", "/v2/job/async")])
async def test_an_api_redirect_takes_neither_the_key_nor_the_prompt_to_another_host(
    world, prodia, api, path, foreign_host
):
    prodia.add_fault(Fault("status", status=307, location=foreign_host.url + path, times=None, path=path))
    result = await world.alice.slash(world.channel, "imagine", prompt="a fox")
    assert result.response.content == NOT_USABLE
    assert foreign_host.requests == []


async def test_no_secret_in_any_log_line(world, prodia, api, caplog):
    caplog.set_level(logging.DEBUG)
    prodia.add_fault(Fault("status", status=401, message=f"bad key {PRODIA_KEY}", times=None))
    await world.alice.slash(world.channel, "imagine", prompt="a fox")
    prodia.clear_faults()
    await world.alice.slash(world.channel, "imagine", prompt="a fox")
    assert caplog.records
    assert PRODIA_KEY not in caplog.text
    assert DISCORD_TOKEN not in caplog.text
    assert PRODIA_KEY not in world.env.transcript()


async def test_a_bad_key_is_logged_for_the_owner(world, prodia, api, caplog):
    prodia.add_fault(Fault("status", status=401, times=None))
    result = await world.alice.slash(world.channel, "imagine", prompt="a fox")
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert any("check PRODIA_API_KEY" in message for message in errors)
    # A log line is all the owner gets, so the user is asked to pass it on rather than told the owner knows.
    assert result.response.content == (
        "The image service refused the bot's access key, so no images can be made for now. Please tell the bot's owner."
    )


@contextlib.asynccontextmanager
async def table_locked(database_url: str, table: str) -> AsyncIterator[Callable[[], Awaitable[None]]]:
    """Another client holding `table` (no one else may even read it) until the block ends, or until it calls the
    function it yields."""
    import asyncpg

    locker = await asyncpg.connect(database_url)
    lock = locker.transaction()
    await lock.start()
    await locker.execute(f"LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE")
    held = [True]

    async def release() -> None:
        if held.pop():
            await lock.rollback()
        held.append(False)

    try:
        yield release
    finally:
        await release()
        await locker.close()


@pytest.fixture
async def postgres_url() -> AsyncIterator[str]:
    from tests.plugins.databases import postgres_schema

    async with postgres_schema() as url:
        yield url


class TestFailingDatabase:
    """Limits the database cannot check are not skipped: the request is refused privately and nothing starts.
    The bot is on PostgreSQL, where a query waiting 0.3 s on another client's lock fails (`lock_timeout`)."""

    @pytest.fixture
    def database_url(self, postgres_url: str) -> str:
        return f"{postgres_url}&lock_timeout=300"

    async def test_a_server_whose_settings_cannot_be_read_is_refused_privately(self, world, prodia, api):
        async with table_locked(world.bot.settings.database_url, "guild_settings"):
            refused = await world.alice.slash(world.channel, "imagine", prompt="a fox")
        assert private_answer(refused).content == (
            "Limits can't be checked right now, so nothing was started; try again in a minute."
        )
        assert submits(prodia) == []

    @pytest.mark.parametrize("where", ["dm", "capped server"])
    async def test_a_daily_cap_that_cannot_be_counted_refuses_privately(self, world, prodia, api, where):
        if where == "dm":  # DM_DAILY_CAP applies
            ask = partial(world.env.create_user("olga").slash, "imagine")
        else:
            await world.admin.slash(world.channel, "settings set", daily_cap=5)
            ask = partial(world.alice.slash, world.channel, "imagine")
        async with table_locked(world.bot.settings.database_url, "jobs"):
            refused = await ask(prompt="a fox")
        assert "Limits can't be checked right now" in private_answer(refused).content
        assert submits(prodia) == []

    async def test_a_cached_copy_of_the_settings_stands_in_and_the_log_says_so(self, world, prodia, api, caplog):
        await world.admin.slash(world.channel, "settings set", blocked_words="castle")
        await world.env.advance_time(61)  # the cached copy has expired
        async with table_locked(world.bot.settings.database_url, "guild_settings"):
            refused = await world.alice.slash(world.channel, "imagine", prompt="a castle")
            made = await world.alice.slash(world.channel, "imagine", prompt="a fox")
        assert "does not allow “castle”" in private_answer(refused).content  # the copy's blocked words hold
        assert made.response.embeds[0].title == "a fox"
        warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
        assert any("using the cached copy" in message for message in warnings)


class TestHangingDatabase:
    """A database that hangs must not cost the interaction (Discord drops it after 3 s): the check gives up after
    the pre-defer budget and the job is refused. On the real clock: under simcord the budget is a virtual timer
    that does not fire while the bot waits on the database."""

    async def test_unreadable_settings_are_given_up_on_within_the_budget(self, postgres_url, caplog):
        from bot.core.jobs import LimitsUnavailable
        from bot.core.store import open_store
        from bot.pipeline import PRE_DEFER_BUDGET, bounded

        store = await open_store(postgres_url)
        try:
            async with table_locked(postgres_url, "guild_settings"), asyncio.timeout(PRE_DEFER_BUDGET + 5):
                with pytest.raises(LimitsUnavailable):
                    await bounded(store.guild_settings(42, allow_stale=True))
            assert any("pre-defer check took over" in r.getMessage() for r in caplog.records)
            assert (await store.guild_settings(42)).daily_cap is None  # the abandoned query left nothing behind
        finally:
            await store.close()

    async def test_a_reservation_cut_off_by_the_budget_holds_no_place(self, postgres_url):
        from bot.core.jobs import LimitsUnavailable
        from bot.core.limits import SharedLimits
        from bot.core.store import Claim, open_store
        from bot.pipeline import PRE_DEFER_BUDGET, bounded

        store = await open_store(postgres_url)
        limits = SharedLimits(store, max_jobs=1, cooldown=0, owner="here", lease=120)
        try:
            async with table_locked(postgres_url, "jobs"), asyncio.timeout(PRE_DEFER_BUDGET + 5):
                with pytest.raises(LimitsUnavailable):
                    await bounded(limits.reserve(Claim("first", 7, None, ()), ()))
            second = await limits.reserve(Claim("second", 7, None, ()), ())  # user 7 holds nothing
            await second.release()
        finally:
            await store.close()
