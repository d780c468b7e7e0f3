-- Portable between SQLite and PostgreSQL: BIGINT Discord ids, TEXT JSON, DOUBLE PRECISION unix seconds.

CREATE TABLE meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

-- NULL in any column means "use the built-in default".
CREATE TABLE guild_settings (
    guild_id BIGINT PRIMARY KEY,
    model TEXT,
    sampler TEXT,
    steps INTEGER,
    cfg DOUBLE PRECISION,
    negative_prompt TEXT,
    aspect_ratio TEXT,
    reroll TEXT,
    blocked_words TEXT,
    daily_cap INTEGER,
    locale TEXT
);

CREATE TABLE results (
    message_id BIGINT PRIMARY KEY,
    guild_id BIGINT,
    channel_id BIGINT NOT NULL,
    user_id BIGINT NOT NULL,
    request TEXT NOT NULL,
    created_at DOUBLE PRECISION NOT NULL
);

CREATE TABLE jobs (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    guild_id BIGINT,
    channel_id BIGINT NOT NULL,
    user_id BIGINT NOT NULL,
    request TEXT NOT NULL,
    state TEXT NOT NULL,
    interaction_token TEXT,
    application_id BIGINT,
    interaction_created_at DOUBLE PRECISION,
    message_id BIGINT,
    reply_to BIGINT,
    prodia_job_id TEXT,
    error TEXT,
    created_at DOUBLE PRECISION NOT NULL,
    updated_at DOUBLE PRECISION NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    lease_owner TEXT,
    lease_until DOUBLE PRECISION
);

-- Resuming scans unfinished jobs; the daily cap counts a guild's recent jobs.
CREATE INDEX jobs_state_created ON jobs (state, created_at);
CREATE INDEX jobs_guild_created ON jobs (guild_id, created_at);
