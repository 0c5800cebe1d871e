-- Rows the ETL repaired (geometry made valid, open rings closed) and loaded: kept beside the
-- rejects so a steward can see what was changed on the way in, row by row, in both languages.
CREATE TABLE etl_repairs (
  id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  run_id     bigint NOT NULL REFERENCES etl_runs (id) ON DELETE CASCADE,
  row_no     integer NOT NULL,
  field      text,
  reason_vi  text NOT NULL,
  reason_en  text NOT NULL
);
CREATE INDEX etl_repairs_run_idx ON etl_repairs (run_id);

-- The runs a source made, newest first: what the scheduler asks before each round.
CREATE INDEX etl_runs_source_idx ON etl_runs (source, started_at DESC);

GRANT SELECT, INSERT ON etl_repairs TO iocgis_ingest;
GRANT SELECT ON etl_repairs TO iocgis_read;
GRANT ALL ON etl_repairs TO iocgis_owner;
