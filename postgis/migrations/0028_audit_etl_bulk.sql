-- The rows an ETL run inserts into a layer that keeps history are audited as ONE entry per
-- statement, not one per row. Writing a row into audit_log costs ~5 us whatever it holds (its
-- identity, three indexes, its WAL), ~3 us more for the row as jsonb: 2.6 s of a 300,000-point
-- load, more than the layer table's own insert (bench/etl_load.py). The values are not lost: the
-- history trigger (0008) writes each inserted row, whole, as a version of history.<table> tagged
-- with the run (etl_run) and starting at the transaction's time, which is the entry's `at`.
--
-- The entry: actor, db_user, etl_run and at as for any other; row_key 'etl_run:<run>'; action
-- INSERT; after = {"etl_run": run, "rows": how many, "ids": [[first, last], ...]} (the ids the
-- statement inserted, as ranges: one range when no other writer interleaved), so the trail itself,
-- append-only, says which rows each run created. `audit_etl_inserts(run)` gives back one row per
-- inserted row, in the same form as a per-row INSERT entry (geometry as hex EWKB), read from those
-- history versions. Everything else is audited row by row as before: inserts by any other writer,
-- inserts into tables without history, and every UPDATE and DELETE (the ETL's updates and
-- retirements included), whose before/after an auditor reads without looking elsewhere.
CREATE OR REPLACE FUNCTION audit_record() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER
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
  lo bigint;
  hi bigint;
  n bigint;
BEGIN
  IF TG_OP = 'INSERT' AND run IS NOT NULL AND key_col = 'id'
     AND to_regclass(format('history.%I', TG_TABLE_NAME)) IS NOT NULL THEN
    -- One INSERT statement takes consecutive ids from its identity unless another writer's
    -- interleave: then min, max and count are the whole answer, without sorting the ids.
    SELECT min(id), max(id), count(*) INTO lo, hi, n FROM new_rows;
    IF n > 0 THEN
      EXECUTE head ||
        'SELECT $1, $2, $3, $4, ''etl_run:'' || $3, ''INSERT'', NULL,'
        '       jsonb_build_object(''etl_run'', $3, ''rows'', $5, ''ids'', coalesce($6, jsonb_agg(jsonb_build_array(r.lo, r.hi) ORDER BY r.lo)))'
        -- Otherwise the ranges (gaps and islands: id minus its rank is constant along one).
        ' FROM (SELECT min(id) AS lo, max(id) AS hi FROM (SELECT id, id - row_number() OVER (ORDER BY id) AS island'
        '       FROM new_rows WHERE $6 IS NULL) i GROUP BY island) r'
        USING actor, who, run, TG_TABLE_NAME, n,
              CASE WHEN hi - lo + 1 = n THEN jsonb_build_array(jsonb_build_array(lo, hi)) END;
    END IF;
  ELSIF TG_OP = 'INSERT' THEN
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

-- Every row the ETL run `run` inserted under a bulk entry, as a per-row INSERT entry would show
-- it: the entry's time, actor and table, the row's id as row_key, the row as jsonb (geometry as hex
-- EWKB), read from the history version the run made (same id, same run, same instant).
CREATE FUNCTION audit_etl_inserts(run bigint)
RETURNS TABLE (audit_id bigint, at timestamptz, actor text, table_name text, row_key text, after jsonb)
LANGUAGE plpgsql STABLE SET search_path = public, pg_temp AS $$
DECLARE
  e record;
  span jsonb;
BEGIN
  FOR e IN SELECT a.id, a.at, a.actor, a.table_name, a.after FROM audit_log a
           WHERE a.etl_run = run AND a.row_key = 'etl_run:' || run AND a.action = 'INSERT' ORDER BY a.id LOOP
    FOR span IN SELECT jsonb_array_elements(e.after -> 'ids') LOOP
      RETURN QUERY EXECUTE format(
        'SELECT $1, $2, $3, $4, r.id::text, to_jsonb(r) FROM (SELECT %s FROM history.%I h'
        ' WHERE h.id BETWEEN $5 AND $6 AND h.etl_run = $7 AND h.version_from = $2 ORDER BY h.id) r',
        audit_columns(format('public.%I', e.table_name)::regclass, '{}', 'h'), e.table_name)
        USING e.id, e.at, e.actor, e.table_name, (span ->> 0)::bigint, (span ->> 1)::bigint, run;
    END LOOP;
  END LOOP;
END $$;

-- The function runs with its caller's rights: whoever may read audit_log and history reads these.
-- The bulk entries of a run, found without scanning the trail.
CREATE INDEX audit_log_etl_bulk_idx ON audit_log (etl_run) WHERE row_key LIKE 'etl_run:%';
