-- Thematic layers. Every geometry is EPSG:4326 and of one declared type; every feature that
-- sits in a commune names it (foreign key to admin_units). `source` says where a row came from
-- ('generated:demo' for the demo province).

CREATE TABLE landuse_zones (
  id                bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  plan_name         text NOT NULL,
  decision_no       text NOT NULL,           -- số quyết định phê duyệt quy hoạch
  decision_date     date NOT NULL,
  zone_code         text NOT NULL,
  zone_type         text NOT NULL CHECK (zone_type IN
                      ('residential', 'commercial', 'mixed', 'public', 'industrial', 'green',
                       'agriculture', 'forest', 'water', 'transport', 'heritage')),
  allowed_uses      text[] NOT NULL,
  conditional_uses  text[] NOT NULL DEFAULT '{}',
  max_height_m      numeric(6, 2) CHECK (max_height_m > 0),
  max_floors        integer CHECK (max_floors > 0),
  max_coverage_pct  numeric(5, 2) CHECK (max_coverage_pct > 0 AND max_coverage_pct <= 100),
  min_setback_m     numeric(6, 2) CHECK (min_setback_m >= 0),
  commune_code      text NOT NULL REFERENCES admin_units (code),
  valid_from        date NOT NULL,
  valid_to          date CHECK (valid_to IS NULL OR valid_to > valid_from),
  source            text NOT NULL,
  geom              geometry(MultiPolygon, 4326) NOT NULL CHECK (ST_IsValid(geom)),
  UNIQUE (decision_no, zone_code)
);
CREATE INDEX landuse_zones_geom_idx ON landuse_zones USING gist (geom);
CREATE INDEX landuse_zones_commune_idx ON landuse_zones (commune_code);

CREATE TABLE building_permits (
  id                bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  permit_no         text NOT NULL UNIQUE,
  applicant_name    text NOT NULL,           -- restricted: personal data
  applicant_id_no   text,                    -- restricted: personal data
  address           text NOT NULL,
  address_unaccent  text NOT NULL,
  commune_code      text NOT NULL REFERENCES admin_units (code),
  intended_use      text NOT NULL,
  floors            integer NOT NULL CHECK (floors BETWEEN 1 AND 100),
  height_m          numeric(6, 2) NOT NULL CHECK (height_m > 0 AND height_m < 400),
  footprint_area_m2 numeric(10, 2) NOT NULL CHECK (footprint_area_m2 > 0),
  parcel_area_m2    numeric(12, 2) CHECK (parcel_area_m2 > 0),
  status            text NOT NULL CHECK (status IN
                      ('submitted', 'approved', 'rejected', 'revoked', 'expired')),
  applied_on        date NOT NULL,
  issued_on         date CHECK (issued_on IS NULL OR issued_on >= applied_on),
  expires_on        date CHECK (expires_on IS NULL OR expires_on > applied_on),
  source            text NOT NULL,
  geom              geometry(MultiPolygon, 4326) NOT NULL CHECK (ST_IsValid(geom))
);
CREATE INDEX building_permits_geom_idx ON building_permits USING gist (geom);
CREATE INDEX building_permits_commune_idx ON building_permits (commune_code);
CREATE INDEX building_permits_applied_idx ON building_permits (applied_on);

CREATE TABLE schools (
  id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  code          text NOT NULL UNIQUE,
  name          text NOT NULL CHECK (name <> ''),
  name_unaccent text NOT NULL,
  level         text NOT NULL CHECK (level IN
                  ('preschool', 'primary', 'lower_secondary', 'upper_secondary', 'multi_level', 'boarding_ethnic')),
  ownership     text NOT NULL CHECK (ownership IN ('public', 'private')),
  students      integer CHECK (students >= 0),
  address       text,
  commune_code  text NOT NULL REFERENCES admin_units (code),
  source        text NOT NULL,
  geom          geometry(Point, 4326) NOT NULL
);
CREATE INDEX schools_geom_idx ON schools USING gist (geom);

CREATE TABLE clinics (
  id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  code          text NOT NULL UNIQUE,
  name          text NOT NULL CHECK (name <> ''),
  name_unaccent text NOT NULL,
  kind          text NOT NULL CHECK (kind IN
                  ('provincial_hospital', 'regional_hospital', 'health_center', 'commune_station', 'private_clinic')),
  beds          integer CHECK (beds >= 0),
  address       text,
  commune_code  text NOT NULL REFERENCES admin_units (code),
  source        text NOT NULL,
  geom          geometry(Point, 4326) NOT NULL
);
CREATE INDEX clinics_geom_idx ON clinics USING gist (geom);

CREATE TABLE cameras (
  id                   bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  code                 text NOT NULL UNIQUE,
  name                 text NOT NULL,
  kind                 text NOT NULL CHECK (kind IN ('traffic', 'security', 'flood', 'forest_fire', 'border')),
  status               text NOT NULL CHECK (status IN ('online', 'offline', 'maintenance')),
  last_seen            timestamptz,
  heartbeat_interval_s integer NOT NULL DEFAULT 60 CHECK (heartbeat_interval_s > 0),
  stream_url           text,                 -- restricted: live video
  ai_enabled           boolean NOT NULL DEFAULT false,
  commune_code         text NOT NULL REFERENCES admin_units (code),
  source               text NOT NULL,
  geom                 geometry(Point, 4326) NOT NULL
);
CREATE INDEX cameras_geom_idx ON cameras USING gist (geom);

CREATE TABLE incidents (
  id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  ticket_code      text NOT NULL UNIQUE,
  category         text NOT NULL CHECK (category IN
                     ('traffic', 'environment', 'urban_order', 'landslide', 'flood', 'fire',
                      'infrastructure', 'security', 'other')),
  source           text NOT NULL CHECK (source IN ('citizen', 'camera', 'sensor')),
  status           text NOT NULL CHECK (status IN
                     ('new', 'assigned', 'in_progress', 'resolved', 'closed', 'rejected')),
  reported_at      timestamptz NOT NULL,
  due_at           timestamptz CHECK (due_at >= reported_at),
  resolved_at      timestamptz CHECK (resolved_at >= reported_at),
  commune_code     text NOT NULL REFERENCES admin_units (code),
  camera_id        bigint REFERENCES cameras (id),
  description      text NOT NULL,
  reporter_name    text,                     -- restricted: personal data
  reporter_contact text,                     -- restricted: personal data
  data_source      text NOT NULL,
  geom             geometry(Point, 4326) NOT NULL,
  CHECK ((source = 'camera') = (camera_id IS NOT NULL)),
  CHECK ((status IN ('resolved', 'closed')) <= (resolved_at IS NOT NULL))
);
CREATE INDEX incidents_geom_idx ON incidents USING gist (geom);
CREATE INDEX incidents_reported_idx ON incidents (reported_at);
CREATE INDEX incidents_status_idx ON incidents (status);
CREATE INDEX incidents_commune_idx ON incidents (commune_code);
