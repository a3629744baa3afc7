-- Up Migration
-- Images keep where they came from (a path under IMPORT_DIR, or an uploaded file's name; null when
-- not recorded), and jobs count indexed and duplicate items apart (done = indexed + duplicate),
-- naming the stored id each duplicate repeats (bounded like errors).
ALTER TABLE images ADD COLUMN source text;

ALTER TABLE jobs
  ADD COLUMN indexed integer NOT NULL DEFAULT 0,
  ADD COLUMN duplicate integer NOT NULL DEFAULT 0,
  ADD COLUMN duplicates jsonb NOT NULL DEFAULT '[]';
-- jobs from before could not tell the two apart: their done items count as indexed
UPDATE jobs SET indexed = done;

-- Down Migration
ALTER TABLE jobs DROP COLUMN duplicates, DROP COLUMN duplicate, DROP COLUMN indexed;
ALTER TABLE images DROP COLUMN source;
