-- The audit trail written by the database itself: every INSERT, UPDATE, DELETE (and TRUNCATE) of a
-- layer row, and of the workflow rows that change incidents, lands in audit_log, whichever path made
-- it (ETL, web, OGC transactions, psql). No writer can skip it, and a writer needs no right on
-- audit_log: the trigger function is SECURITY DEFINER.
--
-- Who: the application names the actor of its transaction with
--   SELECT set_config('iocgis.actor', 'web:citizen', true)      (gis_core/audit.py set_actor)
-- e.g. 'web:citizen', 'device:CAM-001', 'operator:<name>', 'etl:<source>'. Without it, an ETL run
-- (iocgis.etl_run set) is 'etl:<its source>', anything else the database role that made the change.
-- The role is kept in db_user in every case: iocgis.actor is what the application says, not a proof.
--
-- What: INSERT keeps the new row, DELETE the old row, UPDATE only the columns that changed (before
-- and after), as jsonb; geometries as hex EWKB (see audit_columns). Updates that change nothing leave no row. An UPDATE that changes a row's key is
-- recorded as the deletion of the old key and the insertion of the new one (the two rows cannot be
-- paired from the statement's transition tables).
--
-- Cost: statement-level triggers with transition tables, like the history triggers of 0008: a bulk
-- load of 100,000 rows costs one INSERT ... SELECT into audit_log, not 100,000 trigger calls.
-- bench/audit_overhead.py, 100,000 points through `iocgis etl load`: insert +28 %, update of every
-- row +36 %, SQL delete +89 % (about 1-2 s per 100,000 rows); row-level triggers cost 3 to 16 times
-- more. The trail takes ~430 bytes a point row.
--
-- A later migration that adds a layer table turns auditing on with one call:
--   SELECT audit_enable('new_table', 'id');

ALTER TABLE audit_log
  ADD COLUMN db_user text NOT NULL DEFAULT session_user,  -- the database role that made the change
  ADD COLUMN etl_run bigint,                               -- the ETL run, when one made it
  ADD COLUMN txid    bigint NOT NULL DEFAULT txid_current(); -- the changes of one transaction belong together
CREATE INDEX audit_log_at_idx ON audit_log (at DESC);

-- The role of the session as the writer sees it (SET ROLE included). Inside a SECURITY DEFINER
-- function current_user is the function's owner, so it cannot be used there.
CREATE FUNCTION audit_db_user() RETURNS text LANGUAGE sql STABLE AS $$
  SELECT CASE WHEN current_setting('role') = 'none' THEN session_user::text ELSE current_setting('role') END
$$;

CREATE FUNCTION audit_actor() RETURNS text LANGUAGE sql STABLE
SET search_path = public, pg_temp AS $$
  SELECT coalesce(
    nullif(left(current_setting('iocgis.actor', true), 200), ''),
    (SELECT 'etl:' || r.source FROM etl_runs r
     WHERE r.id = nullif(current_setting('iocgis.etl_run', true), '')::bigint),
    audit_db_user())
$$;

-- The columns of a table as the trail stores them: geometry as its hex EWKB (exact, SRID included,
-- and ten times cheaper than GeoJSON: ~2 us a row instead of ~20 us; ST_GeomFromEWKB(decode(v, 'hex'))
-- or v::geometry reads it back), other columns as they are, `skip` left out. Prefixed with `alias.`.
CREATE FUNCTION audit_columns(tbl regclass, skip text[], alias text) RETURNS text LANGUAGE sql STABLE AS $$
  SELECT string_agg(CASE WHEN a.atttypid = 'geometry'::regtype
                         THEN format('%1$I.%2$I::text AS %2$I', alias, a.attname)
                         ELSE format('%1$I.%2$I', alias, a.attname) END, ', ' ORDER BY a.attnum)
  FROM pg_attribute a
  WHERE a.attrelid = tbl AND a.attnum > 0 AND NOT a.attisdropped AND a.attname <> ALL (skip)
$$;

-- TG_ARGV[0] is the key column, the other arguments columns left out of the trail (large binary
-- content whose digest is in another column).
CREATE FUNCTION audit_record() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER
SET search_path = public, pg_temp AS $$
DECLARE
  key_col text := TG_ARGV[0];
  skip text[] := coalesce(TG_ARGV[1:], '{}');
  actor text := audit_actor();
  who text := audit_db_user();
  run bigint := nullif(current_setting('iocgis.etl_run', true), '')::bigint;
  head text := 'INSERT INTO public.audit_log (actor, db_user, etl_run, table_name, row_key, action, before, after) ';
  cols_o text := audit_columns(TG_RELID, skip, 'o');
  cols_n text := audit_columns(TG_RELID, skip, 'n');
BEGIN
  IF TG_OP = 'INSERT' THEN
    EXECUTE head || format(
      'SELECT $1, $2, $3, $4, r.%1$I::text, ''INSERT'', NULL, to_jsonb(r) FROM (SELECT %2$s FROM new_rows n) r',
      key_col, cols_n)
      USING actor, who, run, TG_TABLE_NAME;
  ELSIF TG_OP = 'DELETE' THEN
    EXECUTE head || format(
      'SELECT $1, $2, $3, $4, r.%1$I::text, ''DELETE'', to_jsonb(r), NULL FROM (SELECT %2$s FROM old_rows o) r',
      key_col, cols_o)
      USING actor, who, run, TG_TABLE_NAME;
  ELSIF TG_OP = 'UPDATE' THEN
    -- Rows that kept their key: the columns that changed, before and after. MATERIALIZED: each row
    -- becomes jsonb once, not once per column compared (inlined, the planner repeats to_jsonb).
    EXECUTE format(
      'WITH o AS MATERIALIZED (SELECT %2$s FROM old_rows o), n AS MATERIALIZED (SELECT %3$s FROM new_rows n),'
      ' x AS MATERIALIZED (SELECT o.%1$I::text AS k, to_jsonb(o) AS oj, to_jsonb(n) AS nj'
      '                    FROM o JOIN n ON n.%1$I = o.%1$I WHERE o IS DISTINCT FROM n) ', key_col, cols_o, cols_n)
      || head ||
      'SELECT $1, $2, $3, $4, x.k, ''UPDATE'', d.before, d.after FROM x'
      ' CROSS JOIN LATERAL (SELECT jsonb_object_agg(b.key, b.value) AS before,'
      '                            jsonb_object_agg(b.key, x.nj -> b.key) AS after'
      '                     FROM jsonb_each(x.oj) b WHERE (x.nj -> b.key) IS DISTINCT FROM b.value) d'
      ' WHERE d.before IS NOT NULL'
      USING actor, who, run, TG_TABLE_NAME;
    -- Rows whose key changed.
    EXECUTE head || format(
      'SELECT $1, $2, $3, $4, r.%1$I::text, ''DELETE'', to_jsonb(r), NULL FROM (SELECT %2$s FROM old_rows o'
      ' WHERE NOT EXISTS (SELECT 1 FROM new_rows n WHERE n.%1$I = o.%1$I)) r', key_col, cols_o)
      USING actor, who, run, TG_TABLE_NAME;
    EXECUTE head || format(
      'SELECT $1, $2, $3, $4, r.%1$I::text, ''INSERT'', NULL, to_jsonb(r) FROM (SELECT %2$s FROM new_rows n'
      ' WHERE NOT EXISTS (SELECT 1 FROM old_rows o WHERE o.%1$I = n.%1$I)) r', key_col, cols_n)
      USING actor, who, run, TG_TABLE_NAME;
  ELSIF TG_OP = 'TRUNCATE' THEN
    -- Before the rows go: each of them, as a deletion (ON TRUNCATE has no transition table).
    EXECUTE head || format(
      'SELECT $1, $2, $3, $4, r.%1$I::text, ''DELETE'', to_jsonb(r), NULL FROM (SELECT %2$s FROM %3$s o) r',
      key_col, cols_o, TG_RELID::regclass)
      USING actor, who, run, TG_TABLE_NAME;
  END IF;
  RETURN NULL;
END $$;

-- Audit one table: four statement-level triggers. Idempotent (existing audit triggers are replaced).
CREATE FUNCTION audit_enable(tbl regclass, key_col text, skip text[] DEFAULT '{}') RETURNS void
LANGUAGE plpgsql SET search_path = public, pg_temp AS $$
DECLARE
  args text := array_to_string(ARRAY(SELECT quote_literal(a) FROM unnest(key_col || skip) a), ', ');
BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = tbl AND attname = key_col AND NOT attisdropped) THEN
    RAISE EXCEPTION 'audit_enable: % has no column %', tbl, key_col;
  END IF;
  EXECUTE format('DROP TRIGGER IF EXISTS audit_insert ON %s', tbl);
  EXECUTE format('DROP TRIGGER IF EXISTS audit_update ON %s', tbl);
  EXECUTE format('DROP TRIGGER IF EXISTS audit_delete ON %s', tbl);
  EXECUTE format('DROP TRIGGER IF EXISTS audit_truncate ON %s', tbl);
  EXECUTE format('CREATE TRIGGER audit_insert AFTER INSERT ON %s REFERENCING NEW TABLE AS new_rows'
                 ' FOR EACH STATEMENT EXECUTE FUNCTION audit_record(%s)', tbl, args);
  EXECUTE format('CREATE TRIGGER audit_update AFTER UPDATE ON %s REFERENCING OLD TABLE AS old_rows'
                 ' NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION audit_record(%s)', tbl, args);
  EXECUTE format('CREATE TRIGGER audit_delete AFTER DELETE ON %s REFERENCING OLD TABLE AS old_rows'
                 ' FOR EACH STATEMENT EXECUTE FUNCTION audit_record(%s)', tbl, args);
  EXECUTE format('CREATE TRIGGER audit_truncate BEFORE TRUNCATE ON %s'
                 ' FOR EACH STATEMENT EXECUTE FUNCTION audit_record(%s)', tbl, args);
END $$;

SELECT audit_enable('admin_units', 'code');
SELECT audit_enable('landuse_zones', 'id');
SELECT audit_enable('building_permits', 'id');
SELECT audit_enable('schools', 'id');
SELECT audit_enable('clinics', 'id');
SELECT audit_enable('cameras', 'id');
SELECT audit_enable('incidents', 'id');
-- The workflow rows that change an incident (its agency, public answer, status changes, photo).
SELECT audit_enable('incident_workflow', 'incident_id');
SELECT audit_enable('incident_transitions', 'id');
SELECT audit_enable('incident_photos', 'incident_id', '{bytes}');   -- the photo's sha256 stays

-- The trail is append-only for everyone but its owner; writers reach it only through the trigger.
REVOKE ALL ON FUNCTION audit_enable(regclass, text, text[]) FROM PUBLIC;
REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON audit_log FROM iocgis_read, iocgis_ingest;
