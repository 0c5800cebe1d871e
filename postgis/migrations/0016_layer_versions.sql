-- A version number per table, bumped by every statement that changes it. Tile caches and ETags
-- key on it, so a data change (ETL, web, OGC transaction) invalidates exactly that layer's tiles.
-- Statement-level triggers: a bulk load bumps it once, not once per row.
CREATE TABLE layer_versions (
  table_name text PRIMARY KEY,
  version    bigint NOT NULL DEFAULT 1,
  changed_at timestamptz NOT NULL DEFAULT now()
);

CREATE FUNCTION bump_layer_version() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER
SET search_path = public, pg_temp AS $$
BEGIN
  INSERT INTO layer_versions AS v (table_name) VALUES (TG_TABLE_NAME)
  ON CONFLICT (table_name) DO UPDATE SET version = v.version + 1, changed_at = now();
  RETURN NULL;
END $$;

DO $$
DECLARE t text;
BEGIN
  FOREACH t IN ARRAY ARRAY['admin_units', 'landuse_zones', 'building_permits', 'schools', 'clinics',
                           'cameras', 'incidents'] LOOP
    EXECUTE format('CREATE TRIGGER %I AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON %I '
                   'FOR EACH STATEMENT EXECUTE FUNCTION bump_layer_version()', t || '_version', t);
    INSERT INTO layer_versions (table_name) VALUES (t);
  END LOOP;
END $$;

GRANT SELECT ON layer_versions TO iocgis_read;
