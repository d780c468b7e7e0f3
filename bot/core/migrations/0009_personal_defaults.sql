-- Image defaults below a server's: a user's own (`/preferences`, everywhere) and a channel's (`/settings set
-- channel:`). NULL: not set there. Resolution: typed > the user's > the channel's > the server's > built-in.
CREATE TABLE user_preferences (
    user_id BIGINT PRIMARY KEY,
    model TEXT,
    sampler TEXT,
    steps INTEGER,
    cfg DOUBLE PRECISION,
    negative_prompt TEXT,
    aspect_ratio TEXT,
    style TEXT
);

CREATE TABLE channel_defaults (
    channel_id BIGINT PRIMARY KEY,
    guild_id BIGINT NOT NULL,
    model TEXT,
    sampler TEXT,
    steps INTEGER,
    cfg DOUBLE PRECISION,
    negative_prompt TEXT,
    aspect_ratio TEXT,
    style TEXT
);
CREATE INDEX channel_defaults_guild ON channel_defaults (guild_id);
