-- Admission limits shared by every process on one database (PostgreSQL); a single SQLite process keeps them in
-- memory and leaves these two tables empty.

-- One row per admitted job until it ends: the user's place in flight, and its place under the daily caps until
-- its journal row counts instead. Leased to the process running the job; an expired row counts for nothing.
CREATE TABLE limit_reservations (
    job_id TEXT PRIMARY KEY,
    user_id BIGINT NOT NULL,
    guild_id BIGINT,
    owner TEXT NOT NULL,
    created_at DOUBLE PRECISION NOT NULL,
    lease_until DOUBLE PRECISION NOT NULL
);
CREATE INDEX limit_reservations_user ON limit_reservations (user_id);
CREATE INDEX limit_reservations_guild ON limit_reservations (guild_id);
CREATE INDEX limit_reservations_owner ON limit_reservations (owner);

-- MAX_CONCURRENT_JOBS places at Prodia per key (`pool`: a hash of the key), each free or leased to a process.
CREATE TABLE prodia_slots (
    pool TEXT NOT NULL,
    slot INTEGER NOT NULL,
    owner TEXT,
    lease_until DOUBLE PRECISION,
    PRIMARY KEY (pool, slot)
);

-- The per-user caps and the cooldown read a user's recent jobs.
CREATE INDEX jobs_user_created ON jobs (user_id, created_at);
