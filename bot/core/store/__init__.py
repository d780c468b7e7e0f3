"""The bot's storage: one `Store` interface over SQLite (the default) or PostgreSQL (for several processes).

It knows nothing of Discord: ids are plain ints. Every query is written once with `?` placeholders;
the PostgreSQL backend renumbers them to `$1, $2, ...`. The schema lives in `bot/core/migrations/NNNN_*.sql`,
shared by both backends.

Modules: `records` (the dataclasses and their row encoding), `base` (the abstract `Store`), `journal` (its
job-journal queries), `limits` (its admission-limit queries), `sqlite` and `postgres` (the backends), `migrations`
(the schema scripts) and `connect` (`open_store`). Import from this package, not from them.
"""

from .base import Query, Store
from .connect import open_store
from .limits import CapScope, Claim, Usage
from .postgres import PostgresStore
from .records import DEFAULT_FIELDS, REROLL_MODES, Defaults, GuildSettings, JobRecord, ResultRecord, Row, StoreError
from .sqlite import SQLiteStore

__all__ = [
    "DEFAULT_FIELDS",
    "REROLL_MODES",
    "CapScope",
    "Claim",
    "Defaults",
    "GuildSettings",
    "JobRecord",
    "PostgresStore",
    "Query",
    "ResultRecord",
    "Row",
    "SQLiteStore",
    "Store",
    "StoreError",
    "Usage",
    "open_store",
]
