-- A layer's past versions are written by its history trigger alone. Until now the trigger ran with
-- the writer's rights, so every role that may write a layer (iocgis_ingest, the writable_by roles
-- of gis_core/auth/grants.py) could also INSERT or UPDATE history.<table> directly and rewrite the
-- past. Since 0028 an ETL run's inserts are audited as one entry that points at the history versions
-- the run wrote: those versions must be as hard to forge as audit_log itself. The trigger now runs
-- as its owner (like audit_record, 0019) and writers keep only SELECT on history (grants.py).
ALTER FUNCTION history.record() SECURITY DEFINER;
ALTER FUNCTION history.record() SET search_path = public, pg_temp;
REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON ALL TABLES IN SCHEMA history FROM iocgis_ingest;
