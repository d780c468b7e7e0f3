-- Sweeps read only the unfinished jobs, through this partial index, however many finished ones the journal keeps
-- (its WHERE is written exactly as the sweeps' queries write theirs, so SQLite's planner matches the two).
CREATE INDEX jobs_unfinished ON jobs (created_at, id) WHERE state NOT IN ('delivered', 'failed');
-- Retention deletes results by age.
CREATE INDEX results_created ON results (created_at);
-- A finished job's interaction token is of no more use (they are now forgotten when a job ends): forget the old ones.
UPDATE jobs SET interaction_token = NULL WHERE state IN ('delivered', 'failed');
