-- Extensions and the three group roles: read (web, OGC), ingest (ETL), owner (migrations).
-- Roles are cluster-wide, so they are created only when missing.
CREATE EXTENSION IF NOT EXISTS postgis;
CREATE EXTENSION IF NOT EXISTS pg_trgm;

DO $$
DECLARE r text;
BEGIN
  FOREACH r IN ARRAY ARRAY['iocgis_read', 'iocgis_ingest', 'iocgis_owner'] LOOP
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = r) THEN
      EXECUTE format('CREATE ROLE %I NOLOGIN', r);
    END IF;
  END LOOP;
END $$;

GRANT iocgis_read TO iocgis_ingest;
