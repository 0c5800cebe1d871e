-- Every ETL run and every row it rejected; the audit trail of changes to layer rows.
CREATE TABLE etl_runs (
  id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  source       text NOT NULL,
  layer        text NOT NULL,
  checksum     text,
  started_at   timestamptz NOT NULL DEFAULT now(),
  ended_at     timestamptz CHECK (ended_at >= started_at),
  status       text NOT NULL CHECK (status IN ('running', 'succeeded', 'failed', 'unchanged')),
  n_read       integer NOT NULL DEFAULT 0 CHECK (n_read >= 0),
  n_inserted   integer NOT NULL DEFAULT 0 CHECK (n_inserted >= 0),
  n_updated    integer NOT NULL DEFAULT 0 CHECK (n_updated >= 0),
  n_unchanged  integer NOT NULL DEFAULT 0 CHECK (n_unchanged >= 0),
  n_repaired   integer NOT NULL DEFAULT 0 CHECK (n_repaired >= 0),
  n_rejected   integer NOT NULL DEFAULT 0 CHECK (n_rejected >= 0),
  n_retired    integer NOT NULL DEFAULT 0 CHECK (n_retired >= 0),
  message      text
);
CREATE INDEX etl_runs_layer_idx ON etl_runs (layer, started_at DESC);

CREATE TABLE etl_rejects (
  id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  run_id     bigint NOT NULL REFERENCES etl_runs (id) ON DELETE CASCADE,
  row_no     integer NOT NULL,
  row_data   jsonb NOT NULL,
  field      text,
  reason_vi  text NOT NULL,
  reason_en  text NOT NULL
);
CREATE INDEX etl_rejects_run_idx ON etl_rejects (run_id);

CREATE TABLE audit_log (
  id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  at          timestamptz NOT NULL DEFAULT now(),
  actor       text NOT NULL,
  table_name  text NOT NULL,
  row_key     text NOT NULL,
  action      text NOT NULL CHECK (action IN ('INSERT', 'UPDATE', 'DELETE')),
  before      jsonb,
  after       jsonb,
  CHECK ((action = 'INSERT') = (before IS NULL)),
  CHECK ((action = 'DELETE') = (after IS NULL))
);
CREATE INDEX audit_log_table_idx ON audit_log (table_name, at DESC);
