-- Socio-economic indicators (definitions bilingual) and their values per unit and period.
CREATE TABLE indicators (
  code             text PRIMARY KEY CHECK (code ~ '^[a-z][a-z0-9_]*$'),
  name_vi          text NOT NULL,
  name_en          text NOT NULL,
  unit_vi          text NOT NULL,
  unit_en          text NOT NULL,
  higher_is_better boolean NOT NULL,
  theme            text NOT NULL,
  description_vi   text,
  description_en   text,
  target           numeric,
  source           text NOT NULL
);

CREATE TABLE indicator_values (
  indicator_code text NOT NULL REFERENCES indicators (code) ON DELETE CASCADE,
  unit_code      text NOT NULL REFERENCES admin_units (code),
  period         date NOT NULL CHECK (extract(day FROM period) = 1),   -- first day of the month
  value          numeric NOT NULL,
  source         text NOT NULL,
  PRIMARY KEY (indicator_code, unit_code, period)
);
CREATE INDEX indicator_values_period_idx ON indicator_values (indicator_code, period);

-- Rasters live as files (GeoTIFF/COG); the catalog says where and what they are.
CREATE TABLE rasters (
  name        text PRIMARY KEY CHECK (name ~ '^[a-z][a-z0-9_]*$'),
  title_vi    text NOT NULL,
  title_en    text NOT NULL,
  kind        text NOT NULL CHECK (kind IN ('dem', 'hazard', 'hillshade', 'other')),
  path        text NOT NULL,
  crs         text NOT NULL,
  width       integer NOT NULL CHECK (width > 0),
  height      integer NOT NULL CHECK (height > 0),
  band_count  integer NOT NULL CHECK (band_count > 0),
  dtype       text NOT NULL,
  nodata      double precision,
  resolution  double precision NOT NULL CHECK (resolution > 0),
  unit        text,
  source      text NOT NULL,
  loaded_at   timestamptz NOT NULL DEFAULT now(),
  footprint   geometry(Polygon, 4326) NOT NULL
);
