-- The language of a job's public messages ("en", "ru"), fixed when the job is accepted: a resumed job speaks it,
-- and so does a reroll of its result in a DM (where it is the requester's). NULL in rows from before.
ALTER TABLE jobs ADD COLUMN locale TEXT;
ALTER TABLE results ADD COLUMN locale TEXT;
