-- Up Migration
-- A model switch's re-embedding shared by every process that embeds (README "Changing the model";
-- src/backends/postgres/pg-model-slots.ts): before embedding a batch of rows the standby column
-- lacks, a process claims them here, so no two processes embed the same rows. A claim holds until
-- `expires_at`, which its holder renews while it embeds; the rows of a process that died are claimed
-- again by another once it lapses. Storing a row's standby vector deletes its claim, and a swap or
-- a cancel deletes them all. Rows of images and texts are never locked across an embed (that would
-- hold up deletes for seconds): only these rows are written at claim time.
CREATE TABLE model_switch_claims (
  tbl text NOT NULL CHECK (tbl IN ('images', 'texts')),
  id text NOT NULL,
  holder text NOT NULL,
  expires_at timestamptz NOT NULL,
  PRIMARY KEY (tbl, id)
);
CREATE INDEX model_switch_claims_holder ON model_switch_claims (holder);

-- Down Migration
DROP TABLE model_switch_claims;
