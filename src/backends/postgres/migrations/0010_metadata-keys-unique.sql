-- Up Migration
-- One row per (key, row) in <table>_metadata_keys (migration 0006's triggers write each top-level key
-- once), declared: with a unique index on (key, id), PostgreSQL knows that `SELECT id FROM
-- <table>_metadata_keys WHERE key = $1 AND num …` yields each id once, so the filter's semi-join
-- `id IN (…)` becomes a plain join that streams from the (key, num) B-tree. Without it the planner
-- de-duplicated every id in the range first (a HashAggregate), so the search planner's count, meant
-- to read at most the cutoff + 1 matches, read all of them: 10,000 for a 50% range at 20k rows.
CREATE UNIQUE INDEX images_metadata_keys_key_id ON images_metadata_keys (key, id);
CREATE UNIQUE INDEX texts_metadata_keys_key_id ON texts_metadata_keys (key, id);

-- Down Migration
DROP INDEX images_metadata_keys_key_id;
DROP INDEX texts_metadata_keys_key_id;
