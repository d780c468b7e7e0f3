-- What Prodia charged for a job, in US dollars, where it said (v2 `?price=true`); NULL if unknown.
ALTER TABLE jobs ADD COLUMN price DOUBLE PRECISION;
