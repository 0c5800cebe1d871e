-- One NOLOGIN database role per app role of gis_core/auth/rules.py, so that someone working on the
-- database directly (psql, QGIS, the CLI against a remote database) is held to the same field and
-- layer rules as the web app: iocgis_read is `anonymous` (the public), the others are staff.
-- Their rights on the layer tables are not here: gis_core/auth/grants.py derives them from the
-- layer registry (layers/*.yml) and applies them at the end of every `iocgis db migrate`.
-- Roles are cluster-wide, so they are created only when missing.
DO $$
DECLARE r text;
BEGIN
  FOREACH r IN ARRAY ARRAY['iocgis_viewer', 'iocgis_planner', 'iocgis_operator', 'iocgis_steward',
                           'iocgis_admin'] LOOP
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = r) THEN
      EXECUTE format('CREATE ROLE %I NOLOGIN', r);
    END IF;
  END LOOP;
END $$;

-- Staff read what the public reads (schema usage, indicators, rasters, the public columns of the
-- layers); grants.py adds the restricted columns and writes each role may have.
GRANT iocgis_read TO iocgis_viewer, iocgis_planner, iocgis_operator, iocgis_steward, iocgis_admin;
