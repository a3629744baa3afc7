-- Up Migration
-- Index jobs that survive faults (issue 22):
--   - a job's item errors and duplicates are rows appended to job_notes, not jsonb arrays that
--     every batch commit rewrote on the busiest row (the WAL of up to 2,000 entries per batch);
--   - `attempt` numbers the job's runs: a resumed job's plan and batch messages get new ids, so
--     the queue does not take them for the spent messages of the failed run;
--   - `batch_size` is the size its planner split it by, so the sweep re-sends exactly the batches
--     whose messages the queue lost (their ids are derived from job, attempt and number);
--   - staged uploads carry their size, so the staging cap is a sum over a narrow column.

CREATE TABLE job_notes (
  job_id text NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
  n      bigint GENERATED ALWAYS AS IDENTITY,
  -- 'error': an item (or the job) failed, detail = why; 'duplicate': detail = the stored id it repeats
  kind   text NOT NULL CHECK (kind IN ('error', 'duplicate')),
  item   text NOT NULL,
  detail text NOT NULL,
  PRIMARY KEY (job_id, kind, n)
);

INSERT INTO job_notes (job_id, kind, item, detail)
SELECT j.id, 'error', e.v->>'item', e.v->>'error'
FROM jobs j, jsonb_array_elements(j.errors) WITH ORDINALITY AS e(v, o)
ORDER BY j.id, e.o;
INSERT INTO job_notes (job_id, kind, item, detail)
SELECT j.id, 'duplicate', d.v->>'item', d.v->>'id'
FROM jobs j, jsonb_array_elements(j.duplicates) WITH ORDINALITY AS d(v, o)
ORDER BY j.id, d.o;

ALTER TABLE jobs
  DROP COLUMN errors,
  DROP COLUMN duplicates,
  ADD COLUMN attempt integer NOT NULL DEFAULT 0,
  ADD COLUMN batch_size integer;

ALTER TABLE staged_uploads ADD COLUMN size bigint GENERATED ALWAYS AS (octet_length(bytes)) STORED;

-- Down Migration
ALTER TABLE staged_uploads DROP COLUMN size;
ALTER TABLE jobs
  DROP COLUMN batch_size,
  DROP COLUMN attempt,
  ADD COLUMN errors jsonb NOT NULL DEFAULT '[]',
  ADD COLUMN duplicates jsonb NOT NULL DEFAULT '[]';
UPDATE jobs j SET
  errors = COALESCE((SELECT jsonb_agg(jsonb_build_object('item', item, 'error', detail) ORDER BY n) FROM job_notes WHERE job_id = j.id AND kind = 'error'), '[]'),
  duplicates = COALESCE((SELECT jsonb_agg(jsonb_build_object('item', item, 'id', detail) ORDER BY n) FROM job_notes WHERE job_id = j.id AND kind = 'duplicate'), '[]');
DROP TABLE job_notes;
