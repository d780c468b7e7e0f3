-- A server's policy for results that may be sexual (bot/core/content.py): in ordinary channels and DMs, and in
-- age-restricted channels. NULL: the default (block; allow).
ALTER TABLE guild_settings ADD COLUMN nsfw TEXT;
ALTER TABLE guild_settings ADD COLUMN nsfw_age_restricted TEXT;
