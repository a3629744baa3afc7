-- Up Migration
-- Staged uploads are written as they arrive, in chunks (one row each, numbered from 0), so the API
-- never holds a request's files in memory. A file staged before this step is one row: it becomes
-- chunk 0, in place. Images are already compressed: EXTERNAL stores new chunks out of line without
-- the TOAST compressor's wasted try.
ALTER TABLE staged_uploads ADD COLUMN chunk integer NOT NULL DEFAULT 0;
ALTER TABLE staged_uploads DROP CONSTRAINT staged_uploads_pkey;
ALTER TABLE staged_uploads ADD PRIMARY KEY (job_id, path, chunk);
ALTER TABLE staged_uploads ALTER COLUMN bytes SET STORAGE EXTERNAL;

-- Down Migration
-- a file in several chunks cannot be one row again: it goes (its item then fails "staged upload missing")
DELETE FROM staged_uploads s
  WHERE EXISTS (SELECT 1 FROM staged_uploads c WHERE c.job_id = s.job_id AND c.path = s.path AND c.chunk > 0);
ALTER TABLE staged_uploads ALTER COLUMN bytes SET STORAGE EXTENDED;
ALTER TABLE staged_uploads DROP CONSTRAINT staged_uploads_pkey;
ALTER TABLE staged_uploads ADD PRIMARY KEY (job_id, path);
ALTER TABLE staged_uploads DROP COLUMN chunk;
