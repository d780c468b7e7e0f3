"""Logging, set up once by the entry point: plain lines or JSON lines, made safe.

Plain lines are discord.py's format, `[time] [LEVEL   ] logger: message`, without colour codes. Text from
outside (prompts, names, Prodia's answers) cannot forge or hide a line: control characters in the message
are shown as escapes (`\\n`, `\\x1b`), and so are those in an exception's own text; a traceback keeps its
line breaks. JSON lines carry `time`, `level`, `logger`, `message`, the job's fields when the line is about
a job (`job`), and `exception`. Secrets are scrubbed from messages and tracebacks alike.
"""

from __future__ import annotations

import json
import logging
import re
import time
import traceback
from collections.abc import Iterator
from types import TracebackType
from typing import Any, TypeAlias

import discord

from .core.config import Settings

ExcInfo: TypeAlias = tuple[type[BaseException], BaseException, TracebackType | None]

# C0 and C1 controls, DEL, the Unicode line and paragraph separators, and the bidirectional overrides
# and isolates (which reorder what a terminal shows).
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
# What json.dumps(ensure_ascii=False) leaves raw but a terminal or a line splitter may act on.
_RAW_IN_JSON = re.compile("[\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
_NAMED_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}
PLAIN_FORMAT = "[{asctime}] [{levelname:<8}] {name}: {message}"  # discord.py's, without its colours
PLAIN_TIME_FORMAT = "%Y-%m-%d %H:%M:%S"


def escape(text: str) -> str:
    """`text` with every control character shown as an escape: `\\n`, `\\r`, `\\t`, `\\x1b`, `\\u2028`."""
    return _CONTROL.sub(_escaped, text)


def _escaped(match: re.Match[str]) -> str:
    char = match.group()
    code = ord(char)
    return _NAMED_ESCAPES.get(char) or (f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}")


def format_traceback(exc_info: ExcInfo) -> str:
    """The traceback as logging prints it, each exception's own text (message, notes) escaped."""
    exception = traceback.TracebackException(*exc_info)
    for each in _chain(exception):
        text = getattr(each, "_str", None)  # what format() prints after "ValueError: " (3.11 to 3.13)
        if isinstance(text, str):
            each._str = escape(text)  # type: ignore[attr-defined]
        notes = getattr(each, "__notes__", None)
        if isinstance(notes, list):
            each.__notes__ = [escape(str(note)) for note in notes]
    return "".join(exception.format()).rstrip("\n")


def _chain(exception: traceback.TracebackException) -> Iterator[traceback.TracebackException]:
    """`exception`, its causes and contexts, and the members of exception groups, each once."""
    seen: set[int] = set()
    pending = [exception]
    while pending:
        each = pending.pop()
        if id(each) in seen:
            continue
        seen.add(id(each))
        yield each
        pending += [e for e in (each.__cause__, each.__context__) if e is not None]
        pending += getattr(each, "exceptions", None) or []


class PlainFormatter(logging.Formatter):
    """`[time] [LEVEL   ] logger: message`, each record on one line but for its traceback."""

    def __init__(self) -> None:
        super().__init__(PLAIN_FORMAT, PLAIN_TIME_FORMAT, style="{")

    def formatMessage(self, record: logging.LogRecord) -> str:
        record.message = escape(record.message)  # format() sets it afresh from msg and args each time
        return super().formatMessage(record)

    def formatException(self, ei: Any) -> str:
        return format_traceback(ei)


class JsonFormatter(logging.Formatter):
    """One JSON object per line, for log collectors: time, level, logger, message, job, exception."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        job = getattr(record, "job", None)
        if isinstance(job, dict):  # the pipeline's one line per job: its id, outcome, model, seconds, price
            entry["job"] = job
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            entry["exception"] = record.exc_text
        line = json.dumps(entry, ensure_ascii=False, default=str)  # escapes \n, \r, ESC and the other C0s
        return _RAW_IN_JSON.sub(lambda match: f"\\u{ord(match.group()):04x}", line)

    def formatException(self, ei: Any) -> str:
        return format_traceback(ei)


# Discord's webhook and interaction tokens: in URL paths (discord.py logs every request's URL at DEBUG) and as
# the `token` field of an interaction's payload (its gateway logs every event at DEBUG). Each token lets anyone
# post as the bot in that channel for 15 minutes.
_WEBHOOK_TOKEN = re.compile(r"(/(?:webhooks|interactions)/\d+/)[^/\s?#'\"]+")
_TOKEN_FIELD = re.compile(r"""(["']token["']\s*:\s*["'])[^"']+""")
REDACTED = "<redacted>"


class SecretFilter(logging.Filter):
    """Defence in depth: no code logs a secret, and this replaces any that slips into a line anyway,
    in the message, a job's fields, the traceback or the stack: the bot's own secrets, and at every
    level any webhook or interaction token."""

    def __init__(self, secrets: list[str]) -> None:
        super().__init__()
        self.secrets = [secret for secret in secrets if len(secret) >= 6]

    def scrub(self, text: str) -> str:
        for secret in self.secrets:
            text = text.replace(secret, "[secret]")
        text = _WEBHOOK_TOKEN.sub(rf"\1{REDACTED}", text)
        return _TOKEN_FIELD.sub(rf"\1{REDACTED}", text)

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()  # the arguments merged in, so a token in one is caught too
        if (scrubbed := self.scrub(message)) != message:
            record.msg, record.args = scrubbed, ()
        job = getattr(record, "job", None)
        if isinstance(job, dict):
            record.job = {name: self.scrub(v) if isinstance(v, str) else v for name, v in job.items()}
        if record.exc_info and not record.exc_text:  # the formatters then print this text as it is
            record.exc_text = format_traceback(record.exc_info)  # type: ignore[arg-type]
        if record.exc_text:
            record.exc_text = self.scrub(record.exc_text)
        if record.stack_info:
            record.stack_info = self.scrub(record.stack_info)
        return True


def setup_logging(settings: Settings) -> None:
    level = getattr(logging, settings.log_level)
    formatter = JsonFormatter() if settings.log_json else PlainFormatter()
    discord.utils.setup_logging(level=level, formatter=formatter, root=True)
    # aiosqlite's DEBUG lines repeat every query with its arguments: interaction tokens and prompts among them.
    logging.getLogger("aiosqlite").setLevel(max(level, logging.INFO))
    secrets = [s.reveal() for s in (settings.discord_token, settings.prodia_api_key) if s is not None]
    for handler in logging.getLogger().handlers:
        handler.addFilter(SecretFilter(secrets))
