-- The land-use plan's rules held as data. Zone rules are the columns of landuse_zones (0004):
-- allowed and conditional uses, maximum height, floors and coverage, minimum setback, and the
-- validity dates of the zone. Here: the plans themselves (decision, validity, which decision a
-- newer one supersedes), names of uses for bilingual reasons, overlays that forbid, restrict or
-- send a permit to review, the tolerances of the check, and the stored results.

-- One row per approved plan (quyết định phê duyệt). Zones name their plan by decision_no; the
-- dates on the zones decide what is in force, and registering a superseding plan closes the
-- older plan's zones on the day the new one takes effect (trigger below), so both stay in step.
CREATE TABLE zoning_plans (
  decision_no   text PRIMARY KEY CHECK (decision_no <> ''),
  plan_name     text NOT NULL,
  decision_date date NOT NULL,
  valid_from    date NOT NULL,
  valid_to      date CHECK (valid_to IS NULL OR valid_to > valid_from),
  supersedes    text REFERENCES zoning_plans (decision_no),
  source        text NOT NULL,
  CHECK (supersedes IS DISTINCT FROM decision_no)
);

CREATE FUNCTION zoning_plans_supersede() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF NEW.supersedes IS NOT NULL THEN
    UPDATE zoning_plans SET valid_to = NEW.valid_from
     WHERE decision_no = NEW.supersedes AND valid_from < NEW.valid_from
       AND (valid_to IS NULL OR valid_to > NEW.valid_from);
    UPDATE landuse_zones SET valid_to = NEW.valid_from
     WHERE decision_no = NEW.supersedes AND valid_from < NEW.valid_from
       AND (valid_to IS NULL OR valid_to > NEW.valid_from);
  END IF;
  RETURN NEW;
END $$;

CREATE TRIGGER zoning_plans_supersede AFTER INSERT OR UPDATE OF supersedes, valid_from ON zoning_plans
  FOR EACH ROW EXECUTE FUNCTION zoning_plans_supersede();

-- Uses named in permits and zone rules, so reasons can say "nhà ở" rather than "residential".
CREATE TABLE zoning_uses (
  code    text PRIMARY KEY CHECK (code ~ '^[a-z][a-z_]*$'),
  name_vi text NOT NULL,
  name_en text NOT NULL
);
INSERT INTO zoning_uses (code, name_vi, name_en) VALUES
  ('residential', 'nhà ở', 'housing'),
  ('commercial', 'thương mại, dịch vụ', 'commerce and services'),
  ('office', 'văn phòng', 'offices'),
  ('hotel', 'khách sạn', 'hotel'),
  ('school', 'trường học', 'school'),
  ('clinic', 'cơ sở y tế', 'health facility'),
  ('public', 'công trình công cộng', 'public building'),
  ('industry', 'công nghiệp', 'industry'),
  ('warehouse', 'kho bãi', 'warehousing'),
  ('agriculture', 'nông nghiệp', 'agriculture'),
  ('forestry', 'lâm nghiệp', 'forestry'),
  ('park', 'công viên, cây xanh', 'park'),
  ('transport', 'giao thông', 'transport'),
  ('religious', 'tôn giáo, tín ngưỡng', 'religious building');

-- Areas laid over the zones by other laws or studies. effect: 'forbid' (no building), 'restrict'
-- (the limits of this row apply on top of the zone's), 'review' (an expert must look).
CREATE TABLE zoning_overlays (
  id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  code          text NOT NULL UNIQUE CHECK (code <> ''),   -- stable key: reloads replace, not duplicate
  kind          text NOT NULL CHECK (kind IN
                  ('protected_forest', 'heritage', 'landslide_hazard', 'flood_hazard',
                   'road_corridor', 'river_corridor')),
  name_vi       text NOT NULL,
  name_en       text NOT NULL,
  effect        text NOT NULL CHECK (effect IN ('forbid', 'restrict', 'review')),
  max_height_m  numeric(6, 2) CHECK (max_height_m > 0),
  max_floors    integer CHECK (max_floors > 0),
  hazard_class  smallint CHECK (hazard_class BETWEEN 0 AND 9),
  decision_no   text,                                       -- the legal basis, when there is one
  valid_from    date NOT NULL,
  valid_to      date CHECK (valid_to IS NULL OR valid_to > valid_from),
  source        text NOT NULL,
  geom          geometry(MultiPolygon, 4326) NOT NULL CHECK (ST_IsValid(geom) AND NOT ST_IsEmpty(geom)),
  CHECK (effect <> 'restrict' OR max_height_m IS NOT NULL OR max_floors IS NOT NULL)
);
CREATE INDEX zoning_overlays_geom_idx ON zoning_overlays USING gist (geom);
CREATE INDEX zoning_overlays_kind_idx ON zoning_overlays (kind);

-- The check's tolerances, one row. A footprint reaching less than sliver_m2 into a zone or an
-- overlay is not in it (a digitising sliver is not a split); a setback short by no more than
-- setback_tolerance_m passes (footprints and zones are drawn in different projections).
CREATE TABLE zoning_tolerances (
  singleton            boolean PRIMARY KEY DEFAULT true CHECK (singleton),
  sliver_m2            numeric NOT NULL DEFAULT 1.0 CHECK (sliver_m2 >= 0),
  setback_tolerance_m  numeric NOT NULL DEFAULT 0.05 CHECK (setback_tolerance_m >= 0)
);
INSERT INTO zoning_tolerances DEFAULT VALUES;

-- The latest check of each permit: the map colours permits by verdict from here.
CREATE TABLE permit_checks (
  permit_id     bigint PRIMARY KEY REFERENCES building_permits (id) ON DELETE CASCADE,
  checked_at    timestamptz NOT NULL DEFAULT now(),
  verdict       text NOT NULL CHECK (verdict IN ('compliant', 'non_compliant', 'needs_review')),
  decision_nos  text[] NOT NULL DEFAULT '{}',
  zones         jsonb NOT NULL DEFAULT '[]',
  overlays      jsonb NOT NULL DEFAULT '[]',
  reasons       jsonb NOT NULL DEFAULT '[]'
);
CREATE INDEX permit_checks_verdict_idx ON permit_checks (verdict);

GRANT SELECT ON zoning_plans, zoning_uses, zoning_overlays, zoning_tolerances, permit_checks TO iocgis_read;
GRANT INSERT, UPDATE, DELETE ON zoning_plans, zoning_overlays, permit_checks TO iocgis_ingest;
GRANT ALL ON zoning_plans, zoning_uses, zoning_overlays, zoning_tolerances, permit_checks TO iocgis_owner;
