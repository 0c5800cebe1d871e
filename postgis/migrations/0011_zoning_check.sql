-- The zoning check, set-based: any number of subjects (stored permits or a proposal) in, one
-- verdict per subject out, with the zones and overlays it touches, its share in each, and one
-- reason per broken rule carrying the measured value, the limit and a message in Vietnamese and
-- English. Rules and tolerances are read from the tables of 0010, never written here.

CREATE TYPE zoning_subject AS (
  id                bigint,
  geom              geometry,
  intended_use      text,
  floors            integer,
  height_m          numeric,
  footprint_area_m2 numeric,
  parcel_area_m2    numeric,
  applied_on        date
);

-- Numbers as people write them: 21 not 21.00, and a decimal comma in Vietnamese (12,5 m).
CREATE FUNCTION zoning_num(x numeric, lang text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT CASE WHEN lang = 'vi' THEN replace(trim_scale(x)::text, '.', ',') ELSE trim_scale(x)::text END
$$;

-- Overlays cut by a 0.01° grid (about 1 km), kept by a trigger. A bulk check finds each
-- footprint's overlays by a hash join on the cell instead of an index descent per footprint, and
-- tests it against the small piece in that cell rather than against a polygon of thousands of
-- vertices (hazard areas traced from a raster) rebuilt for GEOS on every call.
CREATE TABLE zoning_overlay_cells (
  cell        bigint NOT NULL,
  overlay_id  bigint NOT NULL REFERENCES zoning_overlays (id) ON DELETE CASCADE,
  geom        geometry(MultiPolygon, 4326) NOT NULL,
  PRIMARY KEY (cell, overlay_id)
);
CREATE INDEX zoning_overlay_cells_overlay_idx ON zoning_overlay_cells (overlay_id);

CREATE FUNCTION zoning_cell(ix integer, iy integer) RETURNS bigint
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$ SELECT ix::bigint * 100000 + iy $$;

CREATE FUNCTION zoning_overlay_cells_sync() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  DELETE FROM zoning_overlay_cells WHERE overlay_id = NEW.id;
  INSERT INTO zoning_overlay_cells (cell, overlay_id, geom)
  SELECT zoning_cell(ix, iy), NEW.id, ST_Multi(ST_CollectionExtract(ST_Intersection(NEW.geom, e.box), 3))
  FROM generate_series(floor(ST_XMin(NEW.geom) / 0.01)::int, floor(ST_XMax(NEW.geom) / 0.01)::int) ix,
       generate_series(floor(ST_YMin(NEW.geom) / 0.01)::int, floor(ST_YMax(NEW.geom) / 0.01)::int) iy,
       LATERAL (SELECT ST_MakeEnvelope(ix * 0.01, iy * 0.01, (ix + 1) * 0.01, (iy + 1) * 0.01, 4326) AS box) e
  WHERE ST_Intersects(NEW.geom, e.box)
    AND NOT ST_IsEmpty(ST_CollectionExtract(ST_Intersection(NEW.geom, e.box), 3));
  RETURN NEW;
END $$;
CREATE TRIGGER zoning_overlay_cells_sync AFTER INSERT OR UPDATE OF geom ON zoning_overlays
  FOR EACH ROW EXECUTE FUNCTION zoning_overlay_cells_sync();

-- One reason: what rule, how bad, about which zone or overlay, measured against what limit.
CREATE FUNCTION zoning_reason(rule text, severity text, target_kind text, target text, measured jsonb, lim jsonb,
                              unit text, message_vi text, message_en text) RETURNS jsonb
-- STABLE like jsonb_build_object inside it: declared any stricter, PostgreSQL would not inline it
-- and every reason would go through the SQL-function executor (a hundred times slower).
LANGUAGE sql STABLE PARALLEL SAFE AS $$
  SELECT jsonb_build_object('rule', rule, 'severity', severity, 'target_kind', target_kind, 'target', target,
                            'measured', measured, 'limit', lim, 'unit', unit,
                            'message_vi', message_vi, 'message_en', message_en)
$$;

CREATE FUNCTION zoning_evaluate(subjects zoning_subject[], p_sliver_m2 numeric DEFAULT NULL)
RETURNS TABLE (subject_id bigint, verdict text, decision_nos text[], zones jsonb, overlays jsonb, reasons jsonb)
-- JIT compilation costs more (about 100 ms) than the whole check of a few thousand permits.
LANGUAGE sql STABLE SET jit = off AS $$
WITH tol AS (
  SELECT coalesce(p_sliver_m2, t.sliver_m2)::float8 AS sliver, t.setback_tolerance_m::float8 AS setback_tol
  FROM zoning_tolerances t LIMIT 1
),
s AS MATERIALIZED (SELECT * FROM unnest(subjects)),
-- Candidate overlays of each subject: the grid cells its box touches, hash-joined to the cells of
-- the overlays (zoning_overlay_cells); the exact test follows in `ov`.
scell AS MATERIALIZED (
  SELECT s.id AS sid, zoning_cell(ix, iy) AS cell
  FROM s
  CROSS JOIN LATERAL generate_series(floor(ST_XMin(s.geom) / 0.01)::int, floor(ST_XMax(s.geom) / 0.01)::int) ix
  CROSS JOIN LATERAL generate_series(floor(ST_YMin(s.geom) / 0.01)::int, floor(ST_YMax(s.geom) / 0.01)::int) iy
),
ovc AS MATERIALIZED (
  SELECT sc.sid, c.overlay_id, c.geom FROM scell sc JOIN zoning_overlay_cells c ON c.cell = sc.cell
),
-- The cheap case, nearly every permit: one zone in force covers the footprint. The GiST index
-- finds it (ST_CoveredBy carries a bounding-box test) and no intersection is ever computed.
cov AS MATERIALIZED (
  SELECT DISTINCT ON (s.id) s.id AS sid, s.geom, s.intended_use, s.floors, s.height_m, s.footprint_area_m2,
         s.parcel_area_m2, 1.0::float8 AS share, 1::bigint AS nzones,
         z.id AS zid, z.zone_code, z.zone_type, z.decision_no, z.plan_name, z.allowed_uses, z.conditional_uses,
         z.max_height_m, z.max_floors, z.max_coverage_pct, z.min_setback_m, z.geom AS zgeom
  FROM s JOIN landuse_zones z
    ON ST_CoveredBy(s.geom, z.geom)
   AND z.valid_from <= s.applied_on AND (z.valid_to IS NULL OR s.applied_on < z.valid_to)
  ORDER BY s.id, z.valid_from DESC, z.id
),
-- The rest straddles zone edges or leaves the plan: measure each piece, in m² on the spheroid.
rest AS MATERIALIZED (
  SELECT s.*, ST_Area(s.geom::geography) AS area_m2
  FROM s WHERE NOT EXISTS (SELECT 1 FROM cov WHERE cov.sid = s.id)
),
pieces AS MATERIALIZED (
  SELECT r.id AS sid, r.geom, r.intended_use, r.floors, r.height_m, r.footprint_area_m2, r.parcel_area_m2,
         r.area_m2 AS total_m2, z.id AS zid, z.zone_code, z.zone_type, z.decision_no, z.plan_name, z.allowed_uses,
         z.conditional_uses, z.max_height_m, z.max_floors, z.max_coverage_pct, z.min_setback_m, z.geom AS zgeom,
         ST_Area(ST_Intersection(r.geom, z.geom)::geography) AS area_m2
  FROM rest r JOIN landuse_zones z
    ON ST_Intersects(r.geom, z.geom)
   AND z.valid_from <= r.applied_on AND (z.valid_to IS NULL OR r.applied_on < z.valid_to)
),
hits AS (
  SELECT * FROM cov
  UNION ALL
  SELECT p.sid, p.geom, p.intended_use, p.floors, p.height_m, p.footprint_area_m2, p.parcel_area_m2,
         p.area_m2 / nullif(p.total_m2, 0), count(*) OVER (PARTITION BY p.sid),
         p.zid, p.zone_code, p.zone_type, p.decision_no, p.plan_name, p.allowed_uses, p.conditional_uses,
         p.max_height_m, p.max_floors, p.max_coverage_pct, p.min_setback_m, p.zgeom
  FROM pieces p CROSS JOIN tol
  WHERE p.area_m2 >= tol.sliver             -- a sliver is not a share
),
-- Every zone rule of one (subject, zone) pair in one pass; a message is only formatted when broken.
hr AS MATERIALIZED (
  SELECT h.sid, h.nzones, h.share, h.decision_no,
         jsonb_build_object('id', h.zid, 'zone_code', h.zone_code, 'zone_type', h.zone_type,
                            'decision_no', h.decision_no, 'plan_name', h.plan_name,
                            'share', round(h.share::numeric, 4)) AS zone,
         h.zone_code,
         array_remove(ARRAY[
           CASE WHEN h.height_m > h.max_height_m THEN zoning_reason('height', 'fail', 'zone', h.zone_code,
             to_jsonb(h.height_m), to_jsonb(h.max_height_m), 'm',
             format('chiều cao %s m vượt mức tối đa %s m của khu %s',
                    zoning_num(h.height_m, 'vi'), zoning_num(h.max_height_m, 'vi'), h.zone_code),
             format('height %s m exceeds the %s m maximum of zone %s',
                    zoning_num(h.height_m, 'en'), zoning_num(h.max_height_m, 'en'), h.zone_code)) END,
           CASE WHEN h.floors > h.max_floors THEN zoning_reason('floors', 'fail', 'zone', h.zone_code,
             to_jsonb(h.floors), to_jsonb(h.max_floors), 'floors',
             format('số tầng %s vượt mức tối đa %s tầng của khu %s', h.floors, h.max_floors, h.zone_code),
             format('%s floors exceed the %s-floor maximum of zone %s', h.floors, h.max_floors, h.zone_code)) END,
           CASE WHEN NOT h.intended_use = ANY (h.allowed_uses) AND NOT h.intended_use = ANY (h.conditional_uses)
             THEN zoning_reason('use', 'fail', 'zone', h.zone_code, to_jsonb(h.intended_use), to_jsonb(h.allowed_uses),
               NULL,
               format('mục đích sử dụng "%s" không được phép trong khu %s (được phép: %s)',
                      (SELECT coalesce(u.name_vi, h.intended_use) FROM (SELECT 1) x LEFT JOIN zoning_uses u ON u.code = h.intended_use), h.zone_code,
                      (SELECT coalesce(string_agg(coalesce(u.name_vi, a.c), ', ' ORDER BY a.o), 'không có')
                       FROM unnest(h.allowed_uses) WITH ORDINALITY a (c, o) LEFT JOIN zoning_uses u ON u.code = a.c)),
               format('use "%s" is not allowed in zone %s (allowed: %s)',
                      (SELECT coalesce(u.name_en, h.intended_use) FROM (SELECT 1) x LEFT JOIN zoning_uses u ON u.code = h.intended_use), h.zone_code,
                      (SELECT coalesce(string_agg(coalesce(u.name_en, a.c), ', ' ORDER BY a.o), 'none')
                       FROM unnest(h.allowed_uses) WITH ORDINALITY a (c, o) LEFT JOIN zoning_uses u ON u.code = a.c))) END,
           CASE WHEN h.intended_use = ANY (h.conditional_uses) AND NOT h.intended_use = ANY (h.allowed_uses)
             THEN zoning_reason('conditional_use', 'review', 'zone', h.zone_code, to_jsonb(h.intended_use),
               to_jsonb(h.conditional_uses), NULL,
               format('mục đích sử dụng "%s" chỉ được phép có điều kiện trong khu %s: cần xem xét',
                      (SELECT coalesce(u.name_vi, h.intended_use) FROM (SELECT 1) x LEFT JOIN zoning_uses u ON u.code = h.intended_use), h.zone_code),
               format('use "%s" is only conditionally allowed in zone %s: needs review',
                      (SELECT coalesce(u.name_en, h.intended_use) FROM (SELECT 1) x LEFT JOIN zoning_uses u ON u.code = h.intended_use), h.zone_code)) END,
           -- Coverage compared without division, so a permit exactly at the limit passes exactly.
           CASE WHEN h.parcel_area_m2 > 0 AND h.footprint_area_m2 * 100 > h.max_coverage_pct * h.parcel_area_m2
             THEN zoning_reason('coverage', 'fail', 'zone', h.zone_code,
               to_jsonb(round(h.footprint_area_m2 * 100 / h.parcel_area_m2, 2)), to_jsonb(h.max_coverage_pct), '%',
               format('mật độ xây dựng %s%% vượt mức tối đa %s%% của khu %s',
                      zoning_num(round(h.footprint_area_m2 * 100 / h.parcel_area_m2, 2), 'vi'),
                      zoning_num(h.max_coverage_pct, 'vi'), h.zone_code),
               format('building coverage %s%% exceeds the %s%% maximum of zone %s',
                      zoning_num(round(h.footprint_area_m2 * 100 / h.parcel_area_m2, 2), 'en'),
                      zoning_num(h.max_coverage_pct, 'en'), h.zone_code)) END,
           CASE WHEN h.max_coverage_pct IS NOT NULL AND h.parcel_area_m2 IS NULL
             THEN zoning_reason('coverage_unknown', 'review', 'zone', h.zone_code, 'null', to_jsonb(h.max_coverage_pct),
               '%',
               format('chưa có diện tích thửa đất nên chưa kiểm tra được mật độ xây dựng (tối đa %s%% của khu %s)',
                      zoning_num(h.max_coverage_pct, 'vi'), h.zone_code),
               format('no parcel area given, so coverage cannot be checked against the %s%% maximum of zone %s',
                      zoning_num(h.max_coverage_pct, 'en'), h.zone_code)) END,
           CASE WHEN d.m < h.min_setback_m - tol.setback_tol
             THEN zoning_reason('setback', 'fail', 'zone', h.zone_code, to_jsonb(round(d.m::numeric, 2)),
               to_jsonb(h.min_setback_m), 'm',
               format('khoảng lùi %s m nhỏ hơn mức tối thiểu %s m của khu %s',
                      zoning_num(round(d.m::numeric, 2), 'vi'), zoning_num(h.min_setback_m, 'vi'), h.zone_code),
               format('setback %s m is less than the %s m minimum of zone %s',
                      zoning_num(round(d.m::numeric, 2), 'en'), zoning_num(h.min_setback_m, 'en'), h.zone_code)) END
         ], NULL) AS reasons
  FROM hits h CROSS JOIN tol
  -- Setback from the zone's edge (the block's street line), for a footprint in one zone, in metres
  -- on the local plane (degrees scaled at the footprint's latitude; exact to well under a millimetre
  -- at these distances): a few microseconds, where a geodesic distance or even a planar
  -- ST_DWithin pre-test costs several times more.
  LEFT JOIN LATERAL (
    SELECT ST_Distance(ST_Scale(h.geom, k.x, k.y), ST_Scale(ST_Boundary(h.zgeom), k.x, k.y)) AS m
    -- metres per degree at the footprint's latitude (WGS 84 series), written out: as SQL functions
    -- they would not be inlined here and would cost more than the distance itself
    FROM (SELECT 111412.84 * cos(radians(l.lat)) - 93.5 * cos(radians(3 * l.lat)) AS x,
                 111132.92 - 559.82 * cos(radians(2 * l.lat)) + 1.175 * cos(radians(4 * l.lat)) AS y
          FROM (SELECT (ST_YMin(h.geom) + ST_YMax(h.geom)) / 2 AS lat) l) k
    WHERE h.nzones = 1 AND h.min_setback_m > tol.setback_tol
  ) d ON true
),
zone_part AS (
  SELECT sid, ARRAY[decision_no] AS decision_nos, jsonb_build_array(zone) AS zones, reasons
  FROM hr WHERE nzones = 1
  UNION ALL
  SELECT hr.sid, array_agg(DISTINCT hr.decision_no ORDER BY hr.decision_no),
         jsonb_agg(hr.zone ORDER BY hr.share DESC, hr.zone_code),
         ARRAY[zoning_reason('split', 'review', 'zone', string_agg(hr.zone_code, ', ' ORDER BY hr.share DESC, hr.zone_code),
              jsonb_agg(jsonb_build_object('zone_code', hr.zone_code, 'share', round(hr.share::numeric, 4))
                        ORDER BY hr.share DESC, hr.zone_code), to_jsonb(1), 'zones',
              format('công trình nằm trên %s khu: %s', count(*),
                     string_agg(format('%s%% trong khu %s', zoning_num(round(hr.share::numeric * 100, 1), 'vi'),
                                       hr.zone_code), ', ' ORDER BY hr.share DESC, hr.zone_code)),
              format('footprint split across %s zones: %s', count(*),
                     string_agg(format('%s%% in zone %s', zoning_num(round(hr.share::numeric * 100, 1), 'en'),
                                       hr.zone_code), ', ' ORDER BY hr.share DESC, hr.zone_code)))]
  FROM hr WHERE nzones > 1 GROUP BY hr.sid
  UNION ALL
  -- and the rules each zone of a split footprint breaks (gathered per subject in `assembled`)
  SELECT sid, NULL, NULL, reasons FROM hr WHERE nzones > 1
),
outside_part AS (
  SELECT r.id AS sid,
         CASE WHEN coalesce(a.kept, 0) = 0 THEN
           zoning_reason('no_plan', 'review', 'plan', NULL, to_jsonb(r.applied_on), 'null', NULL,
             format('không có khu quy hoạch nào có hiệu lực tại vị trí này vào ngày %s', to_char(r.applied_on, 'DD/MM/YYYY')),
             format('no zone of a plan in force covers this footprint on %s', to_char(r.applied_on, 'YYYY-MM-DD')))
         WHEN r.area_m2 - coalesce(a.total, 0) >= tol.sliver THEN
           zoning_reason('outside_plan', 'review', 'plan', NULL,
             to_jsonb(round(((r.area_m2 - a.total) / r.area_m2 * 100)::numeric, 1)), 'null', '%',
             format('%s%% diện tích công trình nằm ngoài các khu quy hoạch có hiệu lực',
                    zoning_num(round(((r.area_m2 - a.total) / r.area_m2 * 100)::numeric, 1), 'vi')),
             format('%s%% of the footprint lies outside the zones in force',
                    zoning_num(round(((r.area_m2 - a.total) / r.area_m2 * 100)::numeric, 1), 'en')))
         END AS reason
  FROM rest r CROSS JOIN tol
  LEFT JOIN (SELECT p.sid, sum(p.area_m2) AS total, count(*) FILTER (WHERE p.area_m2 >= t.sliver) AS kept
             FROM pieces p CROSS JOIN tol t GROUP BY p.sid) a ON a.sid = r.id
),
-- The footprint's area in each overlay: the sum over the overlay's pieces in the cells it touches.
ov AS MATERIALIZED (
  SELECT o.id AS oid, o.code, o.kind, o.name_vi, o.name_en, o.effect, o.max_height_m, o.max_floors,
         a.sid, s.height_m, s.floors, a.area_m2, a.area_m2 / nullif(ST_Area(s.geom::geography), 0) AS share
  FROM (
    SELECT c.sid, c.overlay_id,
           sum(CASE WHEN ST_CoveredBy(s.geom, c.geom) THEN ST_Area(s.geom::geography)
                    ELSE ST_Area(ST_Intersection(s.geom, c.geom)::geography) END) AS area_m2
    FROM ovc c JOIN s ON s.id = c.sid
    WHERE ST_Intersects(s.geom, c.geom)
    GROUP BY c.sid, c.overlay_id
  ) a
  JOIN s ON s.id = a.sid
  JOIN zoning_overlays o
    ON o.id = a.overlay_id AND o.valid_from <= s.applied_on AND (o.valid_to IS NULL OR s.applied_on < o.valid_to)
  CROSS JOIN tol
  WHERE a.area_m2 >= tol.sliver
),
overlay_part AS (
  SELECT ov.sid,
         jsonb_agg(jsonb_build_object('id', oid, 'code', code, 'kind', kind, 'effect', effect,
                                      'name_vi', name_vi, 'name_en', name_en,
                                      'area_m2', round(area_m2::numeric, 1), 'share', round(share::numeric, 4))
                   ORDER BY share DESC, code) AS overlays,
         array_remove(array_agg(CASE effect
           WHEN 'forbid' THEN zoning_reason('overlay_forbid', 'fail', 'overlay', code, to_jsonb(round(area_m2::numeric, 1)),
             'null', 'm²',
             format('công trình nằm trong %s (%s m², %s%% diện tích), nơi không được xây dựng', name_vi,
                    zoning_num(round(area_m2::numeric, 1), 'vi'), zoning_num(round(share::numeric * 100, 1), 'vi')),
             format('the footprint lies in %s (%s m², %s%% of its area), where building is forbidden', name_en,
                    zoning_num(round(area_m2::numeric, 1), 'en'), zoning_num(round(share::numeric * 100, 1), 'en')))
           WHEN 'review' THEN zoning_reason('overlay_review', 'review', 'overlay', code,
             to_jsonb(round(area_m2::numeric, 1)), 'null', 'm²',
             format('công trình nằm trong %s (%s%% diện tích): cần thẩm định thêm', name_vi,
                    zoning_num(round(share::numeric * 100, 1), 'vi')),
             format('the footprint lies in %s (%s%% of its area): needs expert review', name_en,
                    zoning_num(round(share::numeric * 100, 1), 'en')))
           END ORDER BY code), NULL)
         || array_remove(array_agg(CASE WHEN effect = 'restrict' AND height_m > max_height_m THEN
              zoning_reason('overlay_height', 'fail', 'overlay', code, to_jsonb(height_m), to_jsonb(max_height_m), 'm',
                format('chiều cao %s m vượt mức tối đa %s m trong %s',
                       zoning_num(height_m, 'vi'), zoning_num(max_height_m, 'vi'), name_vi),
                format('height %s m exceeds the %s m maximum within %s',
                       zoning_num(height_m, 'en'), zoning_num(max_height_m, 'en'), name_en)) END ORDER BY code), NULL)
         || array_remove(array_agg(CASE WHEN effect = 'restrict' AND floors > max_floors THEN
              zoning_reason('overlay_floors', 'fail', 'overlay', code, to_jsonb(floors), to_jsonb(max_floors), 'floors',
                format('số tầng %s vượt mức tối đa %s tầng trong %s', floors, max_floors, name_vi),
                format('%s floors exceed the %s-floor maximum within %s', floors, max_floors, name_en)) END
              ORDER BY code), NULL) AS reasons
  FROM ov GROUP BY ov.sid
),
-- One row per subject from the parts above, grouped rather than joined: the planner cannot know
-- how many subjects came in and would pick nested loops over them.
assembled AS (
  SELECT u.sid,
         max(u.decision_nos) AS decision_nos,
         (array_agg(u.zones) FILTER (WHERE u.zones IS NOT NULL))[1] AS zones,
         (array_agg(u.overlays) FILTER (WHERE u.overlays IS NOT NULL))[1] AS overlays,
         array_agg(r.reason ORDER BY u.part, r.n) FILTER (WHERE r.reason IS NOT NULL) AS all_reasons
  FROM (
    SELECT s.id AS sid, 0 AS part, NULL::text[] AS decision_nos, NULL::jsonb AS zones, NULL::jsonb AS overlays,
           '{}'::jsonb[] AS reasons FROM s
    UNION ALL SELECT sid, 1, decision_nos, zones, NULL, reasons FROM zone_part
    UNION ALL SELECT sid, 2, NULL, NULL, NULL, ARRAY[reason] FROM outside_part WHERE reason IS NOT NULL
    UNION ALL SELECT sid, 3, NULL, NULL, overlays, reasons FROM overlay_part
  ) u
  LEFT JOIN LATERAL unnest(u.reasons) WITH ORDINALITY AS r (reason, n) ON true
  GROUP BY u.sid
)
SELECT a.sid,
       CASE WHEN a.all_reasons IS NULL THEN 'compliant'
            WHEN EXISTS (SELECT 1 FROM unnest(a.all_reasons) x WHERE x->>'severity' = 'fail') THEN 'non_compliant'
            ELSE 'needs_review' END,
       coalesce(a.decision_nos, '{}'), coalesce(a.zones, '[]'), coalesce(a.overlays, '[]'),
       coalesce(to_jsonb(a.all_reasons), '[]')
FROM assembled a
$$;

-- Check stored permits by id and keep the results; returns how many got each verdict.
CREATE FUNCTION zoning_check_permits(ids bigint[], p_sliver_m2 numeric DEFAULT NULL)
RETURNS TABLE (verdict text, n bigint)
LANGUAGE sql AS $$
  WITH done AS (
    INSERT INTO permit_checks AS c (permit_id, checked_at, verdict, decision_nos, zones, overlays, reasons)
    SELECT e.subject_id, now(), e.verdict, e.decision_nos, e.zones, e.overlays, e.reasons
    FROM zoning_evaluate(ARRAY(
      SELECT ROW(p.id, p.geom, p.intended_use, p.floors, p.height_m, p.footprint_area_m2, p.parcel_area_m2,
                 p.applied_on)::zoning_subject
      FROM building_permits p WHERE p.id = ANY (ids)), p_sliver_m2) e
    ON CONFLICT (permit_id) DO UPDATE SET
      checked_at = EXCLUDED.checked_at, verdict = EXCLUDED.verdict, decision_nos = EXCLUDED.decision_nos,
      zones = EXCLUDED.zones, overlays = EXCLUDED.overlays, reasons = EXCLUDED.reasons
    RETURNING c.verdict
  )
  SELECT done.verdict, count(*) FROM done GROUP BY done.verdict
$$;

GRANT SELECT ON zoning_overlay_cells TO iocgis_read;
GRANT INSERT, DELETE ON zoning_overlay_cells TO iocgis_ingest;
GRANT EXECUTE ON FUNCTION zoning_num(numeric, text),
  zoning_reason(text, text, text, text, jsonb, jsonb, text, text, text),
  zoning_evaluate(zoning_subject[], numeric) TO iocgis_read;
GRANT EXECUTE ON FUNCTION zoning_check_permits(bigint[], numeric) TO iocgis_ingest;
