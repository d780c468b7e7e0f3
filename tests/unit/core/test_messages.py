"""The message catalogue's own rules: plural forms, which language a server speaks, no promise the bot does not keep.

(That every key exists in every language, and the texts users see under simcord: tests/e2e/test_languages.py.)
"""

from __future__ import annotations

import re
import string

import pytest

from bot.core.errors import AuthError
from bot.core.messages import (
    CATALOGUES,
    PLURAL_CATEGORIES,
    error_text,
    language_name,
    language_of,
    plural_category,
    server_language,
    text,
)

# --- Plural rules (CLDR) ---


@pytest.mark.parametrize(
    ("number", "category"),
    [
        (1, "one"),
        (2, "few"),
        (5, "many"),
        (11, "many"),
        (21, "one"),
        (22, "few"),
        (25, "many"),
        (0, "many"),
        (12, "many"),
        (14, "many"),
        (101, "one"),
        (111, "many"),
        (1004, "few"),
        (1.5, "other"),
        ("3", "few"),
    ],
)
def test_russian_plural_categories(number, category):
    assert plural_category("ru", number) == category


@pytest.mark.parametrize(
    ("number", "category"), [(1, "one"), (0, "other"), (2, "other"), (21, "other"), (1.0, "other")]
)
def test_english_plural_categories(number, category):
    assert plural_category("en", number) == category


def test_what_is_no_number_takes_the_other_form():
    assert plural_category("ru", "x") == plural_category("en", None) == "other"


@pytest.mark.parametrize(
    ("count", "words"),
    [
        (1, "1 изображение"),
        (2, "2 изображения"),
        (5, "5 изображений"),
        (11, "11 изображений"),
        (21, "21 изображение"),
        (22, "22 изображения"),
        (25, "25 изображений"),
    ],
)
def test_russian_sentences_agree_with_their_count(count, words):
    assert text("limit.daily_cap", "ru", limit=count) == (
        f"Этот сервер уже исчерпал дневной лимит в {words}. Счёт начнётся заново в полночь UTC."
    )
    assert text("limit.queue_full", "ru", limit=count).startswith(f"Бот загружен до предела (в очереди {words}).")
    assert text("limit.user_jobs", "ru", limit=count).startswith(f"У вас уже создаётся {words} — ")


@pytest.mark.parametrize(
    ("count", "steps", "characters"),
    [
        (1, "1 шаг", "1 символ"),
        (4, "4 шага", "4 символа"),
        (5, "5 шагов", "5 символов"),
        (11, "11 шагов", "11 символов"),
        (21, "21 шаг", "21 символ"),
        (22, "22 шага", "22 символа"),
    ],
)
def test_russian_steps_and_characters_agree_with_their_count(count, steps, characters):
    assert text("note.steps_capped", "ru", model="flux-fast", steps=count, asked=30) == (
        f"flux-fast поддерживает максимум {steps}, поэтому вместо 30 использовано {count}."
    )
    assert text("input.too_long", "ru", name="prompt", limit=count) == (
        f"Параметр prompt слишком длинный: максимум {characters}."
    )


def test_english_sentences_agree_with_their_count():
    assert text("limit.daily_cap", "en", limit=1).startswith("This server has reached its daily limit of 1 image.")
    assert text("limit.daily_cap", "en", limit=2).startswith("This server has reached its daily limit of 2 images.")
    assert text("limit.user_jobs", "en", limit=1).startswith("You already have 1 image in progress")
    assert text("limit.queue_full", "en", limit=1) == (
        "The bot is at capacity (1 image waiting). Please try again in a minute."
    )
    assert (
        text("note.steps_capped", "en", model="m", steps=1, asked=20)
        == "m takes at most 1 step, so it used 1 instead of 20."
    )
    assert text("error.job_timeout", "en", seconds=1).startswith("The image took longer than 1 second,")
    assert text("input.too_long", "en", name="prompt", limit=1000) == "The prompt is too long: at most 1000 characters."


def plural_specs(template: str) -> list[str]:
    return [
        spec for _, name, spec, _ in string.Formatter().parse(template) if name is not None and spec and "|" in spec
    ]


@pytest.mark.parametrize("language", sorted(CATALOGUES))
def test_every_plural_lists_a_form_per_category(language):
    """Russian may leave out "other" (fractions), which then takes the "few" form, as Russian does."""
    categories = PLURAL_CATEGORIES[language]
    allowed = {len(categories), len(categories) - 1} if language == "ru" else {len(categories)}
    found = 0
    for key, template in CATALOGUES[language].items():
        for spec in plural_specs(template):
            found += 1
            assert len(spec.split("|")) in allowed, (key, spec)
    assert found


# --- Which language a server speaks ---


def test_language_of_a_discord_locale():
    assert language_of("ru") == "ru"
    assert language_of("en-GB") == language_of("de") == language_of(None) == "en"


def test_the_servers_language_setting_beats_its_locale_and_english_is_the_last_resort():
    assert server_language("ru", "en-US") == "ru"  # chosen in /settings, in a server Discord reports as en-US
    assert server_language("en", "ru") == "en"
    assert server_language(None, "ru") == "ru"  # a Community server's preferred locale
    assert server_language(None, "de") == "en"  # a language the bot does not speak
    assert server_language(None, None) == "en"


def test_each_language_has_its_own_name():
    assert [language_name(language) for language in ("en", "ru")] == ["English", "Русский"]


# --- Promises ---

# What the bot would have to do itself for these to be true: it only writes a log line.
PROMISES = re.compile(r"has been told|been notified|will be fixed|owner fixes|уже сообщили|пока владелец", re.I)


@pytest.mark.parametrize("language", sorted(CATALOGUES))
def test_no_sentence_says_the_owner_already_knows(language):
    promising = {key: value for key, value in CATALOGUES[language].items() if PROMISES.search(value)}
    assert promising == {}


def test_a_refused_key_asks_the_user_to_tell_the_owner():
    assert error_text(AuthError("401"), "en") == (
        "The image service refused the bot's access key, so no images can be made for now. Please tell the bot's owner."
    )
    assert error_text(AuthError("401"), "ru") == (
        "Сервис изображений не принял ключ доступа бота, поэтому сейчас изображения создать нельзя. "
        "Сообщите об этом владельцу бота."
    )
