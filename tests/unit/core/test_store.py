"""The store on both backends (the `store` fixture is parametrized over SQLite and PostgreSQL)."""

import asyncio
import time
import uuid
from dataclasses import replace
from pathlib import Path

import aiosqlite
import pytest

from bot.core.store import GuildSettings, JobRecord, ResultRecord, Store, StoreError, base, journal, open_store
from bot.core.store.journal import UNFINISHED_JOBS
from bot.core.store.migrations import _migrations
from tests.plugins.databases import StoreTarget

MIGRATIONS = [version for version, _ in _migrations()]  # every packaged one: 1, 2, 3, ...
REQUEST = {"prompt": "a red fox", "model": "m", "steps": 25, "cfg": 7.0, "seed": 42, "sampler": "Euler"}


class SteppedClock:
    """The store's clocks (monotonic for the settings cache, wall-clock for leases), moved by the test alone."""

    def __init__(self) -> None:
        self.now = 1_000_000.0

    def monotonic(self) -> float:
        return self.now

    def time(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> SteppedClock:
    clock = SteppedClock()
    for module in (base, journal):
        monkeypatch.setattr(module, "time", clock)
    return clock


def make_job(created_at: float = 1000.0, guild_id: int | None = 10, **changes) -> JobRecord:
    job = JobRecord(
        id=uuid.uuid4().hex,
        kind="imagine",
        guild_id=guild_id,
        channel_id=20,
        user_id=30,
        request=REQUEST,
        state="accepted",
        interaction_token="secret-token-value",
        application_id=40,
        interaction_created_at=created_at,
        message_id=None,
        reply_to=None,
        prodia_job_id=None,
        error=None,
        created_at=created_at,
        updated_at=created_at,
    )
    return replace(job, **changes)


async def versions(store: Store) -> list[int]:
    return [row["version"] for row in await store._query("SELECT version FROM schema_migrations ORDER BY version")]


async def test_migrations_apply_once(store_target: StoreTarget) -> None:
    # Two "processes" starting at once, then a restart: each migration is applied and recorded once.
    first, second = await asyncio.gather(store_target.open(), store_target.open())
    third = await store_target.open()
    assert await versions(first) == await versions(second) == await versions(third) == MIGRATIONS


async def test_job_price_is_journaled(store: Store) -> None:
    await store.add_job(make_job(id="priced"))
    await store.update_job("priced", state="generated", price=0.0025)
    assert (await store.get_job("priced")).price == 0.0025


async def test_a_jobs_language_is_journaled_and_its_results_keep_it(store: Store) -> None:
    await store.add_job(make_job(1000.0, id="russian", locale="ru"))
    await store.add_job(make_job(2000.0, id="older"))  # journaled before languages were kept
    assert [(await store.get_job(id)).locale for id in ("russian", "older")] == ["ru", None]
    assert [job.locale for job in await store.unfinished_jobs()] == ["ru", None]
    record = ResultRecord(message_id=1, guild_id=None, channel_id=5, user_id=6, request=REQUEST, created_at=1.5)
    await store.save_result(replace(record, locale="ru"))
    assert (await store.get_result(1)).locale == "ru"


async def test_processes_creating_one_sqlite_file_at_once_all_start(tmp_path) -> None:
    # Switching a new file to WAL can fail at once with "database is locked" while another process does the
    # same (no busy wait for it): before the retry about 6 % of such opens failed.
    for attempt in range(20):
        url = f"sqlite:///{tmp_path}/race{attempt}.sqlite3"
        stores = await asyncio.gather(*(open_store(url) for _ in range(3)))
        assert [await versions(store) for store in stores] == [MIGRATIONS] * 3
        for store in stores:
            await store.close()


async def test_meta(store: Store) -> None:
    assert await store.get_meta("tree") is None
    await store.set_meta("tree", "abc")
    await store.set_meta("tree", "def")
    assert await store.get_meta("tree") == "def"


async def test_guild_settings(store: Store) -> None:
    assert await store.guild_settings(1) == GuildSettings()
    settings = await store.update_guild_settings(1, model="sdxl", steps=30, cfg=6.5, blocked_words=("a", "b"))
    assert settings == GuildSettings(model="sdxl", steps=30, cfg=6.5, blocked_words=("a", "b"))
    settings = await store.update_guild_settings(1, reroll="anyone", steps=None, blocked_words=())
    assert settings == GuildSettings(model="sdxl", cfg=6.5, reroll="anyone")
    assert await store.update_guild_settings(1, reroll=None, daily_cap=5) == replace(
        settings, reroll="requester", daily_cap=5
    )
    assert await store.guild_settings(2) == GuildSettings()
    await store.reset_guild_settings(1)
    assert await store.guild_settings(1) == GuildSettings()


async def test_guild_settings_rejects_bad_changes(store: Store) -> None:
    with pytest.raises(TypeError, match="colour"):
        await store.update_guild_settings(1, colour="red")
    with pytest.raises(ValueError):
        await store.update_guild_settings(1, reroll="nobody")
    assert await store.guild_settings(1) == GuildSettings()


async def test_settings_cache(store_target: StoreTarget, clock: SteppedClock) -> None:
    mine, other = await store_target.open(), await store_target.open(cache_ttl=60)
    assert await other.guild_settings(1) == GuildSettings()
    await mine.update_guild_settings(1, model="a")
    assert (await mine.guild_settings(1)).model == "a"  # own write invalidates
    assert (await other.guild_settings(1)).model is None  # another process's write: cached until the TTL
    clock.advance(61)
    assert (await other.guild_settings(1)).model == "a"
    await other.reset_guild_settings(1)
    assert await other.guild_settings(1) == GuildSettings()


async def test_stale_settings_answer_at_once_and_refresh_behind(store_target: StoreTarget, clock: SteppedClock) -> None:
    mine, other = await store_target.open(), await store_target.open(cache_ttl=60)
    await other.guild_settings(1)
    await mine.update_guild_settings(1, model="a")
    clock.advance(61)  # other's entry has expired
    assert (await other.guild_settings(1, allow_stale=True)).model is None  # the old value, without waiting
    await asyncio.gather(*other._refreshing.values())  # the refresh it started, in the background
    assert (await other.guild_settings(1, allow_stale=True)).model == "a"


async def test_results(store: Store) -> None:
    record = ResultRecord(message_id=2**62, guild_id=None, channel_id=5, user_id=6, request=REQUEST, created_at=1.5)
    assert await store.get_result(record.message_id) is None
    await store.save_result(record)
    assert await store.get_result(record.message_id) == record
    updated = replace(record, guild_id=7, request={**REQUEST, "seed": 1})
    await store.save_result(updated)
    assert await store.get_result(record.message_id) == updated


async def test_jobs(store: Store) -> None:
    job = make_job()
    await store.add_job(job)
    assert await store.get_job(job.id) == job
    assert await store.get_job("missing") is None
    await store.update_job(job.id, state="submitted", prodia_job_id="p1", attempts=1, request={"prompt": "x"})
    stored = await store.get_job(job.id)
    assert stored == replace(
        job, state="submitted", prodia_job_id="p1", attempts=1, request={"prompt": "x"}, updated_at=stored.updated_at
    )
    assert stored.updated_at > job.updated_at
    with pytest.raises(TypeError, match="nonsense"):
        await store.update_job(job.id, nonsense=1)
    with pytest.raises(TypeError, match="id"):
        await store.update_job(job.id, id="other")


async def test_unfinished_jobs(store: Store) -> None:
    newer, older, dm = make_job(3000.0), make_job(1000.0, guild_id=11), make_job(2000.0, guild_id=None)
    done, failed = make_job(500.0, state="delivered"), make_job(600.0, state="failed")
    for job in (newer, older, dm, done, failed):
        await store.add_job(job)
    assert [j.id for j in await store.unfinished_jobs()] == [older.id, dm.id, newer.id]
    assert [j.id for j in await store.unfinished_jobs([10])] == [dm.id, newer.id]
    assert [j.id for j in await store.unfinished_jobs({10}, include_dms=False)] == [newer.id]
    assert [j.id for j in await store.unfinished_jobs([], include_dms=True)] == [dm.id]
    assert [j.id for j in await store.unfinished_jobs(include_dms=False)] == [older.id, newer.id]


async def test_a_finished_job_forgets_its_interaction_token(store: Store) -> None:
    for name in ("delivered", "failed", "generated"):
        await store.add_job(make_job(id=name))
        await store.update_job(name, state=name)
    assert [(await store.get_job(name)).interaction_token for name in ("delivered", "failed", "generated")] == [
        None,
        None,
        "secret-token-value",  # still running: its reply may still be edited through it
    ]


async def test_expired_interaction_tokens_are_forgotten_in_one_update(store: Store) -> None:
    now = time.time()
    await store.add_job(make_job(now - 16 * 60, id="expired"))
    await store.add_job(make_job(now - 60, id="alive"))
    assert await store.forget_interaction_tokens(now - 15 * 60) == 1
    assert (await store.get_job("expired")).interaction_token is None
    assert (await store.get_job("alive")).interaction_token == "secret-token-value"


async def test_purges_delete_finished_jobs_and_results_past_the_cutoff_in_batches(store: Store) -> None:
    for name, created_at, state in [("old-1", 100.0, "delivered"), ("old-2", 200.0, "failed"),
                                    ("old-running", 300.0, "submitted"), ("new", 2000.0, "delivered")]:  # fmt: skip
        await store.add_job(make_job(created_at, id=name, state=state))
    for message_id, created_at in [(1, 100.0), (2, 200.0), (3, 2000.0)]:
        await store.save_result(ResultRecord(message_id, 10, 20, 30, REQUEST, created_at))

    assert [await store.purge_jobs(1000.0, limit=1) for _ in range(3)] == [1, 1, 0]
    assert [await store.purge_results(1000.0, limit=5) for _ in range(2)] == [2, 0]

    remaining = {row["id"] for row in await store._query("SELECT id FROM jobs")}
    assert remaining == {"old-running", "new"}  # an unfinished job is resumed, never purged
    assert [await store.get_result(m) is None for m in (1, 2, 3)] == [True, True, False]


async def test_unfinished_jobs_are_read_through_their_partial_index(store: Store) -> None:
    for n in range(50):
        await store.add_job(make_job(float(n), state="delivered" if n % 10 else "accepted"))
    if store.backend == "sqlite":
        plan = [row["detail"] for row in await store._query(f"EXPLAIN QUERY PLAN {UNFINISHED_JOBS}")]
        assert plan == ["SCAN jobs USING INDEX jobs_unfinished"]  # not the whole table, and already in order
    else:
        async with store._transaction() as query:
            await query("SET LOCAL enable_seqscan = off")  # a table this small is read whole whatever the indexes
            plan = [row["QUERY PLAN"] for row in await query(f"EXPLAIN {UNFINISHED_JOBS}")]
        assert any("Index Scan on jobs_unfinished" in line for line in plan), plan
    assert len(await store.unfinished_jobs()) == 5


async def test_sqlite_leaves_no_forgotten_token_on_disk_whatever_its_build_default(tmp_path, monkeypatch) -> None:
    connect = aiosqlite.connect

    async def secure_delete_off(*args, **kwargs):  # as SQLite builds without SQLITE_SECURE_DELETE open a file
        db = await connect(*args, **kwargs)
        await db.execute("PRAGMA secure_delete = OFF")
        return db

    monkeypatch.setattr(aiosqlite, "connect", secure_delete_off)
    path = tmp_path / "bot.sqlite3"
    store = await open_store(f"sqlite:///{path}")
    try:
        for n in range(20):
            await store.add_job(make_job(id=f"job-{n}", interaction_token=f"token-CANARY-{n:04d}"))
        await store.checkpoint()
        for n in range(20):
            await store.update_job(f"job-{n}", state="delivered")
        await store.checkpoint()
        files = b"".join(f.read_bytes() for f in tmp_path.iterdir() if f.name.startswith("bot.sqlite3"))
        assert b"token-CANARY" not in files
    finally:
        await store.close()


async def test_claim_job_is_exclusive(store_target: StoreTarget, clock: SteppedClock) -> None:
    first, second = await store_target.open(), await store_target.open()
    job = make_job()
    await first.add_job(job)
    contenders = [first, second] * 3
    results = await asyncio.gather(*(s.claim_job(job.id, f"owner-{i}", lease=60) for i, s in enumerate(contenders)))
    assert sum(results) == 1
    winner = results.index(True)
    # The owner may renew; nobody else may take it meanwhile.
    clock.advance(59)
    assert await contenders[winner].claim_job(job.id, f"owner-{winner}", lease=60)
    clock.advance(59)
    assert not await first.claim_job(job.id, "other", lease=60)
    clock.advance(2)
    assert await second.claim_job(job.id, "late", lease=60)  # expired: anyone may take it
    assert not await first.claim_job(job.id, f"owner-{winner}", lease=60)
    await second.update_job(job.id, state="delivered")
    assert not await second.claim_job(job.id, "late", lease=60)  # finished jobs are not resumed
    assert not await second.claim_job("missing", "late", lease=60)


async def test_count_images_since(store: Store) -> None:
    for created_at, state, guild_id in [
        (100.0, "delivered", 1),
        (200.0, "delivered", 1),
        (300.0, "generated", 1),
        (300.0, "failed", 1),
        (300.0, "accepted", 1),
        (300.0, "delivered", 2),
    ]:
        await store.add_job(make_job(created_at, guild_id=guild_id, state=state))
    assert await store.count_images_since(1, 150.0) == 2
    assert await store.count_images_since(1, 0.0) == 3
    assert await store.count_images_since(3, 0.0) == 0


async def test_database_errors_are_store_errors(store: Store) -> None:
    job = make_job()
    await store.add_job(job)
    with pytest.raises(StoreError):
        await store.add_job(job)


def test_token_not_in_repr() -> None:
    assert "secret-token-value" not in repr(make_job())


async def test_unopenable_sqlite(tmp_path: Path) -> None:
    not_a_dir = tmp_path / "file"
    not_a_dir.write_text("not a database, not a directory " * 100)
    with pytest.raises(StoreError):
        await open_store(f"sqlite:///{not_a_dir}/db/bot.sqlite3")
    with pytest.raises(StoreError):
        await open_store(f"sqlite:///{not_a_dir}")  # not a database


async def test_unreachable_postgres() -> None:
    with pytest.raises(StoreError) as caught:
        await open_store("postgresql://bot:hunter2@127.0.0.1:1/test")
    assert "hunter2" not in str(caught.value)
    assert "127.0.0.1" in str(caught.value)


async def test_memory_and_relative_urls(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    for url in ("sqlite:///:memory:", "sqlite:///data/bot.sqlite3"):
        store = await open_store(url)
        await store.set_meta("k", "v")
        assert await store.get_meta("k") == "v"
        await store.close()
    assert (tmp_path / "data" / "bot.sqlite3").exists()
    with pytest.raises(ValueError):
        await open_store("mysql://x")


async def test_the_migration_lock_holds_one_schema_not_the_whole_database() -> None:
    # Bots (and test runs) in other schemas of one database start while a migration elsewhere holds its lock.
    import asyncpg

    from tests.plugins.databases import postgres_schema

    async with postgres_schema() as busy_url, postgres_schema() as other_url:
        busy = await open_store(busy_url)
        holder = await asyncpg.connect(busy_url)
        try:
            async with holder.transaction():
                await holder.execute(busy._migration_lock)  # a migration in progress there
                other = await open_store(f"{other_url}&lock_timeout=300")  # waits at most 0.3 s on a lock
                assert await versions(other) == MIGRATIONS
                await other.close()
                with pytest.raises(StoreError, match="lock timeout"):  # the same schema does wait for it
                    await open_store(f"{busy_url}&lock_timeout=300")
        finally:
            await holder.close()
            await busy.close()
