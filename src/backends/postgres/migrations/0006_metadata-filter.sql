-- Up Migration
-- What the metadata filter language (src/core/metadata-filter.ts) needs beyond the GIN index on
-- metadata, which answers exact matches (`metadata @> …`) only:
--
-- 1. align_search_instant(text): the filter's ISO-8601 rule (src/core/iso-instant.ts) in SQL, giving
--    milliseconds since 1970 UTC, or NULL for a string that is not such an instant. Plain arithmetic
--    on make_date, so it is IMMUTABLE and never depends on the session's TimeZone; nested CASEs,
--    because only CASE guarantees that the range checks run before make_date could raise.
-- 2. <table>_metadata_keys: one row per (row, top-level metadata key), with the value as a number or
--    as an instant where it is one, kept by triggers. Its B-trees answer $exists and the ranges
--    ($gt, $gte, $lt, $lte) by reading only the matching entries, so the search planner can count a
--    filter's matches and the exact path reads no more rows than match.

CREATE FUNCTION align_search_instant(s text) RETURNS double precision
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $fn$
  SELECT CASE
    WHEN m IS NULL THEN NULL
    WHEN m[1]::int < 1 OR m[2]::int < 1 OR m[2]::int > 12 THEN NULL
    ELSE CASE
      WHEN m[3]::int < 1 OR m[3]::int > extract(day FROM make_date(m[1]::int, m[2]::int, 1) + interval '1 month' - interval '1 day')
        OR coalesce(m[4]::int, 0) > 23 OR coalesce(m[5]::int, 0) > 59 OR coalesce(m[6]::int, 0) > 59
        OR (m[8] IS NOT NULL AND m[8] <> 'Z' AND (substr(m[8], 2, 2)::int > 23 OR substr(m[8], 5, 2)::int > 59)) THEN NULL
      ELSE (make_date(m[1]::int, m[2]::int, m[3]::int) - date '1970-01-01')::double precision * 86400000
        + coalesce(m[4]::int, 0) * 3600000 + coalesce(m[5]::int, 0) * 60000 + coalesce(m[6]::int, 0) * 1000
        + coalesce(rpad(m[7], 3, '0')::int, 0)
        - CASE WHEN m[8] IS NULL OR m[8] = 'Z' THEN 0
            ELSE (CASE WHEN left(m[8], 1) = '-' THEN -1 ELSE 1 END) * (substr(m[8], 2, 2)::int * 60 + substr(m[8], 5, 2)::int) * 60000 END
      END
  END
  FROM (SELECT regexp_match(s, '^([0-9]{4})-([0-9]{2})-([0-9]{2})(?:T([0-9]{2}):([0-9]{2})(?::([0-9]{2})(?:\.([0-9]{1,3}))?)?(Z|[+-][0-9]{2}:[0-9]{2})?)?$') AS m) p
$fn$;

-- one row per top-level key of a row's metadata; num / instant where the value is one
CREATE FUNCTION align_search_metadata_keys(metadata jsonb)
RETURNS TABLE (key text, num numeric, instant double precision)
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $fn$
  SELECT e.key,
    CASE WHEN jsonb_typeof(e.value) = 'number' THEN (e.value)::numeric END,
    CASE WHEN jsonb_typeof(e.value) = 'string' THEN align_search_instant(e.value #>> '{}') END
  FROM jsonb_each(CASE WHEN jsonb_typeof(metadata) = 'object' THEN metadata ELSE '{}'::jsonb END) e
$fn$;

CREATE TABLE images_metadata_keys (
  id      text NOT NULL REFERENCES images (id) ON DELETE CASCADE,
  key     text NOT NULL,
  num     numeric,
  instant double precision
);
CREATE TABLE texts_metadata_keys (
  id      text NOT NULL REFERENCES texts (id) ON DELETE CASCADE,
  key     text NOT NULL,
  num     numeric,
  instant double precision
);
CREATE INDEX images_metadata_keys_id ON images_metadata_keys (id);
CREATE INDEX images_metadata_keys_num ON images_metadata_keys (key, num);
CREATE INDEX images_metadata_keys_instant ON images_metadata_keys (key, instant) WHERE instant IS NOT NULL;
CREATE INDEX texts_metadata_keys_id ON texts_metadata_keys (id);
CREATE INDEX texts_metadata_keys_num ON texts_metadata_keys (key, num);
CREATE INDEX texts_metadata_keys_instant ON texts_metadata_keys (key, instant) WHERE instant IS NOT NULL;

CREATE FUNCTION align_search_index_metadata_keys() RETURNS trigger
LANGUAGE plpgsql AS $fn$
BEGIN
  IF TG_OP = 'UPDATE' THEN
    IF NEW.metadata IS NOT DISTINCT FROM OLD.metadata AND NEW.id = OLD.id THEN RETURN NULL; END IF;
    EXECUTE format('DELETE FROM %I WHERE id = $1', TG_TABLE_NAME || '_metadata_keys') USING OLD.id;
  END IF;
  EXECUTE format('INSERT INTO %I (id, key, num, instant) SELECT $1, k.key, k.num, k.instant FROM align_search_metadata_keys($2) k',
    TG_TABLE_NAME || '_metadata_keys') USING NEW.id, NEW.metadata;
  RETURN NULL;
END
$fn$;

CREATE TRIGGER images_metadata_keys AFTER INSERT OR UPDATE ON images
  FOR EACH ROW EXECUTE FUNCTION align_search_index_metadata_keys();
CREATE TRIGGER texts_metadata_keys AFTER INSERT OR UPDATE ON texts
  FOR EACH ROW EXECUTE FUNCTION align_search_index_metadata_keys();

INSERT INTO images_metadata_keys (id, key, num, instant)
  SELECT i.id, k.key, k.num, k.instant FROM images i, align_search_metadata_keys(i.metadata) k;
INSERT INTO texts_metadata_keys (id, key, num, instant)
  SELECT t.id, k.key, k.num, k.instant FROM texts t, align_search_metadata_keys(t.metadata) k;

-- Down Migration
DROP TRIGGER images_metadata_keys ON images;
DROP TRIGGER texts_metadata_keys ON texts;
DROP FUNCTION align_search_index_metadata_keys();
DROP TABLE images_metadata_keys;
DROP TABLE texts_metadata_keys;
DROP FUNCTION align_search_metadata_keys(jsonb);
DROP FUNCTION align_search_instant(text);
