-- Up Migration
-- The first schema of the PostgreSQL backend (node-pg-migrate runs this once per database, under its
-- advisory lock, and records it in align_search_migrations).
--
-- The embedding columns are vector(D), and D is the model's dimension, which no file can know. The
-- opener (src/backends/postgres/migrate.ts) sets it on the migration's session as the custom setting
-- align_search.dim, and the DO block below reads it: one versioned file serves every model, and
-- the dimension never travels as spliced SQL text. The HNSW indexes are not here: their vector type,
-- M and ef_construction are settings, applied at each start by ensureHnswIndexes.

CREATE EXTENSION IF NOT EXISTS vector;

CREATE TABLE meta (
  key   text PRIMARY KEY,
  value text NOT NULL
);

DO $migration$
DECLARE
  dim int := nullif(current_setting('align_search.dim', true), '')::int;
BEGIN
  IF dim IS NULL OR dim < 1 THEN
    RAISE EXCEPTION 'align_search.dim is not set: this migration runs through openPostgresBackend, which sets the model''s dimension';
  END IF;

  EXECUTE format($ddl$
    CREATE TABLE images (
      id         text PRIMARY KEY,
      sha256     text NOT NULL UNIQUE,
      width      integer NOT NULL,
      height     integer NOT NULL,
      metadata   jsonb NOT NULL DEFAULT '{}',
      embedding  vector(%s) NOT NULL,
      thumbnail  bytea,
      created_at timestamptz NOT NULL DEFAULT clock_timestamp()
    )$ddl$, dim);

  EXECUTE format($ddl$
    CREATE TABLE texts (
      id         text PRIMARY KEY,
      text       text NOT NULL,
      sha256     text NOT NULL UNIQUE,
      metadata   jsonb NOT NULL DEFAULT '{}',
      embedding  vector(%s) NOT NULL,
      created_at timestamptz NOT NULL DEFAULT clock_timestamp()
    )$ddl$, dim);
END
$migration$;

-- jsonb_path_ops: smaller and faster than the default opclass, and @> is the only operator we use
CREATE INDEX images_metadata ON images USING gin (metadata jsonb_path_ops);
CREATE INDEX texts_metadata ON texts USING gin (metadata jsonb_path_ops);

CREATE TABLE jobs (
  id         text PRIMARY KEY,
  -- creation order among jobs created in the same microsecond (SQLite's rowid)
  seq        bigint GENERATED ALWAYS AS IDENTITY UNIQUE,
  kind       text NOT NULL,
  status     text NOT NULL,
  source     jsonb NOT NULL,
  root       text NOT NULL,
  cleanup    boolean NOT NULL DEFAULT false,
  expanded   boolean NOT NULL DEFAULT true,
  total      integer NOT NULL DEFAULT 0,
  done       integer NOT NULL DEFAULT 0,
  failed     integer NOT NULL DEFAULT 0,
  errors     jsonb NOT NULL DEFAULT '[]',
  created_at timestamptz NOT NULL DEFAULT clock_timestamp(),
  updated_at timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX jobs_newest ON jobs (created_at DESC, seq DESC);
CREATE INDEX jobs_unfinished ON jobs (created_at, seq) WHERE status IN ('queued', 'running');

CREATE TABLE job_items (
  job_id text NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
  seq    integer NOT NULL,
  item   jsonb NOT NULL,
  status text NOT NULL DEFAULT 'pending',
  error  text,
  PRIMARY KEY (job_id, seq)
);
CREATE INDEX job_items_pending ON job_items (job_id, seq) WHERE status = 'pending';

-- Down Migration
DROP TABLE job_items;
DROP TABLE jobs;
DROP TABLE texts;
DROP TABLE images;
DROP TABLE meta;
