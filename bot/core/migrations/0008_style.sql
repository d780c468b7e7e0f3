-- A server's default style preset (`/settings set style`); NULL: none.
ALTER TABLE guild_settings ADD COLUMN style TEXT;
