-- Up Migration
-- What built the stored vectors, as one record the database keeps (src/backends/postgres/index-settings.ts):
-- the model and its dimension, the HNSW index's vector type, M and ef_construction. Every process
-- follows the 'active' row at start (a process configured otherwise says so and does not touch the
-- index); only `npm run db:reindex` changes it. 'next' is the row of a build in progress beside the
-- active one (db:reindex now; a model switch later): it becomes 'active' in the swap.
-- Filled at the first start after this migration, from the indexes that exist then.
CREATE TABLE index_settings (
  slot            text PRIMARY KEY CHECK (slot IN ('active', 'next')),
  model_id        text NOT NULL,
  dim             integer NOT NULL CHECK (dim > 0),
  vector_type     text NOT NULL CHECK (vector_type IN ('vector', 'halfvec')),
  m               integer NOT NULL,
  ef_construction integer NOT NULL,
  updated_at      timestamptz NOT NULL DEFAULT clock_timestamp()
);

-- Down Migration
DROP TABLE index_settings;
