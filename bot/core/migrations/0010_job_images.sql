-- `count:` (1-4 images in one request): a job weighs its images under the daily caps and in flight.
ALTER TABLE jobs ADD COLUMN images INTEGER NOT NULL DEFAULT 1;
ALTER TABLE limit_reservations ADD COLUMN images INTEGER NOT NULL DEFAULT 1;
