-- Up Migration
-- Files of multipart index-job uploads, staged where every worker process can read them (cluster
-- mode: the API that received the upload is rarely the process that indexes it). Rows go when the
-- job finishes. No foreign key to jobs: the files are written before the job row, so that a job
-- never becomes visible to a worker without its files; orphans of a crash in between are swept
-- by age (see pg-staging.ts).

CREATE TABLE staged_uploads (
  job_id    text NOT NULL,
  path      text NOT NULL,
  bytes     bytea NOT NULL,
  staged_at timestamptz NOT NULL DEFAULT clock_timestamp(),
  PRIMARY KEY (job_id, path)
);

-- Down Migration
DROP TABLE staged_uploads;
