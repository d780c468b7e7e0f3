-- The image an /imagine job starts from (image-to-image): where Discord keeps the upload (a signed CDN URL), so
-- a job cut off by a restart can read it again. Cleared when the job ends, like the interaction token.
ALTER TABLE jobs ADD COLUMN input_url TEXT;
