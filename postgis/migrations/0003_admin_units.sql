-- Administrative units. Since 1 July 2025: province -> commune (phường/xã/đặc khu).
-- Former districts stay as history rows (valid_to set); they may lack geometry.
CREATE TABLE admin_units (
  code          text PRIMARY KEY CHECK (code ~ '^[0-9]{2,5}$'),
  parent_code   text REFERENCES admin_units (code),
  level         text NOT NULL CHECK (level IN ('province', 'district', 'commune')),
  kind          text NOT NULL,              -- Tỉnh, Phường, Xã, Huyện, Thành phố, ...
  name          text NOT NULL CHECK (name <> ''),
  name_en       text,
  full_name     text NOT NULL,
  full_name_en  text,
  name_unaccent text NOT NULL,              -- "Lào Cai" -> "lao cai", for search typed without diacritics
  area_km2      numeric(12, 3) CHECK (area_km2 > 0),
  valid_from    date NOT NULL,
  valid_to      date,
  source        text NOT NULL,
  geom          geometry(MultiPolygon, 4326),
  CHECK (valid_to IS NULL OR valid_to > valid_from),
  CHECK (geom IS NOT NULL OR valid_to IS NOT NULL),
  CHECK (geom IS NULL OR ST_IsValid(geom)),
  CHECK ((level = 'province') = (parent_code IS NULL))
);
CREATE INDEX admin_units_geom_idx ON admin_units USING gist (geom);
CREATE INDEX admin_units_parent_idx ON admin_units (parent_code);
CREATE INDEX admin_units_name_trgm_idx ON admin_units USING gin (name_unaccent gin_trgm_ops);

-- Published layers: the units in force today. Views keep one table as the source of truth.
CREATE VIEW provinces AS
  SELECT code, name, name_en, full_name, full_name_en, area_km2, valid_from, source, geom
  FROM admin_units WHERE level = 'province' AND valid_to IS NULL;

CREATE VIEW communes AS
  SELECT code, parent_code, kind, name, name_en, full_name, full_name_en, name_unaccent,
         area_km2, valid_from, source, geom
  FROM admin_units WHERE level = 'commune' AND valid_to IS NULL;
