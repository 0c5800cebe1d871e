-- Past states of the published thematic layers, so that a layer can be shown as it was on a date.
--
-- Each layer table T gets history.T: the columns of T plus [version_from, version_to) and the ETL
-- run that made the version (NULL for edits made outside the ETL). Every version of every row is kept,
-- the current one included (version_to NULL), so "as of D" is one query on history.T alone:
--   version_from <= D AND (version_to IS NULL OR version_to > D).
-- (Not valid_from/valid_to: landuse_zones already uses those for the plan's own legal validity.)
-- Versions are written by statement-level triggers with transition tables: a bulk load of a million
-- rows costs one INSERT ... SELECT, not a million trigger calls. Updates that change nothing make
-- no version, and rows that an upsert skipped never reach the transition table.
-- Time is the transaction's start (now()): all changes of one ETL run share one instant.
-- The ETL names its run with set_config('iocgis.etl_run', id, true); other writers leave it empty.
--
-- admin_units is not here: it carries its own valid_from/valid_to (units are redrawn by decree).
-- A later migration that adds a column to a layer must add it to history.<layer> in the same place
-- (the trigger copies rows by position).
CREATE SCHEMA history;

CREATE FUNCTION history.run_id() RETURNS bigint LANGUAGE sql STABLE AS $$
  SELECT nullif(current_setting('iocgis.etl_run', true), '')::bigint
$$;

-- One function for all layers and all three events; the table name comes from the trigger itself.
CREATE FUNCTION history.record() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP IN ('UPDATE', 'DELETE') THEN
    -- Close the open version of each changed or deleted row. For UPDATE only rows that really
    -- changed: an UPDATE that rewrites the same values is not a new state.
    IF TG_OP = 'UPDATE' THEN
      EXECUTE format(
        'UPDATE history.%1$I h SET version_to = now() FROM old_rows o JOIN new_rows n ON n.id = o.id'
        ' WHERE h.id = o.id AND h.version_to IS NULL AND o IS DISTINCT FROM n', TG_TABLE_NAME);
    ELSE
      EXECUTE format(
        'UPDATE history.%1$I h SET version_to = now() FROM old_rows o WHERE h.id = o.id AND h.version_to IS NULL',
        TG_TABLE_NAME);
    END IF;
  END IF;
  IF TG_OP = 'INSERT' THEN
    EXECUTE format('INSERT INTO history.%1$I SELECT n.*, now(), NULL, history.run_id() FROM new_rows n',
                   TG_TABLE_NAME);
  ELSIF TG_OP = 'UPDATE' THEN
    EXECUTE format(
      'INSERT INTO history.%1$I SELECT n.*, now(), NULL, history.run_id()'
      ' FROM new_rows n JOIN old_rows o ON o.id = n.id WHERE o IS DISTINCT FROM n', TG_TABLE_NAME);
  END IF;
  RETURN NULL;
END $$;

DO $$
DECLARE t text;
BEGIN
  FOREACH t IN ARRAY ARRAY['landuse_zones', 'building_permits', 'schools', 'clinics', 'cameras', 'incidents'] LOOP
    -- LIKE copies the columns and their NOT NULLs, not the identity, keys or checks: a history
    -- table holds many versions of one id, and old versions must survive later rule changes.
    EXECUTE format('CREATE TABLE history.%1$I (LIKE public.%1$I,'
                   ' version_from timestamptz NOT NULL, version_to timestamptz, etl_run bigint,'
                   ' CHECK (version_to IS NULL OR version_to >= version_from))', t);
    EXECUTE format('CREATE INDEX %1$I ON history.%2$I (id) WHERE version_to IS NULL', t || '_open_idx', t);
    -- Only the index the triggers need. An as-of query returns most of a layer, which a scan
    -- serves well; a period or spatial index would make every bulk load pay for rare queries.
    -- Rows already there get one open version from now: when they began is not known.
    EXECUTE format('INSERT INTO history.%1$I SELECT p.*, now(), NULL, NULL FROM public.%1$I p', t);
    EXECUTE format('CREATE TRIGGER history_insert AFTER INSERT ON public.%1$I'
                   ' REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION history.record()', t);
    EXECUTE format('CREATE TRIGGER history_update AFTER UPDATE ON public.%1$I'
                   ' REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows'
                   ' FOR EACH STATEMENT EXECUTE FUNCTION history.record()', t);
    EXECUTE format('CREATE TRIGGER history_delete AFTER DELETE ON public.%1$I'
                   ' REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION history.record()', t);
  END LOOP;
END $$;

-- Readers may see past states of published layers; writers (ETL, workflow) write them through
-- the triggers, which run with the writer's rights.
GRANT USAGE ON SCHEMA history TO iocgis_read, iocgis_ingest;
GRANT SELECT ON ALL TABLES IN SCHEMA history TO iocgis_read;
GRANT SELECT, INSERT, UPDATE ON ALL TABLES IN SCHEMA history TO iocgis_ingest;
GRANT ALL ON SCHEMA history TO iocgis_owner;
GRANT ALL ON ALL TABLES IN SCHEMA history TO iocgis_owner;
