"""Every sentence the bot writes, one catalogue per language. English is the fallback.

A sentence with a count names its word forms in the count's field, in the order of the language's CLDR plural
categories (`PLURAL_CATEGORIES`): `{limit} {limit:image|images}`, `{limit} {limit:изображение|изображения|изображений}`.
"""

from __future__ import annotations

import logging
import string
from decimal import Decimal, InvalidOperation
from typing import Any

from .errors import ImagineError

log = logging.getLogger(__name__)

EN: dict[str, str] = {
    # Errors: what happened and what the user can do.
    "error.unexpected": "Something went wrong on the bot's side. Please try again in a moment.",
    "error.prodia_unavailable": "The image service is not answering right now. Please try again in a few minutes.",
    "error.prodia_invalid_request": "The image service refused these settings ({reason}). Change them and try again.",
    "error.prodia_auth": (
        "The image service refused the bot's access key, so no images can be made for now. Please tell the bot's owner."
    ),
    "error.prodia_quota": "The bot's image service account is out of credit. Please tell the bot's owner.",
    "error.prodia_busy": (
        "The image service is busy, or this model is not available to the bot's account. "
        "Please try again in a minute, or pick another model."
    ),
    "error.job_failed": "The image service could not make this image. Try another prompt or seed.",
    "error.job_timeout": (
        "The image took longer than {seconds} {seconds:second|seconds}, so the bot gave up. Please try again."
    ),
    "error.bad_response": "The image service sent back something that is not a usable image. Please try again.",
    "error.job_interrupted": (
        "The bot restarted while making this image, more often than it may send an image again "
        "(each try may be paid for). Please try again."
    ),
    "input.prompt_empty": "The prompt is empty. Describe the image you want.",
    "input.too_long": "The {name} is too long: at most {limit} {limit:character|characters}.",
    "input.range": "{name} must be between {low} and {high}.",
    "input.choice": "{name} must be one of: {allowed}.",
    "input.unknown_model": "There is no model called “{name}”. Pick one from the list.",
    "input.cannot_vary": "Images made with “{model}” cannot be varied: the image service offers no way to.",
    "input.message_without_text": "This message has no text to make an image from.",
    "input.image_too_large": "The image is too large: at most {limit} MB.",
    "input.image_type": "The image must be a PNG, JPEG or WebP file.",
    "input.image_unreadable": "Your image could not be read from Discord in time. Try again, or with a smaller one.",
    "input.bad_upload": "That image can't be used ({reason}).",
    "input.cannot_start_from_image": (
        "“{model}” cannot start from an image: the image service offers no way to. Pick another model (/models)."
    ),
    "cmd.imagine.image": "An image to start from (PNG, JPEG or WebP, at most 10 MB)",
    "cmd.imagine.strength": "How much of that image is redone, 0-1 (default 0.5)",
    # Limits.
    "error.missing_permissions": (
        "I could not post the image here: I need the Embed Links and Attach Files permissions in this channel."
    ),
    "limit.blocked_word": "This server does not allow “{word}” in prompts.",
    "limit.daily_cap": (
        "This server has reached its daily limit of {limit} {limit:image|images}. "
        "The count starts again at midnight UTC."
    ),
    "limit.queue_full": (
        "The bot is at capacity ({limit} {limit:image|images} waiting). Please try again in a minute."
    ),
    "limit.user_jobs": (
        "You already have {limit} {limit:image|images} in progress, the most allowed. Wait for one to finish."
    ),
    "limit.cooldown": "Slow down a little: you can ask again in {seconds} s.",
    "limit.restarting": "The bot is restarting. Please try again in a minute.",
    "limit.unavailable": "Limits can't be checked right now, so nothing was started; try again in a minute.",
    "limit.dm_daily_cap": (
        "You have reached today's limit of {limit} {limit:image|images} in direct messages. "
        "The count starts again at midnight UTC (<t:{reset}:R>)."
    ),
    "limit.user_daily_cap": (
        "You have reached your daily limit of {limit} {limit:image|images}. "
        "The count starts again at midnight UTC (<t:{reset}:R>)."
    ),
    # Progress.
    "progress.waiting": "Waiting in the bot's queue: position {position}",
    "progress.submitted": "Sent to the image service",
    "progress.queued": "Queued at the image service",
    "progress.generating": "Generating",
    "progress.downloading": "Fetching the image",
    "progress.started": "Started {timestamp}",
    # The result.
    "field.model": "Model",
    "field.checkpoint": "Checkpoint",
    "field.sampler": "Sampler",
    "field.steps": "Steps",
    "field.cfg": "CFG",
    "field.seed": "Seed",
    "field.aspect_ratio": "Aspect ratio",
    "field.negative_prompt": "Negative prompt",
    "field.style": "Style",
    "field.seeds": "Seeds",
    "field.count": "Count",
    "aspect.square": "Square",
    "aspect.portrait": "Portrait",
    "aspect.landscape": "Landscape",
    "result.footer": "Requested by {user} · {seconds} s",
    "result.no_reaction": "React with 🔄 to reroll (the bot could not add the reaction itself here).",
    "result.missing": "{missing} of {count} images could not be shown: {reason}",
    "note.unknown_model": "There is no model “{name}”, so {model} was used (/models lists them).",
    "note.ignored": "{model} does not use: {names}.",
    "note.steps_capped": "{model} takes at most {steps} {steps:step|steps}, so it used {steps} instead of {asked}.",
    "reroll.started": "🔄 Rerolling for {user}…",
    "reroll.refused": "{user}, your 🔄 was not started: {reason}",
    "reroll.later": "{user}, your 🔄 starts in {seconds} s (one request at a time, a short pause between).",
    # Buttons under a result, and what they answer (privately).
    "action.reroll": "Reroll",
    "action.edit": "Edit",
    "action.delete": "Delete",
    "action.vary": "Vary",
    "action.upscale": "Upscale",
    "action.vary_image": "Vary {number}",
    "action.upscale_image": "Upscale {number}",
    "action.cancel": "Cancel",
    "action.image_gone": "The result's image can no longer be read from Discord, so it cannot be worked on.",
    "action.job_ended": (
        "This job has already ended (or another instance of the bot runs it), so there is nothing to cancel."
    ),
    "job.cancelled": "✖️ Cancelled by {user}.",
    "job.cancelled_sent": (
        "✖️ Cancelled by {user}. It had already been sent to the image service, which cannot take it back: it may "
        "still count toward the bot's usage."
    ),
    "vary.started": "🎨 Making a variation for {user}…",
    "upscale.started": "⬆️ Upscaling for {user}…",
    "note.variation": "A variation of the image it replies to (strength {strength}).",
    "note.from_upload": "Made from the uploaded image (top right), strength {strength}.",
    "note.upscaled": "Upscaled {factor}×.",
    "input.bad_image": "The result's image is not one the image service can take ({reason}), so nothing was sent.",
    "input.upscale_too_large": (
        "Upscaled, this image would be over this channel's upload limit ({limit} MB) even compressed, so it was not "
        "sent."
    ),
    "edit.started": "✏️ Running the edited request for {user}…",
    "action.gone": "The bot no longer knows this result (it is too old or was deleted), so it cannot act on it.",
    "action.not_allowed": "Only the person who asked for this image (or a member with Manage Messages) may do that.",
    "action.deleted": "The result was deleted.",
    "edit.title": "Edit and run again",
    "edit.prompt": "Prompt",
    "edit.negative_prompt": "Negative prompt (empty: none)",
    "edit.seed": "Seed (empty: a new one)",
    # /settings.
    "settings.saved": "Saved. The defaults for this server are now:",
    "settings.reset": (
        "This server's defaults (model, sampler, steps, CFG, negative prompt, aspect ratio, style) and its language "
        "are back to the built-in ones. Moderation is kept: who may reroll, blocked words, images per day and the "
        "content policy; to clear it too: "
        "`/settings set reroll:requester blocked_words:- daily_cap:0 nsfw:block nsfw_age_restricted:allow`."
    ),
    "settings.show": "Defaults for this server:",
    "settings.builtin": "built-in: {value}",
    "settings.reroll.requester": "only the requester",
    "settings.reroll.anyone": "anyone",
    "settings.field.reroll": "Who may reroll",
    "settings.field.blocked_words": "Blocked words",
    "settings.field.daily_cap": "Images per day",
    "settings.field.language": "Language of public messages",
    "settings.language.auto": (
        "automatic: {language} (the server's language in Discord's Community settings, else English)"
    ),
    "settings.none": "none",
    "settings.unlimited": "no limit",
    "settings.field.nsfw": "Possibly sexual results, ordinary channels",
    "settings.field.nsfw_age_restricted": "Possibly sexual results, age-restricted channels",
    "settings.nsfw.block": "withheld",
    "settings.nsfw.spoiler": "shown as spoilers",
    "settings.nsfw.allow": "shown",
    "cmd.settings.set.nsfw": "Possibly sexual results in ordinary channels and DMs: withheld or spoilered",
    "cmd.settings.set.nsfw_age_restricted": (
        "Possibly sexual results in age-restricted channels: show, withhold, spoiler"
    ),
    "choice.nsfw.block": "Withhold",
    "choice.style.none": "None (clear the default)",
    "cmd.imagine.style": "A style preset (for the models that take one)",
    "cmd.imagine.count": "How many images to make at once (1-4), seeds counting up from the seed",
    "cmd.settings.set.style": "Default style preset (none: clear)",
    "choice.nsfw.spoiler": "Spoiler",
    "choice.nsfw.allow": "Show",
    "limit.explicit": (
        "“{word}” is not allowed in prompts in this channel: possibly sexual images are kept to age-restricted "
        "channels."
    ),
    "content.withheld": (
        "The image was withheld: the content check rated it possibly sexual, which this server does not show in this "
        "channel."
    ),
    "content.unchecked": (
        "The image was withheld: the content check could not run, and this channel shows only checked images. Try "
        "again in a minute."
    ),
    "content.spoilered": "Shown as a spoiler: the content check rated it possibly sexual.",
    "content.spoilered_unchecked": "Shown as a spoiler: the content check could not run.",
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
    "cmd.imagine_this": "Imagine this",
    "cmd.help": "What this bot can do, and this server's limits for you",
    "cmd.preferences": "Your own image defaults, everywhere",
    "cmd.preferences.set": "Set your own defaults (they apply above the channel's and the server's)",
    "cmd.preferences.show": "Show your own defaults",
    "cmd.preferences.reset": "Forget your own defaults",
    "cmd.preferences.set.model": "Your default model",
    "cmd.preferences.set.sampler": "Your default sampler",
    "cmd.preferences.set.steps": "Your default number of steps (1-25)",
    "cmd.preferences.set.cfg": "Your default CFG scale (0-20)",
    "cmd.preferences.set.negative_prompt": "Your default negative prompt (blank: none)",
    "cmd.preferences.set.aspect_ratio": "Your default aspect ratio",
    "cmd.preferences.set.style": "Your default style preset (none: clear)",
    "preferences.saved": "Saved. Your own defaults (what you type still comes first):",
    "preferences.show": "Your own defaults (what you type comes first; then these, the channel's, the server's):",
    "preferences.reset": "Your own defaults are forgotten: the channel's and the server's apply again.",
    "defaults.not_set": "not set",
    "cmd.settings.set.channel": "Set these image defaults for one channel instead of the whole server",
    "cmd.settings.show.channel": "Show one channel's image defaults instead",
    "cmd.settings.reset.channel": "Forget one channel's image defaults instead",
    "settings.channel_saved": "Saved. The image defaults of {channel} (above the server's, below each user's own):",
    "settings.channel_show": "The image defaults of {channel} (above the server's, below each user's own):",
    "settings.channel_reset": "The image defaults of {channel} are forgotten: the server's apply there again.",
    "input.channel_defaults_only": (
        "A channel takes only image defaults (model, sampler, steps, CFG, negative prompt, aspect ratio, style); "
        "the other settings are the server's."
    ),
    "help.title": "Imagine: what you can do",
    "help.commands": (
        "`/imagine prompt` makes an image. Options: `negative_prompt`, `model`, `steps`, `cfg`, `seed`, `sampler`, "
        "`aspect_ratio`, `style`, `count` (up to 4 images at once), and `image` (a picture to start from) with "
        "`strength`.\n"
        "**Imagine this**, in a message's *Apps* menu, makes one from the message's text.\n"
        "`/models` lists the models; `/settings` (Manage Server) sets this server's defaults and moderation."
    ),
    "help.limits": "Your limits here",
    "help.per_user": "{jobs} {jobs:image|images} at a time, and {cooldown} s between two requests.",
    "help.cap.guild": "This server: {limit} {limit:image|images} a day, {left} left today (UTC).",
    "help.cap.dm": "In direct messages: {limit} {limit:image|images} a day, {left} left today (UTC).",
    "help.cap.user": "You, everywhere: {limit} {limit:image|images} a day, {left} left today (UTC).",
    "help.no_cap": "No daily cap here.",
    "help.limits_unknown": "Today's counts can't be read right now.",
    "help.results": "On a result",
    "help.actions": (
        "🔄 reroll (or react 🔄) · ✏️ edit the prompt · 🎨 vary · ⬆️ upscale 2× · 🗑️ delete. ✖️ under the progress "
        "cancels. Who may reroll, edit, vary and upscale here: {who}; delete: the requester or a moderator."
    ),
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
    "cmd.settings.set.language": "Language of progress, results and errors posted in the channels",
    "cmd.models": "List the models you can use with /imagine",
    "cmd.models.search": "Only models matching this (names and short names)",
    "cmd.models.page": "Which page to show",
    "cmd.settings.show": "Show this server's defaults",
    "cmd.settings.reset": "Put this server's defaults and language back (moderation settings are kept)",
    # Choice names (the aspect ratio choices use the aspect.* sentences above).
    "choice.reroll.requester": "Only the requester",
    "choice.reroll.anyone": "Anyone",
    "choice.language.auto": "Automatic: the server's Discord language, else English",
    # The language's own name, shown in /settings and as its choice there (never translated).
    "language.name": "English",
}

RU: dict[str, str] = {
    # Ошибки: что случилось и что может сделать пользователь.
    "error.unexpected": "Что-то пошло не так на стороне бота. Попробуйте ещё раз чуть позже.",
    "error.prodia_unavailable": "Сервис изображений сейчас не отвечает. Попробуйте ещё раз через несколько минут.",
    "error.prodia_invalid_request": (
        "Сервис изображений отклонил эти настройки ({reason}). Измените их и попробуйте снова."
    ),
    "error.prodia_auth": (
        "Сервис изображений не принял ключ доступа бота, поэтому сейчас изображения создать нельзя. "
        "Сообщите об этом владельцу бота."
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
    "error.job_interrupted": (
        "Бот перезапускался, пока создавал это изображение, чаще, чем ему можно отправлять изображение повторно "
        "(каждая попытка может быть платной). Попробуйте ещё раз."
    ),
    "input.prompt_empty": "Описание пустое. Опишите изображение, которое хотите получить.",
    "input.too_long": "Параметр {name} слишком длинный: максимум {limit} {limit:символ|символа|символов}.",
    "input.range": "Параметр {name} должен быть от {low} до {high}.",
    "input.choice": "Параметр {name} должен быть одним из: {allowed}.",
    "input.unknown_model": "Модели «{name}» нет. Выберите модель из списка.",
    "input.cannot_vary": "Изображения модели «{model}» нельзя варьировать: сервис изображений этого не умеет.",
    "input.message_without_text": "В этом сообщении нет текста, по которому можно создать изображение.",
    "input.image_too_large": "Изображение слишком большое: максимум {limit} МБ.",
    "input.image_type": "Изображение должно быть файлом PNG, JPEG или WebP.",
    "input.image_unreadable": (
        "Не удалось вовремя прочитать ваше изображение из Discord. Попробуйте ещё раз или меньшее."
    ),
    "input.bad_upload": "Это изображение не подходит ({reason}).",
    "input.cannot_start_from_image": (
        "Модель «{model}» не умеет начинать с изображения: сервис этого не предлагает. "
        "Выберите другую модель (/models)."
    ),
    "cmd.imagine.image": "Изображение, с которого начать (PNG, JPEG или WebP, до 10 МБ)",
    "cmd.imagine.strength": "Какую часть изображения переделать, 0-1 (по умолчанию 0.5)",
    # Ограничения.
    "error.missing_permissions": (
        "Не удалось опубликовать изображение: в этом канале боту нужны права «Встраивать ссылки» и «Прикреплять файлы»."
    ),
    "limit.blocked_word": "На этом сервере нельзя использовать «{word}» в описаниях.",
    "limit.daily_cap": (
        "Этот сервер уже исчерпал дневной лимит в {limit} {limit:изображение|изображения|изображений}. "
        "Счёт начнётся заново в полночь UTC."
    ),
    "limit.queue_full": (
        "Бот загружен до предела (в очереди {limit} {limit:изображение|изображения|изображений}). "
        "Попробуйте ещё раз через минуту."
    ),
    "limit.user_jobs": (
        "У вас уже создаётся {limit} {limit:изображение|изображения|изображений} — больше одновременно нельзя. "
        "Новый запрос можно будет отправить, когда освободится место."
    ),
    "limit.cooldown": "Не так быстро: следующий запрос можно отправить через {seconds} с.",
    "limit.restarting": "Бот перезапускается. Попробуйте ещё раз через минуту.",
    "limit.unavailable": (
        "Сейчас не получается проверить ограничения, поэтому ничего не запущено. Попробуйте ещё раз через минуту."
    ),
    "limit.dm_daily_cap": (
        "Вы исчерпали дневной лимит в {limit} {limit:изображение|изображения|изображений} в личных сообщениях. "
        "Счёт начнётся заново в полночь UTC (<t:{reset}:R>)."
    ),
    "limit.user_daily_cap": (
        "Вы исчерпали свой дневной лимит в {limit} {limit:изображение|изображения|изображений}. "
        "Счёт начнётся заново в полночь UTC (<t:{reset}:R>)."
    ),
    # Ход работы.
    "progress.waiting": "В очереди бота: место {position}",
    "progress.submitted": "Отправлено в сервис изображений",
    "progress.queued": "В очереди сервиса изображений",
    "progress.generating": "Генерация",
    "progress.downloading": "Получение изображения",
    "progress.started": "Начато {timestamp}",
    # Результат.
    "field.model": "Модель",
    "field.checkpoint": "Чекпойнт",
    "field.sampler": "Сэмплер",
    "field.steps": "Шаги",
    "field.cfg": "CFG",
    "field.seed": "Seed",
    "field.aspect_ratio": "Соотношение сторон",
    "field.negative_prompt": "Негативный промпт",
    "field.style": "Стиль",
    "field.seeds": "Сиды",
    "field.count": "Количество",
    "aspect.square": "Квадратное",
    "aspect.portrait": "Вертикальное",
    "aspect.landscape": "Горизонтальное",
    "result.footer": "Запрос: {user} · {seconds} с",
    "result.no_reaction": "Поставьте реакцию 🔄, чтобы сгенерировать заново (здесь бот не смог добавить её сам).",
    "result.missing": "Не удалось показать {missing} из {count}: {reason}",
    "note.unknown_model": "Модели «{name}» нет, поэтому использована {model} (список моделей: /models).",
    "note.ignored": "{model} не использует: {names}.",
    "note.steps_capped": (
        "{model} поддерживает максимум {steps} {steps:шаг|шага|шагов}, поэтому вместо {asked} использовано {steps}."
    ),
    "reroll.started": "🔄 Генерирую заново для {user}…",
    "reroll.refused": "{user}, ваш 🔄 не запущен: {reason}",
    "reroll.later": "{user}, ваш 🔄 начнётся через {seconds} с (по одному запросу, с короткой паузой между ними).",
    "action.reroll": "Заново",
    "action.edit": "Изменить",
    "action.delete": "Удалить",
    "action.vary": "Вариация",
    "action.upscale": "Увеличить",
    "action.vary_image": "Вариация {number}",
    "action.upscale_image": "Увеличить {number}",
    "action.cancel": "Отменить",
    "action.image_gone": "Изображение результата больше нельзя прочитать из Discord, поэтому с ним ничего не сделать.",
    "action.job_ended": "Эта задача уже завершилась (или её выполняет другой экземпляр бота), отменять нечего.",
    "job.cancelled": "✖️ Отменено: {user}.",
    "job.cancelled_sent": (
        "✖️ Отменено: {user}. Запрос уже был отправлен сервису изображений, и отозвать его нельзя: он может "
        "учитываться в расходах бота."
    ),
    "vary.started": "🎨 Делаю вариацию для {user}…",
    "upscale.started": "⬆️ Увеличиваю для {user}…",
    "note.variation": "Вариация изображения, на которое это ответ (сила {strength}).",
    "note.from_upload": "Сделано из загруженного изображения (справа вверху), сила {strength}.",
    "note.upscaled": "Увеличено в {factor}×.",
    "input.bad_image": (
        "Изображение результата не подходит сервису изображений ({reason}), поэтому запрос не отправлен."
    ),
    "input.upscale_too_large": (
        "После увеличения это изображение превысит лимит загрузки канала ({limit} МБ) даже в сжатом виде, "
        "поэтому запрос не отправлен."
    ),
    "edit.started": "✏️ Запускаю изменённый запрос для {user}…",
    "action.gone": "Бот больше не знает этот результат (он слишком старый или удалён), поэтому ничего сделать нельзя.",
    "action.not_allowed": "Это может только автор запроса (или участник с правом «Управлять сообщениями»).",
    "action.deleted": "Результат удалён.",
    "edit.title": "Изменить и запустить снова",
    "edit.prompt": "Описание",
    "edit.negative_prompt": "Негативное описание (пусто: нет)",
    "edit.seed": "Seed (пусто: новый)",
    # /settings.
    "settings.saved": "Сохранено. Теперь на этом сервере по умолчанию действуют такие настройки:",
    "settings.reset": (
        "Настройки сервера по умолчанию (модель, сэмплер, шаги, CFG, негативный промпт, соотношение сторон, стиль) "
        "и язык возвращены к встроенным. Настройки модерации сохранены: кто может генерировать заново, запрещённые "
        "слова, лимит изображений в день и политика откровенного контента; чтобы сбросить и их: "
        "`/settings set reroll:requester blocked_words:- daily_cap:0 nsfw:block nsfw_age_restricted:allow`."
    ),
    "settings.show": "Настройки по умолчанию на этом сервере:",
    "settings.builtin": "встроенное: {value}",
    "settings.reroll.requester": "только автор запроса",
    "settings.reroll.anyone": "любой участник",
    "settings.field.reroll": "Кто может генерировать заново",
    "settings.field.blocked_words": "Запрещённые слова",
    "settings.field.daily_cap": "Изображений в день",
    "settings.field.language": "Язык публичных сообщений",
    "settings.language.auto": (
        "автоматически: {language} (язык сервера из настроек сообщества Discord, иначе английский)"
    ),
    "settings.none": "нет",
    "settings.unlimited": "без ограничения",
    "settings.field.nsfw": "Откровенные результаты, обычные каналы",
    "settings.field.nsfw_age_restricted": "Откровенные результаты, каналы 18+",
    "settings.nsfw.block": "скрываются",
    "settings.nsfw.spoiler": "под спойлером",
    "settings.nsfw.allow": "показываются",
    "cmd.settings.set.nsfw": "Откровенные результаты в обычных каналах и ЛС: скрывать или под спойлер",
    "cmd.settings.set.nsfw_age_restricted": "Откровенные результаты в каналах 18+: показывать, скрывать, под спойлер",
    "choice.nsfw.block": "Скрывать",
    "choice.style.none": "Нет (сбросить)",
    "cmd.imagine.style": "Стиль (для моделей, которые его принимают)",
    "cmd.imagine.count": "Сколько изображений сделать сразу (1-4), сиды подряд начиная с seed",
    "cmd.settings.set.style": "Стиль по умолчанию (нет: сбросить)",
    "choice.nsfw.spoiler": "Под спойлер",
    "choice.nsfw.allow": "Показывать",
    "limit.explicit": (
        "«{word}» нельзя использовать в описаниях в этом канале: откровенные изображения — только в каналах 18+."
    ),
    "content.withheld": (
        "Изображение скрыто: проверка сочла его возможно откровенным, а этот сервер не показывает такое в этом канале."
    ),
    "content.unchecked": (
        "Изображение скрыто: проверку не удалось выполнить, а этот канал показывает только проверенные изображения. "
        "Попробуйте через минуту."
    ),
    "content.spoilered": "Показано под спойлером: проверка сочла изображение возможно откровенным.",
    "content.spoilered_unchecked": "Показано под спойлером: проверку не удалось выполнить.",
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
    "cmd.imagine_this": "Нарисовать это",
    "cmd.help": "Что умеет бот и какие у вас лимиты на этом сервере",
    "cmd.preferences": "Ваши собственные настройки изображений, везде",
    "cmd.preferences.set": "Задать свои настройки (важнее настроек канала и сервера)",
    "cmd.preferences.show": "Показать свои настройки",
    "cmd.preferences.reset": "Забыть свои настройки",
    "cmd.preferences.set.model": "Ваша модель по умолчанию",
    "cmd.preferences.set.sampler": "Ваш сэмплер по умолчанию",
    "cmd.preferences.set.steps": "Ваше число шагов по умолчанию (1–25)",
    "cmd.preferences.set.cfg": "Ваш CFG по умолчанию (0–20)",
    "cmd.preferences.set.negative_prompt": "Ваш негативный промпт по умолчанию (пусто: нет)",
    "cmd.preferences.set.aspect_ratio": "Ваше соотношение сторон по умолчанию",
    "cmd.preferences.set.style": "Ваш стиль по умолчанию (нет: сбросить)",
    "preferences.saved": "Сохранено. Ваши настройки (то, что вы вводите, всё равно важнее):",
    "preferences.show": "Ваши настройки (важнее введённое вами; затем эти, канала, сервера):",
    "preferences.reset": "Ваши настройки забыты: снова действуют настройки канала и сервера.",
    "defaults.not_set": "не задано",
    "cmd.settings.set.channel": "Задать эти настройки изображений для одного канала, а не для сервера",
    "cmd.settings.show.channel": "Показать настройки изображений одного канала",
    "cmd.settings.reset.channel": "Забыть настройки изображений одного канала",
    "settings.channel_saved": "Сохранено. Настройки изображений {channel} (важнее серверных, слабее личных):",
    "settings.channel_show": "Настройки изображений {channel} (важнее серверных, слабее личных):",
    "settings.channel_reset": "Настройки изображений {channel} забыты: там снова действуют серверные.",
    "input.channel_defaults_only": (
        "У канала бывают только настройки изображений (модель, сэмплер, шаги, CFG, негативный промпт, соотношение "
        "сторон, стиль); остальные настройки — серверные."
    ),
    "help.title": "Imagine: что можно сделать",
    "help.commands": (
        "`/imagine prompt` создаёт изображение. Параметры: `negative_prompt`, `model`, `steps`, `cfg`, `seed`, "
        "`sampler`, `aspect_ratio`, `style`, `count` (до 4 изображений сразу), а также `image` (картинка, с которой "
        "начать) и `strength`.\n"
        "**Нарисовать это** в меню *Приложения* сообщения создаёт изображение по его тексту.\n"
        "`/models` показывает модели; `/settings` (право «Управлять сервером») задаёт настройки и модерацию сервера."
    ),
    "help.limits": "Ваши лимиты здесь",
    "help.per_user": (
        "{jobs} {jobs:изображение|изображения|изображений} одновременно и {cooldown} с между двумя запросами."
    ),
    "help.cap.guild": "Этот сервер: {limit} в день, осталось сегодня {left} (UTC).",
    "help.cap.dm": "В личных сообщениях: {limit} в день, осталось сегодня {left} (UTC).",
    "help.cap.user": "Вы, везде: {limit} в день, осталось сегодня {left} (UTC).",
    "help.no_cap": "Дневного лимита здесь нет.",
    "help.limits_unknown": "Сейчас не удаётся узнать сегодняшние счётчики.",
    "help.results": "Под результатом",
    "help.actions": (
        "🔄 заново (или реакция 🔄) · ✏️ изменить описание · 🎨 вариация · ⬆️ увеличить в 2× · 🗑️ удалить. "
        "✖️ под прогрессом отменяет. Кто может генерировать заново, изменять, варьировать и увеличивать: {who}; "
        "удалять: автор или модератор."
    ),
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
    "cmd.settings.set.language": "Язык хода работы, результатов и ошибок, которые бот публикует в каналах",
    "cmd.models": "Список моделей, доступных в /imagine",
    "cmd.models.search": "Только модели, подходящие под этот текст (имена и короткие имена)",
    "cmd.models.page": "Какую страницу показать",
    "cmd.settings.show": "Показать настройки сервера по умолчанию",
    "cmd.settings.reset": "Вернуть встроенные настройки по умолчанию и язык (настройки модерации сохранятся)",
    "choice.reroll.requester": "Только автор запроса",
    "choice.reroll.anyone": "Любой участник",
    "choice.language.auto": "Автоматически: язык сервера в Discord, иначе английский",
    "language.name": "Русский",
}

# Keys are language codes: a Discord locale ("ru", "en-US", "pt-BR") is looked up by its part before the dash.
CATALOGUES: dict[str, dict[str, str]] = {"en": EN, "ru": RU}

# CLDR cardinal plural categories of each language, in the order its sentences list their word forms.
PLURAL_CATEGORIES: dict[str, tuple[str, ...]] = {"en": ("one", "other"), "ru": ("one", "few", "many", "other")}
# A category a sentence may leave out, and the form it takes instead: Russian fractions ("other": 1,5 изображения)
# take the genitive singular, which is the "few" form.
_PLURAL_FALLBACK: dict[str, dict[str, str]] = {"ru": {"other": "few"}}


def plural_category(language: str, number: object) -> str:
    """The CLDR cardinal plural category of `number` in `language`: "one", "few", "many" or "other".

    https://unicode.org/cldr/charts/latest/supplemental/language_plural_rules.html; a value that is no number,
    and any language without rules here, is "other"."""
    try:
        value = abs(Decimal(str(number)))
    except (InvalidOperation, ValueError):
        return "other"
    if not value.is_finite():
        return "other"
    i = int(value)  # the integer digits
    exponent = value.as_tuple().exponent
    v = max(0, -exponent) if isinstance(exponent, int) else 0  # the number of visible fraction digits
    if language == "en":
        return "one" if i == 1 and v == 0 else "other"
    if language == "ru":
        if v:
            return "other"
        if i % 10 == 1 and i % 100 != 11:
            return "one"
        if 2 <= i % 10 <= 4 and not 12 <= i % 100 <= 14:
            return "few"
        return "many"
    return "other"


class _CatalogueFormatter(string.Formatter):
    """str.format, plus word forms chosen by a count: a format spec with "|" lists them (see the module doc)."""

    def __init__(self, language: str) -> None:
        self.language = language

    def format_field(self, value: Any, format_spec: str) -> str:
        if "|" not in format_spec:
            return super().format_field(value, format_spec)
        forms = format_spec.split("|")
        categories = PLURAL_CATEGORIES.get(self.language, ("other",))
        category = plural_category(self.language, value)
        if categories.index(category) >= len(forms):
            category = _PLURAL_FALLBACK.get(self.language, {}).get(category, categories[-1])
        return forms[min(categories.index(category), len(forms) - 1)]


def language_of(locale: str | None) -> str:
    """The catalogue language of a Discord locale ("ru", "en-US", "pt-BR"): its part before the dash if the bot
    speaks it, else English."""
    language = (locale or "en").split("-")[0].lower()
    return language if language in CATALOGUES else "en"


def server_language(chosen: str | None, preferred_locale: str | None) -> str:
    """The language of a server's public messages: the one chosen in /settings, else the server's preferred
    locale (only Community servers can set it: every other server reports en-US), else English."""
    return chosen if chosen in CATALOGUES else language_of(preferred_locale)


def language_name(language: str) -> str:
    """A language's own name ("English", "Русский")."""
    return CATALOGUES[language_of(language)]["language.name"]


def fill(template: str, language: str, /, **params: Any) -> str:
    """`template` with `params` filled in, word forms chosen for `language`'s plural rules."""
    return _CatalogueFormatter(language).format(template, **params)


def text(key: str, locale: str | None = None, **params: Any) -> str:
    """The sentence for `key` in `locale` (e.g. "ru", "en-US"), falling back to English."""
    language = language_of(locale)
    template = CATALOGUES[language].get(key)
    if template is None:
        language, template = "en", EN.get(key)
    if template is None:
        log.error("Message key %r is missing", key)
        template = EN["error.unexpected"]
    try:
        return fill(template, language, **params)
    except (KeyError, IndexError, ValueError):
        log.error("Message key %r lacks a parameter; got %s", key, sorted(params))
        return template


def error_text(error: BaseException, locale: str | None = None) -> str:
    """What a user is told about `error`: catalogue text only, never the exception's own detail."""
    if isinstance(error, ImagineError):
        return text(error.key, locale, **error.params)
    return text("error.unexpected", locale)
