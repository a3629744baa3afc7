-- Up Migration
-- Model switches on PostgreSQL (README "Changing the model"; src/backends/postgres/pg-model-slots.ts):
--   - what re-embedding with another model needs: a preview larger than the thumbnail, the uploaded
--     bytes when kept (KEEP_ORIGINALS), and how a text was templated (null: as it is; {"literal": …};
--     {"model": true}: the model's own template, which a switch replaces with the new model's).
--     Older images have no preview: a switch counts them and re-embeds them only from a source still
--     readable under IMPORT_DIR. Older texts have no template recorded: re-embedded as stored;
--   - the index record (0004) gets a third slot, 'standby': the model whose vectors sit beside the
--     active ones in the column standby_embedding of images and texts (added when a switch begins,
--     since only then is its dimension known; it has an HNSW index of its own). `standby` holds the
--     switch's state ({"state": "building" | "ready", "since", …}); model_dir names each model's
--     folder under MODELS_DIR, so a process can load the model the record names.
ALTER TABLE images
  ADD COLUMN preview bytea,
  ADD COLUMN preview_width integer,
  ADD COLUMN preview_height integer,
  ADD COLUMN original bytea;
ALTER TABLE texts ADD COLUMN template jsonb;

ALTER TABLE index_settings DROP CONSTRAINT index_settings_slot_check;
ALTER TABLE index_settings ADD CONSTRAINT index_settings_slot_check CHECK (slot IN ('active', 'next', 'standby'));
ALTER TABLE index_settings
  ADD COLUMN model_dir text,
  ADD COLUMN standby jsonb;


-- A search names the model its query was encoded with; this guard (a one-time filter, evaluated once
-- per statement, in the statement's snapshot) refuses it when another model became active meanwhile,
-- so a process that has not yet heard of a swap never compares its query with the other model's
-- vectors, even where both models have the same dimension.
CREATE FUNCTION align_search_active_model_is(expected text) RETURNS boolean
LANGUAGE plpgsql STABLE PARALLEL SAFE AS $fn$
DECLARE
  active text;
BEGIN
  SELECT model_id INTO active FROM index_settings WHERE slot = 'active';
  IF active IS DISTINCT FROM expected THEN
    RAISE EXCEPTION 'the active model is now % (this search was encoded by %)', active, expected USING ERRCODE = '55000';
  END IF;
  RETURN true;
END
$fn$;

-- Down Migration
DROP FUNCTION align_search_active_model_is(text);
DELETE FROM index_settings WHERE slot = 'standby';
ALTER TABLE index_settings DROP COLUMN standby, DROP COLUMN model_dir;
ALTER TABLE index_settings DROP CONSTRAINT index_settings_slot_check;
ALTER TABLE index_settings ADD CONSTRAINT index_settings_slot_check CHECK (slot IN ('active', 'next'));
ALTER TABLE texts DROP COLUMN template;
ALTER TABLE images DROP COLUMN original, DROP COLUMN preview_height, DROP COLUMN preview_width, DROP COLUMN preview;
ALTER TABLE images DROP COLUMN IF EXISTS standby_embedding;
ALTER TABLE texts DROP COLUMN IF EXISTS standby_embedding;
