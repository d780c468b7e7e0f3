"""Russian: the message catalogues, localized slash commands, and which locale each reply follows."""

from __future__ import annotations

import string
from functools import partial

import discord
import pytest
import simcord.interactions as sci
from discord import app_commands

from bot.core.messages import CATALOGUES, EN, RU, error_text, fill, text
from bot.core.request import STYLES
from bot.i18n import COMMAND_KEY_PREFIXES, DISCORD_TEXT_MAX, CatalogueTranslator, cmd, command_key, command_text
from bot.render import REROLL_EMOJI
from devtools.local_prodia import Fault
from tests.plugins.discord_world import results_in

pytestmark = pytest.mark.simcord(settle_timeout=10)


@pytest.fixture
def api() -> str:
    """One API is enough here (v2 also exercises the "does not use" note)."""
    return "v2"


def placeholders(template: str) -> set[str]:
    return {field for _, field, _, _ in string.Formatter().parse(template) if field is not None}


# --- The catalogues ---


def test_russian_is_registered():
    assert CATALOGUES["ru"] is RU
    assert text("progress.generating", "ru") == RU["progress.generating"]
    assert text("progress.generating", "en-US") == EN["progress.generating"]
    assert text("progress.generating", "de") == EN["progress.generating"]  # no German: English


@pytest.mark.parametrize("language", sorted(set(CATALOGUES) - {"en"}))
def test_every_key_exists_in_every_language_with_the_same_placeholders(language):
    catalogue = CATALOGUES[language]
    assert set(catalogue) == set(EN), (
        f"missing: {sorted(set(EN) - set(catalogue))}; extra: {sorted(set(catalogue) - set(EN))}"
    )
    for key, english in EN.items():
        assert placeholders(catalogue[key]) == placeholders(english), key


@pytest.mark.parametrize("language", sorted(CATALOGUES))
@pytest.mark.parametrize("value", ["x", 2])
def test_no_sentence_is_empty_and_every_one_formats(language, value):
    params = {name: value for template in EN.values() for name in placeholders(template)}
    for key, template in CATALOGUES[language].items():
        assert template.strip(), key
        assert fill(template, language, **params)


def test_russian_is_actually_russian():
    # Same as English only where the word is a term or a proper name.
    same = {key for key in EN if RU[key] == EN[key]}
    assert same <= {"field.cfg", "field.seed"}
    cyrillic = {key for key, value in RU.items() if any("а" <= ch.lower() <= "я" for ch in value)}
    assert set(RU) - cyrillic <= {"field.cfg", "field.seed"}


def test_errors_speak_russian():
    from bot.core.errors import InvalidInput, JobTimeout

    assert (
        error_text(JobTimeout("slow", seconds=300), "ru")
        == "Изображение не было готово за 300 с, и бот перестал ждать. Попробуйте ещё раз."
    )
    assert error_text(InvalidInput(problem="range", name="steps", low="1", high="25"), "ru") == (
        "Параметр steps должен быть от 1 до 25."
    )
    assert error_text(RuntimeError("secret detail"), "ru") == RU["error.unexpected"]


def test_command_strings_fit_discord_limits():
    for language, catalogue in CATALOGUES.items():
        for key in catalogue:
            if key.startswith(COMMAND_KEY_PREFIXES):
                value = command_text(key, language)
                assert value and len(value) <= DISCORD_TEXT_MAX, (language, key, value)


# --- The translator ---


async def translate(value: str | app_commands.locale_str, locale: discord.Locale, location) -> str | None:
    string_ = value if isinstance(value, app_commands.locale_str) else app_commands.locale_str(value)
    context = app_commands.TranslationContext(location=location, data=None)
    return await CatalogueTranslator().translate(string_, locale, context)


async def test_translator_answers_by_the_strings_key_only():
    loc = app_commands.TranslationContextLocation
    assert await translate(cmd("cmd.imagine"), discord.Locale.russian, loc.command_description) == RU["cmd.imagine"]
    assert await translate(cmd("cmd.imagine.steps"), discord.Locale.russian, loc.parameter_description) == (
        "Шаги шумоподавления, 1–25: чем больше, тем медленнее и детальнее"
    )
    # English text without a key is not guessed at: every command string comes from the catalogue.
    assert await translate("Turn a prompt into an image", discord.Locale.russian, loc.command_description) is None


def test_cmd_takes_its_english_from_the_catalogue_and_refuses_unknown_keys():
    assert cmd("cmd.imagine.steps").message == "Denoising steps, 1-25: more is slower and finer"
    with pytest.raises(KeyError):
        cmd("cmd.imagine.no_such_option")


async def test_translator_by_key():
    loc = app_commands.TranslationContextLocation
    keyed = app_commands.locale_str("whatever the English says", key="cmd.settings.show")
    assert await translate(keyed, discord.Locale.russian, loc.command_description) == RU["cmd.settings.show"]
    assert await translate(cmd("aspect.square"), discord.Locale.russian, loc.choice_name) == RU["aspect.square"]


async def test_translator_leaves_names_other_languages_and_unknown_strings_alone():
    loc = app_commands.TranslationContextLocation
    assert (
        await translate("Turn a prompt into an image", discord.Locale.american_english, loc.command_description) is None
    )
    assert await translate("Turn a prompt into an image", discord.Locale.german, loc.command_description) is None
    assert await translate("Turn a prompt into an image", discord.Locale.russian, loc.command_name) is None
    assert await translate("imagine", discord.Locale.russian, loc.command_name) is None
    assert await translate("Square", discord.Locale.russian, loc.parameter_name) is None
    assert await translate("Euler a", discord.Locale.russian, loc.choice_name) is None  # a proper name
    assert await translate("Something new", discord.Locale.russian, loc.parameter_description) is None


# --- Under simcord ---


def synced_commands(env) -> dict[str, dict]:
    puts = [r for r in env.http_requests if r.method == "PUT" and r.path.endswith("/commands")]
    assert puts, "the commands were never synced"
    return {command["name"]: command for command in puts[-1].json}


def test_the_synced_commands_carry_russian_descriptions_and_choice_names(world):
    commands = synced_commands(world.env)
    imagine = commands["imagine"]
    assert imagine["description"] == "Turn a prompt into an image"
    assert imagine["description_localizations"] == {"ru": RU["cmd.imagine"]}
    assert imagine.get("name_localizations") in (None, {})  # names stay as typed
    options = {option["name"]: option for option in imagine["options"]}
    assert set(options) == {
        "prompt", "negative_prompt", "model", "steps", "cfg", "seed", "sampler", "aspect_ratio", "style", "count",
        "image", "strength",
    }  # fmt: skip
    for name, option in options.items():
        assert option["description_localizations"] == {"ru": command_text(f"cmd.imagine.{name}", "ru")}, name
        assert option.get("name_localizations") in (None, {}), name
    assert "1–25" in options["steps"]["description_localizations"]["ru"]
    aspect = {choice["value"]: choice for choice in options["aspect_ratio"]["choices"]}
    assert {value: choice["name_localizations"] for value, choice in aspect.items()} == {
        "square": {"ru": "Квадратное"},
        "portrait": {"ru": "Вертикальное"},
        "landscape": {"ru": "Горизонтальное"},
    }
    assert all("name_localizations" not in choice for choice in options["sampler"]["choices"])  # proper names

    settings = commands["settings"]
    assert settings["description_localizations"] == {"ru": RU["cmd.settings"]}
    subcommands = {sub["name"]: sub for sub in settings["options"]}
    assert set(subcommands) == {"set", "show", "reset"}
    for name, sub in subcommands.items():
        assert sub["description_localizations"] == {"ru": RU[f"cmd.settings.{name}"]}, name
    for option in subcommands["set"]["options"]:
        assert option["description_localizations"] == {"ru": command_text(f"cmd.settings.set.{option['name']}", "ru")}
    set_options = {option["name"]: option for option in subcommands["set"]["options"]}
    reroll = {c["value"]: c["name_localizations"] for c in set_options["reroll"]["choices"]}
    assert reroll == {"requester": {"ru": "Только автор запроса"}, "anyone": {"ru": "Любой участник"}}
    languages = {c["value"]: (c["name"], c.get("name_localizations")) for c in set_options["language"]["choices"]}
    assert languages == {
        "auto": ("Automatic: the server's Discord language, else English", {"ru": RU["choice.language.auto"]}),
        "en": ("English", None),  # each language under its own name in every client
        "ru": ("Русский", None),
    }


async def test_every_command_string_in_the_tree_has_a_catalogue_entry(world):
    """An English description edited in a cog without its catalogue entry would silently lose its Russian."""
    tree = world.bot.tree
    strings = []
    for command in tree.walk_commands():
        strings.append(command._locale_description)
        for parameter in getattr(command, "parameters", []):
            strings.append(parameter.locale_description)
            strings.extend(c._locale_name for c in parameter.choices if c.value not in PROPER_NAMES)
    assert strings
    for string_ in strings:
        key = command_key(string_)
        assert key is not None, f"no catalogue entry for {string_.message!r}"
        assert command_text(key, "en") == string_.message
        assert command_text(key, "ru")


def _sampler_values() -> set[str]:
    from bot.core.model_lists import SAMPLERS

    return set(SAMPLERS)


SAMPLER_VALUES = _sampler_values()
PROPER_NAMES = SAMPLER_VALUES | set(CATALOGUES) | set(STYLES)  # samplers, languages, Prodia's style preset ids


@pytest.fixture
def locales(monkeypatch):
    """simcord hard-codes locale and guild_locale to en-US: let the user's locale be set and guild_locale
    follow the guild's preferred locale (simcord notes, section 8)."""
    state = {"user": "en-US"}
    original = sci.base_payload

    def patched(backend, **kw):
        record, payload = original(backend, **kw)
        payload["locale"] = state["user"]
        if "guild_id" in payload:
            payload["guild_locale"] = backend.get_guild(int(payload["guild_id"])).preferred_locale
        return record, payload

    monkeypatch.setattr(sci, "base_payload", patched)
    return state


@pytest.fixture
def russian_server(world):
    guild = world.env.create_guild("Галерея", preferred_locale="ru")
    channel = guild.create_text_channel("картинки")
    managers = guild.create_role("Managers", permissions=discord.Permissions(manage_guild=True))
    admin = guild.add_member(world.env.create_user("ivan"), roles=[managers])
    olga = guild.add_member(world.env.create_user("olga"))
    return guild, channel, admin, olga


def original_edits(env):
    return [r for r in env.http_requests if r.method == "PATCH" and r.path.endswith("/messages/@original")]


def fields_of(embed) -> dict[str, str]:
    return {field.name: field.value for field in embed.fields}


async def test_a_russian_server_gets_russian_progress_and_result(world, prodia, locales, russian_server):
    _, channel, _, olga = russian_server
    result = await olga.slash(
        channel, "imagine", prompt="маяк на закате", seed=42, aspect_ratio="portrait", sampler="DDIM"
    )

    progress = [edit.json["content"] for edit in original_edits(world.env) if edit.json.get("content")]
    assert progress and all("▰" in p or "▱" in p for p in progress)
    assert all("Начато <t:" in p for p in progress)
    assert any(
        RU[key] in p for p in progress for key in ("progress.submitted", "progress.generating", "progress.downloading")
    )

    embed = result.response.embeds[0]
    assert embed.title == "маяк на закате"
    fields = fields_of(embed)
    assert fields["Seed"] == "42"
    assert fields["Соотношение сторон"] == "Вертикальное"
    assert fields["Модель"] == world.bot.pipeline.catalog.default.name
    assert "Шаги" in fields
    assert "не использует: Сэмплер." in embed.description
    assert embed.footer.text.startswith("Запрос: olga · ")
    assert [(str(r.emoji), r.count) for r in result.response.message.reactions] == [(REROLL_EMOJI, 1)]


async def test_an_english_server_stays_english_for_a_russian_user(world, prodia, locales):
    locales["user"] = "ru"
    result = await world.alice.slash(world.channel, "imagine", prompt="a fox")
    embed = result.response.embeds[0]
    assert "Aspect ratio" in fields_of(embed)
    assert embed.footer.text.startswith("Requested by alice")


async def test_a_russian_servers_failure_is_explained_in_russian(world, prodia, locales, russian_server):
    _, channel, _, olga = russian_server
    prodia.add_fault(Fault("status", status=402, times=None))
    result = await olga.slash(channel, "imagine", prompt="лиса")
    assert result.response.content == RU["error.prodia_quota"]


async def test_ephemeral_settings_follow_the_user_and_public_results_the_server(world, prodia, locales):
    """An English server, a Russian-speaking admin: /settings answers in Russian, /imagine the channel in English."""
    locales["user"] = "ru"
    shown = await world.admin.slash(world.channel, "settings show")
    assert shown.response.ephemeral
    assert shown.response.content == RU["settings.show"]
    assert "Кто может генерировать заново" in fields_of(shown.response.embeds[0])

    saved = await world.admin.slash(world.channel, "settings set", aspect_ratio="landscape")
    assert saved.response.ephemeral
    assert saved.response.content == RU["settings.saved"]
    assert "Соотношение сторон" in fields_of(saved.response.embeds[0])

    result = await world.admin.slash(world.channel, "imagine", prompt="a fox")
    assert not result.response.ephemeral
    fields = fields_of(result.response.embeds[0])
    assert fields["Aspect ratio"] == "Landscape"  # the server's new default, in the server's language
    assert result.response.embeds[0].footer.text.startswith("Requested by admin")

    locales["user"] = "en-US"
    english = await world.admin.slash(world.channel, "settings reset")
    assert english.response.content == EN["settings.reset"]


async def test_ephemeral_refusal_follows_the_user_in_a_russian_server(world, prodia, locales, russian_server):
    _, channel, _, olga = russian_server
    locales["user"] = "en-US"
    refused = await olga.slash(channel, "imagine", prompt="   ")
    assert refused.response.ephemeral
    assert refused.response.content == EN["input.prompt_empty"]
    locales["user"] = "ru"
    refused = await olga.slash(channel, "imagine", prompt="   ")
    assert refused.response.content == RU["input.prompt_empty"]


async def test_changed_translations_sync_again(world, monkeypatch):
    syncs = lambda: [r for r in world.env.http_requests if r.method == "PUT" and r.path.endswith("/commands")]  # noqa: E731
    assert len(syncs()) == 1
    await world.restart()
    assert len(syncs()) == 1  # nothing changed
    monkeypatch.setitem(RU, "cmd.imagine", "Нарисовать изображение по описанию")
    await world.restart()
    assert len(syncs()) == 2
    assert synced_commands(world.env)["imagine"]["description_localizations"] == {
        "ru": "Нарисовать изображение по описанию"
    }


# --- The server language of /settings, kept with each job ---


async def set_server_language(world, language: str):
    return await world.admin.slash(world.channel, "settings set", language=language)


def reroll_of(channel, original) -> discord.Message:
    (reroll,) = [m for m in channel.history() if m.reference and m.reference.message_id == original.id]
    return reroll


async def test_a_server_language_makes_public_messages_russian_where_discord_reports_en_us(world, prodia):
    """simcord, like Discord for every server that is not a Community server, reports en-US as the server's locale."""
    saved = await set_server_language(world, "ru")
    assert saved.response.content == EN["settings.saved"]  # private: the admin's own language
    assert fields_of(saved.response.embeds[0])["Language of public messages"] == "Русский"

    result = await world.alice.slash(world.channel, "imagine", prompt="a fox", seed=7, aspect_ratio="portrait")
    progress = [edit.json["content"] for edit in original_edits(world.env) if edit.json.get("content")]
    assert progress and all("Начато <t:" in p for p in progress)
    fields = fields_of(result.response.embeds[0])
    assert fields["Соотношение сторон"] == "Вертикальное"
    assert result.response.embeds[0].footer.text.startswith("Запрос: alice · ")

    await set_server_language(world, "auto")  # back to the server's locale: en-US, so English
    result = await world.alice.slash(world.channel, "imagine", prompt="a fox")
    assert fields_of(result.response.embeds[0])["Aspect ratio"] == "Square"


async def test_a_public_error_follows_the_server_language(world, prodia):
    await set_server_language(world, "ru")
    prodia.add_fault(Fault("status", status=402, times=None))
    result = await world.alice.slash(world.channel, "imagine", prompt="a fox")
    assert result.response.content == RU["error.prodia_quota"]


async def test_settings_show_says_which_language_applies(world, locales, russian_server):
    shown = await world.admin.slash(world.channel, "settings show")
    assert fields_of(shown.response.embeds[0])["Language of public messages"] == (
        "automatic: English (the server's language in Discord's Community settings, else English)"
    )
    _, channel, ivan, _ = russian_server  # a Community server whose language is Russian
    shown = await ivan.slash(channel, "settings show")
    assert fields_of(shown.response.embeds[0])["Language of public messages"].startswith("automatic: Русский (")


async def test_the_server_language_beats_the_servers_locale(world, prodia, locales, russian_server):
    _, channel, ivan, olga = russian_server
    await ivan.slash(channel, "settings set", language="en")
    result = await olga.slash(channel, "imagine", prompt="a fox")
    assert "Aspect ratio" in fields_of(result.response.embeds[0])


async def test_a_reroll_speaks_the_server_language(world, prodia):
    await set_server_language(world, "ru")
    original = (await world.alice.slash(world.channel, "imagine", prompt="a fox", seed=3)).response
    await world.alice.react(original, REROLL_EMOJI)

    reroll = reroll_of(world.channel, original)
    posted = [r for r in world.env.http_requests if r.method == "POST" and r.path.endswith("/messages")]
    assert posted[-1].json["content"] == f"🔄 Генерирую заново для <@{world.alice.id}>…"
    assert "Соотношение сторон" in fields_of(reroll.embeds[0])
    assert reroll.embeds[0].footer.text.startswith("Запрос: alice · ")


class TestResumedJobs:
    """A job resumed after a restart speaks the language it was accepted in."""

    @pytest.fixture
    def bot_env(self) -> dict[str, str]:
        return {"PRODIA_POLL_INTERVAL": "2", "PRODIA_TIMEOUT": "3600"}

    @staticmethod
    async def start_then_restart(world, prodia, imagine) -> None:
        prodia.add_fault(Fault("slow", delay=600, path="/v2/job/async"))  # the first submit never answers
        try:
            await imagine("imagine", prompt="a harbour", seed=9)
        except TimeoutError:  # simcord: still waiting on Prodia, as intended
            pass
        (row,) = await world.bot.pipeline.store._query("SELECT state FROM jobs")
        assert row["state"] == "accepted"
        await world.restart()
        await world.env.advance_time(5)

    @pytest.mark.simcord(settle_timeout=0.5)
    async def test_in_a_server_whose_language_is_russian(self, world, prodia):
        await set_server_language(world, "ru")
        await self.start_then_restart(world, prodia, partial(world.alice.slash, world.channel))
        (result,) = results_in(world.channel)
        assert fields_of(result.embeds[0])["Seed"] == "9"
        assert "Соотношение сторон" in fields_of(result.embeds[0])

    @pytest.mark.simcord(settle_timeout=0.5)
    async def test_in_a_dm_of_a_russian_speaker(self, world, prodia, locales):
        locales["user"] = "ru"
        olga = world.env.create_user("olga")
        await self.start_then_restart(world, prodia, olga.slash)
        (result,) = results_in(olga.dm_channel)
        assert "Соотношение сторон" in fields_of(result.embeds[0])


async def test_a_reroll_in_a_dm_speaks_the_requesters_language(world, prodia, locales):
    """A reaction carries no locale: the reroll takes the language the original was posted in."""
    locales["user"] = "ru"
    olga = world.env.create_user("olga")
    original = (await olga.slash("imagine", prompt="лиса", seed=3)).response
    assert "Соотношение сторон" in fields_of(original.embeds[0])

    await olga.set_reaction(original, REROLL_EMOJI, reacted=True)
    reroll = reroll_of(olga.dm_channel, original)
    assert "Соотношение сторон" in fields_of(reroll.embeds[0])
    assert reroll.embeds[0].footer.text.startswith("Запрос: olga · ")


# --- Counts ---


async def test_counts_take_their_plural_form_in_english_and_russian(world, prodia, locales):
    await world.admin.slash(world.channel, "settings set", daily_cap=1)
    assert (await world.alice.slash(world.channel, "imagine", prompt="the one")).response.embeds
    refused = await world.bob.slash(world.channel, "imagine", prompt="one too many")
    assert refused.response.content == (
        "This server has reached its daily limit of 1 image. The count starts again at midnight UTC."
    )
    locales["user"] = "ru"
    refused = await world.bob.slash(world.channel, "imagine", prompt="ещё одно")
    assert refused.response.content == (
        "Этот сервер уже исчерпал дневной лимит в 1 изображение. Счёт начнётся заново в полночь UTC."
    )


# --- Blocked words and typed text in Russian ---


async def test_a_disguised_blocked_word_is_refused_in_russian(world, prodia, locales):
    locales["user"] = "ru"
    await world.admin.slash(world.channel, "settings set", blocked_words="Замок")
    # Upper case, a zero-width space and a stress mark (Russian marks stress with a combining acute): the same word.
    refused = await world.alice.slash(world.channel, "imagine", prompt="старый ЗА\u200bМО\u0301К")
    assert refused.response.ephemeral
    assert refused.response.content == "На этом сервере нельзя использовать «Замок» в описаниях."
    assert prodia.image_posts() == []
    # й is a letter of its own, not an accented и: "мои" is not the blocked "мой".
    await world.admin.slash(world.channel, "settings set", blocked_words="мой")
    assert (await world.alice.slash(world.channel, "imagine", prompt="мои кошки")).response.embeds


async def test_an_unknown_model_is_named_escaped_in_russian(world, prodia, locales, russian_server):
    _, channel, _, olga = russian_server
    result = await olga.slash(channel, "imagine", prompt="лиса", model="[бесплатно](https://evil.example) @everyone")
    default = world.bot.pipeline.catalog.default.name
    assert result.response.embeds[0].description.splitlines()[0] == (
        rf"Модели «\[бесплатно\](https://evil.example) \@everyone» нет, поэтому использована {default} "
        "(список моделей: /models)."
    )
