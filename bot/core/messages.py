"""Every sentence the bot writes, one catalogue per language. English is the fallback."""

from __future__ import annotations

import logging
from typing import Any

from .errors import ImagineError

log = logging.getLogger(__name__)

EN: dict[str, str] = {
    # Errors: what happened and what the user can do.
    "error.unexpected": "Something went wrong on the bot's side. Please try again in a moment.",
    "error.prodia_unavailable": "The image service is not answering right now. Please try again in a few minutes.",
    "error.prodia_invalid_request": "The image service refused these settings ({reason}). Change them and try again.",
    "error.prodia_auth": (
        "The image service refused the bot's access key, so no images can be made until the bot's owner fixes it."
    ),
    "error.prodia_quota": "The bot's image service account is out of credit. Please tell the bot's owner.",
    "error.prodia_busy": (
        "The image service is busy, or this model is not available to the bot's account. "
        "Please try again in a minute, or pick another model."
    ),
    "error.job_failed": "The image service could not make this image. Try another prompt or seed.",
    "error.job_timeout": "The image took longer than {seconds} seconds, so the bot gave up. Please try again.",
    "error.bad_response": "The image service sent back something that is not a usable image. Please try again.",
    "input.prompt_empty": "The prompt is empty. Describe the image you want.",
    "input.too_long": "The {name} is too long: at most {limit} characters.",
    "input.range": "{name} must be between {low} and {high}.",
    "input.choice": "{name} must be one of: {allowed}.",
    "input.unknown_model": "There is no model called “{name}”. Pick one from the list.",
    # Limits.
    "error.missing_permissions": (
        "I could not post the image here: I need the Embed Links and Attach Files permissions in this channel."
    ),
    "limit.blocked_word": "This server does not allow “{word}” in prompts.",
    "limit.daily_cap": "This server has used its {limit} images for today. The count starts again at midnight UTC.",
    "limit.queue_full": "The bot is at capacity ({limit} images waiting). Please try again in a minute.",
    "limit.user_jobs": "You already have {limit} images in progress. Wait for one to finish.",
    "limit.cooldown": "Slow down a little: you can ask again in {seconds} s.",
    # Progress.
    "progress.waiting": "Waiting in the bot's queue: position {position}",
    "progress.submitted": "Sent to the image service",
    "progress.queued": "Queued at the image service",
    "progress.generating": "Generating",
    "progress.downloading": "Fetching the image",
    "progress.started": "Started {timestamp}",
    # The result.
    "field.model": "Model",
    "field.sampler": "Sampler",
    "field.steps": "Steps",
    "field.cfg": "CFG",
    "field.seed": "Seed",
    "field.aspect_ratio": "Aspect ratio",
    "field.negative_prompt": "Negative prompt",
    "aspect.square": "Square",
    "aspect.portrait": "Portrait",
    "aspect.landscape": "Landscape",
    "result.footer": "Requested by {user} · {seconds} s",
    "result.no_reaction": "React with 🔄 to reroll (the bot could not add the reaction itself here).",
    "note.unknown_model": "There is no model “{name}”, so {model} was used.",
    "note.ignored": "{model} does not use: {names}.",
    "note.steps_capped": "{model} takes at most {steps} steps, so {steps} were used instead of {asked}.",
    "reroll.started": "🔄 Rerolling for {user}…",
    # /settings.
    "settings.saved": "Saved. The defaults for this server are now:",
    "settings.reset": "The defaults for this server are back to the built-in ones.",
    "settings.show": "Defaults for this server:",
    "settings.builtin": "built-in: {value}",
    "settings.reroll.requester": "only the requester",
    "settings.reroll.anyone": "anyone",
    "settings.field.reroll": "Who may reroll",
    "settings.field.blocked_words": "Blocked words",
    "settings.field.daily_cap": "Images per day",
    "settings.none": "none",
    "settings.unlimited": "no limit",
    "models.title": "Models ({count})",
    "models.default": "(default)",
    "models.takes": "takes: {names} (steps up to {steps})",
    "models.unconfirmed": "· not confirmed by Prodia's documentation",
    "models.footer": "Page {page} of {pages} · use a short name or the full name in /imagine model:",
    "models.none": "No model matches “{search}”.",
    "settings.no_permission": "You need the Manage Server permission to change the bot's settings.",
    "settings.guild_only": "Server settings can only be changed in a server.",
    # Slash command descriptions and choice names, sent to Discord at sync by `bot.i18n.CatalogueTranslator`.
    # Discord allows at most 100 characters each. {low} and {high} are filled from `bot.i18n.COMMAND_PARAMS`.
    "cmd.imagine": "Turn a prompt into an image",
    "cmd.imagine.prompt": "What the image should show",
    "cmd.imagine.negative_prompt": "What the image should not show",
    "cmd.imagine.model": "The model to draw with (default: the server's, else the bot's)",
    "cmd.imagine.steps": "Denoising steps, {low}-{high}: more is slower and finer",
    "cmd.imagine.cfg": "How closely to follow the prompt, {low}-{high}",
    "cmd.imagine.seed": "A number that fixes the randomness; the same seed gives the same image",
    "cmd.imagine.sampler": "The sampling method",
    "cmd.imagine.aspect_ratio": "The shape of the image",
    "cmd.settings": "This server's defaults for /imagine",
    "cmd.settings.set": "Change this server's defaults (only the options you give)",
    "cmd.settings.set.model": "Default model",
    "cmd.settings.set.sampler": "Default sampler",
    "cmd.settings.set.steps": "Default steps, {low}-{high}",
    "cmd.settings.set.cfg": "Default CFG, {low}-{high}",
    "cmd.settings.set.negative_prompt": "Default negative prompt",
    "cmd.settings.set.aspect_ratio": "Default aspect ratio",
    "cmd.settings.set.reroll": "Who may reroll a result with 🔄 (members with Manage Messages always may)",
    "cmd.settings.set.blocked_words": (
        "Words or phrases refused in prompts, comma-separated (replaces the list; - clears)"
    ),
    "cmd.settings.set.daily_cap": "Images this server may make per day (0: no limit)",
    "cmd.models": "List the models you can use with /imagine",
    "cmd.models.search": "Only models matching this (names and short names)",
    "cmd.models.page": "Which page to show",
    "cmd.settings.show": "Show this server's defaults",
    "cmd.settings.reset": "Forget this server's defaults",
    # Choice names (the aspect ratio choices use the aspect.* sentences above).
    "choice.reroll.requester": "Only the requester",
    "choice.reroll.anyone": "Anyone",
}

RU: dict[str, str] = {
    # Ошибки: что случилось и что может сделать пользователь.
    "error.unexpected": "Что-то пошло не так на стороне бота. Попробуйте ещё раз чуть позже.",
    "error.prodia_unavailable": "Сервис изображений сейчас не отвечает. Попробуйте ещё раз через несколько минут.",
    "error.prodia_invalid_request": (
        "Сервис изображений отклонил эти настройки ({reason}). Измените их и попробуйте снова."
    ),
    "error.prodia_auth": (
        "Сервис изображений не принял ключ доступа бота: изображения не будут создаваться, пока владелец бота "
        "это не исправит."
    ),
    "error.prodia_quota": "На счёте бота в сервисе изображений закончились средства. Сообщите об этом владельцу бота.",
    "error.prodia_busy": (
        "Сервис изображений перегружен, или эта модель недоступна аккаунту бота. "
        "Попробуйте ещё раз через минуту или выберите другую модель."
    ),
    "error.job_failed": "Сервису изображений не удалось создать это изображение. Попробуйте другое описание или seed.",
    "error.job_timeout": "Изображение не было готово за {seconds} с, и бот перестал ждать. Попробуйте ещё раз.",
    "error.bad_response": (
        "Сервис изображений прислал ответ, из которого не получилось изображение. Попробуйте ещё раз."
    ),
    "input.prompt_empty": "Описание пустое. Опишите изображение, которое хотите получить.",
    "input.too_long": "Параметр {name} слишком длинный: не больше {limit} символов.",
    "input.range": "Параметр {name} должен быть от {low} до {high}.",
    "input.choice": "Параметр {name} должен быть одним из: {allowed}.",
    "input.unknown_model": "Модели «{name}» нет. Выберите модель из списка.",
    # Ограничения.
    "error.missing_permissions": (
        "Не удалось опубликовать изображение: в этом канале боту нужны права «Встраивать ссылки» и «Прикреплять файлы»."
    ),
    "limit.blocked_word": "На этом сервере нельзя использовать «{word}» в описаниях.",
    "limit.daily_cap": "Сервер уже израсходовал {limit} изображений на сегодня. Счёт начнётся заново в полночь UTC.",
    "limit.queue_full": "Бот загружен до предела (изображений в очереди: {limit}). Попробуйте ещё раз через минуту.",
    "limit.user_jobs": "У вас уже создаётся изображений: {limit}. Дождитесь, пока одно из них будет готово.",
    "limit.cooldown": "Не так быстро: следующий запрос можно отправить через {seconds} с.",
    # Ход работы.
    "progress.waiting": "В очереди бота: место {position}",
    "progress.submitted": "Отправлено в сервис изображений",
    "progress.queued": "В очереди сервиса изображений",
    "progress.generating": "Генерация",
    "progress.downloading": "Получение изображения",
    "progress.started": "Начато {timestamp}",
    # Результат.
    "field.model": "Модель",
    "field.sampler": "Сэмплер",
    "field.steps": "Шаги",
    "field.cfg": "CFG",
    "field.seed": "Seed",
    "field.aspect_ratio": "Соотношение сторон",
    "field.negative_prompt": "Негативный промпт",
    "aspect.square": "Квадратное",
    "aspect.portrait": "Вертикальное",
    "aspect.landscape": "Горизонтальное",
    "result.footer": "Запрос: {user} · {seconds} с",
    "result.no_reaction": "Поставьте реакцию 🔄, чтобы сгенерировать заново (здесь бот не смог добавить её сам).",
    "note.unknown_model": "Модели «{name}» нет, поэтому использована {model}.",
    "note.ignored": "{model} не использует: {names}.",
    "note.steps_capped": "Для {model} можно не больше {steps} шагов, поэтому вместо {asked} использовано {steps}.",
    "reroll.started": "🔄 Генерирую заново для {user}…",
    # /settings.
    "settings.saved": "Сохранено. Теперь на этом сервере по умолчанию действуют такие настройки:",
    "settings.reset": "На этом сервере снова действуют встроенные настройки по умолчанию.",
    "settings.show": "Настройки по умолчанию на этом сервере:",
    "settings.builtin": "встроенное: {value}",
    "settings.reroll.requester": "только автор запроса",
    "settings.reroll.anyone": "любой участник",
    "settings.field.reroll": "Кто может генерировать заново",
    "settings.field.blocked_words": "Запрещённые слова",
    "settings.field.daily_cap": "Изображений в день",
    "settings.none": "нет",
    "settings.unlimited": "без ограничения",
    "models.title": "Модели ({count})",
    "models.default": "(по умолчанию)",
    "models.takes": "принимает: {names} (шагов не больше {steps})",
    "models.unconfirmed": "· не подтверждено документацией Prodia",
    "models.footer": "Страница {page} из {pages} · в /imagine model: подходит короткое или полное имя",
    "models.none": "Нет моделей, подходящих под «{search}».",
    "settings.no_permission": "Чтобы менять настройки бота, нужно право «Управлять сервером».",
    "settings.guild_only": "Настройки сервера можно менять только на сервере.",
    # Описания команд и названия вариантов (не больше 100 символов каждое).
    "cmd.imagine": "Превратить описание в изображение",
    "cmd.imagine.prompt": "Что должно быть на изображении",
    "cmd.imagine.negative_prompt": "Чего не должно быть на изображении",
    "cmd.imagine.model": "Модель для рисования (по умолчанию: модель сервера, иначе модель бота)",
    "cmd.imagine.steps": "Шаги шумоподавления, {low}–{high}: чем больше, тем медленнее и детальнее",
    "cmd.imagine.cfg": "Насколько точно следовать описанию, {low}–{high}",
    "cmd.imagine.seed": "Число, которое фиксирует случайность: с тем же seed получится то же изображение",
    "cmd.imagine.sampler": "Метод сэмплирования",
    "cmd.imagine.aspect_ratio": "Форма изображения",
    "cmd.settings": "Настройки /imagine по умолчанию на этом сервере",
    "cmd.settings.set": "Изменить настройки сервера по умолчанию (только указанные параметры)",
    "cmd.settings.set.model": "Модель по умолчанию",
    "cmd.settings.set.sampler": "Сэмплер по умолчанию",
    "cmd.settings.set.steps": "Шаги по умолчанию, {low}–{high}",
    "cmd.settings.set.cfg": "CFG по умолчанию, {low}–{high}",
    "cmd.settings.set.negative_prompt": "Негативный промпт по умолчанию",
    "cmd.settings.set.aspect_ratio": "Соотношение сторон по умолчанию",
    "cmd.settings.set.reroll": (
        "Кто может сгенерировать результат заново через 🔄 (с правом «Управлять сообщениями» — всегда)"
    ),
    "cmd.settings.set.blocked_words": (
        "Слова или фразы через запятую, запрещённые в описаниях (заменяет список; - очищает)"
    ),
    "cmd.settings.set.daily_cap": "Сколько изображений сервер может создать за день (0: без ограничения)",
    "cmd.models": "Список моделей, доступных в /imagine",
    "cmd.models.search": "Только модели, подходящие под этот текст (имена и короткие имена)",
    "cmd.models.page": "Какую страницу показать",
    "cmd.settings.show": "Показать настройки сервера по умолчанию",
    "cmd.settings.reset": "Сбросить настройки сервера по умолчанию",
    "choice.reroll.requester": "Только автор запроса",
    "choice.reroll.anyone": "Любой участник",
}

# Keys are language codes: a Discord locale ("ru", "en-US", "pt-BR") is looked up by its part before the dash.
CATALOGUES: dict[str, dict[str, str]] = {"en": EN, "ru": RU}


def text(key: str, locale: str | None = None, **params: Any) -> str:
    """The sentence for `key` in `locale` (e.g. "ru", "en-US"), falling back to English."""
    language = (locale or "en").split("-")[0].lower()
    template = CATALOGUES.get(language, EN).get(key) or EN.get(key)
    if template is None:
        log.error("Message key %r is missing", key)
        template = EN["error.unexpected"]
    try:
        return template.format(**params)
    except (KeyError, IndexError):
        log.error("Message key %r lacks a parameter; got %s", key, sorted(params))
        return template


def error_text(error: BaseException, locale: str | None = None) -> str:
    """What a user is told about `error`: catalogue text only, never the exception's own detail."""
    if isinstance(error, ImagineError):
        return text(error.key, locale, **error.params)
    return text("error.unexpected", locale)
