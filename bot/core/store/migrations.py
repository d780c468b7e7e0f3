"""The schema's migration scripts, `bot/core/migrations/NNNN_name.sql` (package data of `bot.core`), shared
by both backends; `Store._migrate` applies the missing ones."""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterator
from importlib.resources import files

_SCRIPTS_PACKAGE = "bot.core"  # the scripts' folder, `migrations/`, is its package data (see pyproject)


def _migrations() -> list[tuple[int, str]]:
    """The packaged `migrations/NNNN_name.sql` files as (version, script), in order."""
    found = []
    for entry in (files(_SCRIPTS_PACKAGE) / "migrations").iterdir():
        match = re.fullmatch(r"(\d+)_\w+\.sql", entry.name)
        if match:
            found.append((int(match[1]), entry.read_text(encoding="utf-8")))
    return sorted(found)


def _statements(script: str) -> Iterator[str]:
    """Split a script into statements, since both drivers prepare one at a time."""
    statement = ""
    for line in script.splitlines(keepends=True):
        statement += line
        if sqlite3.complete_statement(statement):
            yield statement.strip()
            statement = ""
    if re.sub(r"--.*", "", statement).strip():
        raise ValueError(f"migration has text after its last ';': {statement.strip()[:80]!r}")
