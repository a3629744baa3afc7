/**
 * The SQLite schema. SQLite is the source of truth: the HNSW files are caches that can be
 * rebuilt from the `embedding` columns at any time.
 *
 * `label` is the row's key in the HNSW index (freed labels are reused through `free_labels`).
 * `seq` is a row version taken from one counter shared by both vector tables: every insert
 * gets a larger `seq`, so an index snapshot that records "everything up to seq N" can be
 * brought up to date exactly by replaying rows with `seq > N` and dropping labels that are
 * no longer in the table.
 */
import type Database from 'better-sqlite3'

export const SCHEMA_VERSION = 4

const DDL = `
CREATE TABLE IF NOT EXISTS meta (
  key   TEXT PRIMARY KEY,
  value TEXT NOT NULL
) WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS images (
  id         TEXT PRIMARY KEY,
  label      INTEGER NOT NULL UNIQUE,
  seq        INTEGER NOT NULL UNIQUE,
  sha256     TEXT NOT NULL UNIQUE,
  width      INTEGER NOT NULL,
  height     INTEGER NOT NULL,
  metadata   TEXT NOT NULL DEFAULT '{}',
  embedding  BLOB NOT NULL,
  thumbnail  BLOB,
  created_at TEXT NOT NULL,
  source     TEXT,
  preview    BLOB,
  preview_width  INTEGER,
  preview_height INTEGER,
  original   BLOB
);

CREATE TABLE IF NOT EXISTS texts (
  id         TEXT PRIMARY KEY,
  label      INTEGER NOT NULL UNIQUE,
  seq        INTEGER NOT NULL UNIQUE,
  text       TEXT NOT NULL,
  sha256     TEXT NOT NULL UNIQUE,
  metadata   TEXT NOT NULL DEFAULT '{}',
  embedding  BLOB NOT NULL,
  created_at TEXT NOT NULL,
  template   TEXT
);

CREATE TABLE IF NOT EXISTS free_labels (
  tbl   TEXT NOT NULL,
  label INTEGER NOT NULL,
  PRIMARY KEY (tbl, label)
) WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS jobs (
  id         TEXT PRIMARY KEY,
  kind       TEXT NOT NULL,
  status     TEXT NOT NULL,
  source     TEXT NOT NULL,
  root       TEXT NOT NULL,
  cleanup    INTEGER NOT NULL DEFAULT 0,
  expanded   INTEGER NOT NULL DEFAULT 1,
  total      INTEGER NOT NULL DEFAULT 0,
  done       INTEGER NOT NULL DEFAULT 0,
  failed     INTEGER NOT NULL DEFAULT 0,
  errors     TEXT NOT NULL DEFAULT '[]',
  created_at TEXT NOT NULL,
  updated_at TEXT NOT NULL,
  indexed    INTEGER NOT NULL DEFAULT 0,
  duplicate  INTEGER NOT NULL DEFAULT 0,
  duplicates TEXT NOT NULL DEFAULT '[]',
  skipped    TEXT NOT NULL DEFAULT '{"notImage":0,"unreadable":0,"paths":[]}'
);
CREATE INDEX IF NOT EXISTS jobs_status ON jobs (status, created_at);

CREATE TABLE IF NOT EXISTS job_items (
  job_id TEXT NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
  seq    INTEGER NOT NULL,
  item   TEXT NOT NULL,
  status TEXT NOT NULL DEFAULT 'pending',
  error  TEXT,
  PRIMARY KEY (job_id, seq)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS job_items_status ON job_items (job_id, status, seq);

CREATE TABLE IF NOT EXISTS standby_vectors (
  tbl       TEXT NOT NULL,
  id        TEXT NOT NULL,
  label     INTEGER NOT NULL,
  seq       INTEGER NOT NULL UNIQUE,
  embedding BLOB NOT NULL,
  PRIMARY KEY (tbl, id),
  UNIQUE (tbl, label)
) WITHOUT ROWID;
`

/**
 * The steps that bring an existing database up to SCHEMA_VERSION: UPGRADES[n - 1] takes schema n
 * to n + 1. A new database gets the current DDL at once; an existing one keeps its tables (CREATE
 * TABLE IF NOT EXISTS leaves them alone), so every column added since must be added here too.
 */
const UPGRADES: ReadonlyArray<(db: Database.Database) => void> = [
  // 1 → 2: the source of every image (relative path or uploaded file name), and the split of a job's
  // `done` into indexed and duplicate. Older images have no source; jobs counted before the upgrade
  // have indexed = duplicate = 0 for the items they had already done
  (db) => {
    db.exec(`
      ALTER TABLE images ADD COLUMN source TEXT;
      ALTER TABLE jobs ADD COLUMN indexed INTEGER NOT NULL DEFAULT 0;
      ALTER TABLE jobs ADD COLUMN duplicate INTEGER NOT NULL DEFAULT 0;
      ALTER TABLE jobs ADD COLUMN duplicates TEXT NOT NULL DEFAULT '[]';`)
  },
  // 2 → 3: what a directory job's listing skipped; and the demo pool's images and texts carry
  // {"demo": true}, so one call can remove them (DELETE /v1/images?filter={"demo":true}). Its images
  // are the items of the job recorded under meta demo_pool_job; its texts were stored with metadata
  // {"label": <text>} and encoded through the model's template, so they also get a key of their own
  // (see textKey in src/services/texts.ts) and stop shadowing a user's plain text of the same words
  (db) => {
    db.exec(`
      ALTER TABLE jobs ADD COLUMN skipped TEXT NOT NULL DEFAULT '{"notImage":0,"unreadable":0,"paths":[]}';
      UPDATE images SET metadata = json_set(metadata, '$.demo', json('true'))
        WHERE id IN (SELECT json_extract(item, '$.id') FROM job_items
                     WHERE job_id = (SELECT value FROM meta WHERE key = 'demo_pool_job'));
      UPDATE texts SET metadata = json_set(metadata, '$.demo', json('true')), sha256 = 'demo:' || sha256
        WHERE json_extract(metadata, '$.label') = text
          AND EXISTS (SELECT 1 FROM meta WHERE key = 'demo_pool_job');`)
  },
  // 3 → 4: what re-embedding with another model needs (a preview larger than the thumbnail, the
  // original bytes when kept, how a text was templated) and the standby model's vectors
  // (standby_vectors, created by the DDL above). Older images have no preview: a switch counts them
  // and re-embeds them only from a source still readable under IMPORT_DIR. Older texts have no
  // template recorded (NULL): they are re-embedded as stored, literally
  (db) => {
    db.exec(`
      ALTER TABLE images ADD COLUMN preview BLOB;
      ALTER TABLE images ADD COLUMN preview_width INTEGER;
      ALTER TABLE images ADD COLUMN preview_height INTEGER;
      ALTER TABLE images ADD COLUMN original BLOB;
      ALTER TABLE texts ADD COLUMN template TEXT;`)
  }
]

/**
 * Creates the tables on a new database and upgrades an older one in place, in one transaction
 * (an upgrade that fails leaves the database as it was). A database written by a newer schema is
 * left untouched for the caller to refuse. Returns the version the database has now.
 */
export function migrate (db: Database.Database): number {
  return db.transaction(() => {
    db.exec(DDL)
    const row = db.prepare("SELECT value FROM meta WHERE key = 'schema_version'").get() as { value: string } | undefined
    const setVersion = db.prepare("INSERT INTO meta (key, value) VALUES ('schema_version', ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value")
    if (row === undefined) {
      setVersion.run(String(SCHEMA_VERSION))
      return SCHEMA_VERSION
    }
    const version = Number(row.value)
    if (!(version >= 1 && version < SCHEMA_VERSION)) return version
    for (const upgrade of UPGRADES.slice(version - 1, SCHEMA_VERSION - 1)) upgrade(db)
    setVersion.run(String(SCHEMA_VERSION))
    return SCHEMA_VERSION
  }).immediate()
}
