-- Up Migration
-- What a directory job's listing skipped (counts by reason and the first paths), and the demo pool's
-- rows tagged {"demo": true} so one call removes them all. The demo images are the items of the job
-- recorded in meta under demo_pool_job; the demo texts were stored with metadata {"label": <text>}
-- and encoded through the model's template, so they also get a key of their own ('demo:' || sha256)
-- and stop shadowing a user's plain text of the same words (as the SQLite schema step 2 → 3 does).
ALTER TABLE jobs ADD COLUMN skipped jsonb NOT NULL DEFAULT '{"notImage":0,"unreadable":0,"paths":[]}';

UPDATE images SET metadata = metadata || '{"demo": true}'
  WHERE id IN (SELECT item ->> 'id' FROM job_items
               WHERE job_id = (SELECT value FROM meta WHERE key = 'demo_pool_job'));
UPDATE texts SET metadata = metadata || '{"demo": true}', sha256 = 'demo:' || sha256
  WHERE metadata ->> 'label' = text
    AND EXISTS (SELECT 1 FROM meta WHERE key = 'demo_pool_job');

-- Down Migration
ALTER TABLE jobs DROP COLUMN skipped;
