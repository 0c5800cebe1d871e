-- The bulk zoning check made cheap for the common case, and its setbacks measured in one agreed
-- metric projection.
--
-- zoning_check_permits (0011) packed every permit into an array of composites and sent it through
-- the whole of zoning_evaluate: zone pieces, overlay cells, JSON assembly grouped per subject. Here
-- it reads the permits itself and takes the case of nearly every permit on a short path: one zone
-- in force covers the footprint (ST_CoveredBy through the GiST index, never an intersection) and
-- no overlay cell near it holds a piece of an overlay. Its rules are judged on plain columns and
-- a reason is formatted only for a rule that is broken. Everything else (footprints across zone
-- edges or outside the plan, near an overlay) still goes to zoning_evaluate, as one set per chunk.
-- Both paths build a zone's reasons with the one function below, so they cannot drift apart.
--
-- Setbacks: 0011 measured on a local plane (degrees scaled at the footprint's latitude), which
-- differs by a few millimetres from metres in the province's projection, the plane the plans and
-- footprints are drawn in; a setback right at the tolerance could then pass here and fail in any
-- GIS. The setback is now the planar distance in zoning_tolerances.metric_srid (UTM 48N unless
-- set). The local plane stays as a cheap first measurement: the two differ by far less than 1 %
-- inside a UTM zone, so only a footprint whose local distance is within 1 % + 1 cm of the limit
-- (or below it, so that reasons carry the exact value) is projected and measured again.

ALTER TABLE zoning_tolerances
  ADD COLUMN metric_srid integer NOT NULL DEFAULT 32648 CHECK (metric_srid > 0);

-- The name of a use in a language (the code when it has none), and a list of them.
CREATE FUNCTION zoning_use_name(use_code text, lang text) RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE AS $$
  SELECT coalesce((SELECT CASE WHEN lang = 'vi' THEN u.name_vi ELSE u.name_en END
                   FROM zoning_uses u WHERE u.code = use_code), use_code)
$$;

CREATE FUNCTION zoning_use_names(use_codes text[], lang text) RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE AS $$
  SELECT coalesce(string_agg(coalesce(CASE WHEN lang = 'vi' THEN u.name_vi ELSE u.name_en END, a.c), ', '
                             ORDER BY a.o),
                  CASE WHEN lang = 'vi' THEN 'không có' ELSE 'none' END)
  FROM unnest(use_codes) WITH ORDINALITY a (c, o) LEFT JOIN zoning_uses u ON u.code = a.c
$$;

-- The reasons one zone gives against one footprint: height, floors, use, conditional use,
-- coverage, unknown coverage, setback, in that order; empty when every rule holds. `setback_m` is
-- NULL when the setback is not measured (a split footprint, or no setback beyond the tolerance).
-- A single expression with no sub-select, so PostgreSQL inlines it into the calling query; the
-- use names (sub-selects) are only looked up when a use rule is broken.
CREATE FUNCTION zoning_zone_reasons(
  intended_use text, floors integer, height_m numeric, footprint_area_m2 numeric, parcel_area_m2 numeric,
  zone_code text, allowed_uses text[], conditional_uses text[], max_height_m numeric, max_floors integer,
  max_coverage_pct numeric, min_setback_m numeric, setback_m float8, setback_tol float8) RETURNS jsonb[]
LANGUAGE sql STABLE PARALLEL SAFE AS $$
  SELECT array_remove(ARRAY[
    CASE WHEN height_m > max_height_m THEN zoning_reason('height', 'fail', 'zone', zone_code,
      to_jsonb(height_m), to_jsonb(max_height_m), 'm',
      format('chiều cao %s m vượt mức tối đa %s m của khu %s',
             zoning_num(height_m, 'vi'), zoning_num(max_height_m, 'vi'), zone_code),
      format('height %s m exceeds the %s m maximum of zone %s',
             zoning_num(height_m, 'en'), zoning_num(max_height_m, 'en'), zone_code)) END,
    CASE WHEN floors > max_floors THEN zoning_reason('floors', 'fail', 'zone', zone_code,
      to_jsonb(floors), to_jsonb(max_floors), 'floors',
      format('số tầng %s vượt mức tối đa %s tầng của khu %s', floors, max_floors, zone_code),
      format('%s floors exceed the %s-floor maximum of zone %s', floors, max_floors, zone_code)) END,
    CASE WHEN NOT intended_use = ANY (allowed_uses) AND NOT intended_use = ANY (conditional_uses)
      THEN zoning_reason('use', 'fail', 'zone', zone_code, to_jsonb(intended_use), to_jsonb(allowed_uses), NULL,
        format('mục đích sử dụng "%s" không được phép trong khu %s (được phép: %s)',
               zoning_use_name(intended_use, 'vi'), zone_code, zoning_use_names(allowed_uses, 'vi')),
        format('use "%s" is not allowed in zone %s (allowed: %s)',
               zoning_use_name(intended_use, 'en'), zone_code, zoning_use_names(allowed_uses, 'en'))) END,
    CASE WHEN intended_use = ANY (conditional_uses) AND NOT intended_use = ANY (allowed_uses)
      THEN zoning_reason('conditional_use', 'review', 'zone', zone_code, to_jsonb(intended_use),
        to_jsonb(conditional_uses), NULL,
        format('mục đích sử dụng "%s" chỉ được phép có điều kiện trong khu %s: cần xem xét',
               zoning_use_name(intended_use, 'vi'), zone_code),
        format('use "%s" is only conditionally allowed in zone %s: needs review',
               zoning_use_name(intended_use, 'en'), zone_code)) END,
    -- Coverage compared without division, so a permit exactly at the limit passes exactly.
    CASE WHEN parcel_area_m2 > 0 AND footprint_area_m2 * 100 > max_coverage_pct * parcel_area_m2
      THEN zoning_reason('coverage', 'fail', 'zone', zone_code,
        to_jsonb(round(footprint_area_m2 * 100 / parcel_area_m2, 2)), to_jsonb(max_coverage_pct), '%',
        format('mật độ xây dựng %s%% vượt mức tối đa %s%% của khu %s',
               zoning_num(round(footprint_area_m2 * 100 / parcel_area_m2, 2), 'vi'),
               zoning_num(max_coverage_pct, 'vi'), zone_code),
        format('building coverage %s%% exceeds the %s%% maximum of zone %s',
               zoning_num(round(footprint_area_m2 * 100 / parcel_area_m2, 2), 'en'),
               zoning_num(max_coverage_pct, 'en'), zone_code)) END,
    CASE WHEN max_coverage_pct IS NOT NULL AND parcel_area_m2 IS NULL
      THEN zoning_reason('coverage_unknown', 'review', 'zone', zone_code, 'null', to_jsonb(max_coverage_pct), '%',
        format('chưa có diện tích thửa đất nên chưa kiểm tra được mật độ xây dựng (tối đa %s%% của khu %s)',
               zoning_num(max_coverage_pct, 'vi'), zone_code),
        format('no parcel area given, so coverage cannot be checked against the %s%% maximum of zone %s',
               zoning_num(max_coverage_pct, 'en'), zone_code)) END,
    CASE WHEN setback_m < min_setback_m - setback_tol
      THEN zoning_reason('setback', 'fail', 'zone', zone_code, to_jsonb(round(setback_m::numeric, 2)),
        to_jsonb(min_setback_m), 'm',
        format('khoảng lùi %s m nhỏ hơn mức tối thiểu %s m của khu %s',
               zoning_num(round(setback_m::numeric, 2), 'vi'), zoning_num(min_setback_m, 'vi'), zone_code),
        format('setback %s m is less than the %s m minimum of zone %s',
               zoning_num(round(setback_m::numeric, 2), 'en'), zoning_num(min_setback_m, 'en'), zone_code)) END
  ], NULL)
$$;

-- The check of 0011 for any set of subjects, unchanged but for the setback (measured as above)
-- and the zone rules, now zoning_zone_reasons.
CREATE OR REPLACE FUNCTION zoning_evaluate(subjects zoning_subject[], p_sliver_m2 numeric DEFAULT NULL)
RETURNS TABLE (subject_id bigint, verdict text, decision_nos text[], zones jsonb, overlays jsonb, reasons jsonb)
-- JIT compilation costs more (about 100 ms) than the whole check of a few thousand permits.
LANGUAGE sql STABLE SET jit = off AS $$
WITH tol AS (
  SELECT coalesce(p_sliver_m2, t.sliver_m2)::float8 AS sliver, t.setback_tolerance_m::float8 AS setback_tol,
         t.metric_srid AS srid
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
         zoning_zone_reasons(h.intended_use, h.floors, h.height_m, h.footprint_area_m2, h.parcel_area_m2,
                             h.zone_code, h.allowed_uses, h.conditional_uses, h.max_height_m, h.max_floors,
                             h.max_coverage_pct, h.min_setback_m, d.m, tol.setback_tol) AS reasons
  FROM hits h CROSS JOIN tol
  -- the setback of a footprint in one zone, as zoning_check_permits measures it (see there)
  LEFT JOIN LATERAL (
    SELECT CASE WHEN l.m < (h.min_setback_m - tol.setback_tol) * 1.01 + 0.01
                THEN ST_Distance(ST_Transform(h.geom, tol.srid), ST_Transform(ST_Boundary(h.zgeom), tol.srid))
                ELSE l.m END AS m
    FROM (SELECT ST_Distance(ST_Scale(h.geom, k.x, k.y), ST_Scale(ST_Boundary(h.zgeom), k.x, k.y)) AS m
          FROM (SELECT 111412.84 * cos(radians(c.lat)) - 93.5 * cos(radians(3 * c.lat)) AS x,
                       111132.92 - 559.82 * cos(radians(2 * c.lat)) + 1.175 * cos(radians(4 * c.lat)) AS y
                FROM (SELECT (ST_YMin(h.geom) + ST_YMax(h.geom)) / 2 AS lat) c) k OFFSET 0) l
    WHERE h.nzones = 1 AND h.min_setback_m > tol.setback_tol
    OFFSET 0   -- measured once, not once per mention
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

-- Check stored permits by id and keep the results; returns how many got each verdict. The short
-- path (see the top of this file) for a footprint wholly inside one zone in force and away from
-- every overlay; zoning_evaluate for the rest. Same verdicts, zones and reasons either way.
CREATE OR REPLACE FUNCTION zoning_check_permits(ids bigint[], p_sliver_m2 numeric DEFAULT NULL)
RETURNS TABLE (verdict text, n bigint)
LANGUAGE sql SET jit = off AS $$
  WITH tol AS (
    SELECT t.setback_tolerance_m::float8 AS setback_tol, t.metric_srid AS srid FROM zoning_tolerances t LIMIT 1
  ),
  p AS MATERIALIZED (
    SELECT p.id, p.geom, p.intended_use, p.floors, p.height_m, p.footprint_area_m2, p.parcel_area_m2, p.applied_on
    FROM building_permits p WHERE p.id = ANY (ids)
  ),
  -- Footprints that may reach an overlay: a piece of one in a grid cell of the footprint's box
  -- (the cells first, so that the pieces are found by a hash join on the cell, never a scan each).
  cells AS MATERIALIZED (
    SELECT p.id, p.geom, zoning_cell(ix, iy) AS cell
    FROM p
    CROSS JOIN LATERAL generate_series(floor(ST_XMin(p.geom) / 0.01)::int, floor(ST_XMax(p.geom) / 0.01)::int) ix
    CROSS JOIN LATERAL generate_series(floor(ST_YMin(p.geom) / 0.01)::int, floor(ST_YMax(p.geom) / 0.01)::int) iy
  ),
  near_overlay AS MATERIALIZED (
    SELECT DISTINCT s.id
    FROM cells s JOIN zoning_overlay_cells c ON c.cell = s.cell
    WHERE ST_Intersects(s.geom, c.geom)
  ),
  -- The short path: the newest zone in force that covers the footprint, found by the GiST index.
  inside AS MATERIALIZED (
    SELECT p.*, z.*
    FROM p
    CROSS JOIN LATERAL (
      SELECT z.id AS zid, z.zone_code, z.zone_type, z.decision_no, z.plan_name, z.allowed_uses, z.conditional_uses,
             z.max_height_m, z.max_floors, z.max_coverage_pct, z.min_setback_m, z.geom AS zgeom
      FROM landuse_zones z
      WHERE ST_CoveredBy(p.geom, z.geom)
        AND z.valid_from <= p.applied_on AND (z.valid_to IS NULL OR p.applied_on < z.valid_to)
      ORDER BY z.valid_from DESC, z.id LIMIT 1
    ) z
    WHERE NOT EXISTS (SELECT 1 FROM near_overlay o WHERE o.id = p.id)
  ),
  inside_checked AS MATERIALIZED (
    SELECT i.id, i.decision_no,
           jsonb_build_object('id', i.zid, 'zone_code', i.zone_code, 'zone_type', i.zone_type,
                              'decision_no', i.decision_no, 'plan_name', i.plan_name,
                              'share', round(1::numeric, 4)) AS zone,
           zoning_zone_reasons(i.intended_use, i.floors, i.height_m, i.footprint_area_m2, i.parcel_area_m2,
                               i.zone_code, i.allowed_uses, i.conditional_uses, i.max_height_m, i.max_floors,
                               i.max_coverage_pct, i.min_setback_m, d.m, tol.setback_tol) AS reasons
    FROM inside i CROSS JOIN tol
    -- Setback from the zone's edge (the block's street line) in metres of tol.srid: first on the
    -- local plane (degrees scaled by the WGS 84 metres per degree at the footprint's latitude,
    -- written out so that nothing here is a function call), then, near or under the limit,
    -- projected and measured again.
    LEFT JOIN LATERAL (
      SELECT CASE WHEN l.m < (i.min_setback_m - tol.setback_tol) * 1.01 + 0.01
                  THEN ST_Distance(ST_Transform(i.geom, tol.srid), ST_Transform(ST_Boundary(i.zgeom), tol.srid))
                  ELSE l.m END AS m
      FROM (SELECT ST_Distance(ST_Scale(i.geom, k.x, k.y), ST_Scale(ST_Boundary(i.zgeom), k.x, k.y)) AS m
            FROM (SELECT 111412.84 * cos(radians(c.lat)) - 93.5 * cos(radians(3 * c.lat)) AS x,
                         111132.92 - 559.82 * cos(radians(2 * c.lat)) + 1.175 * cos(radians(4 * c.lat)) AS y
                  FROM (SELECT (ST_YMin(i.geom) + ST_YMax(i.geom)) / 2 AS lat) c) k OFFSET 0) l
      WHERE i.min_setback_m > tol.setback_tol
      OFFSET 0   -- measured once, not once per mention
    ) d ON true
  ),
  results AS (
    SELECT i.id AS permit_id,
           CASE WHEN cardinality(i.reasons) = 0 THEN 'compliant'
                WHEN EXISTS (SELECT 1 FROM unnest(i.reasons) x WHERE x->>'severity' = 'fail') THEN 'non_compliant'
                ELSE 'needs_review' END AS verdict,
           ARRAY[i.decision_no] AS decision_nos, jsonb_build_array(i.zone) AS zones, '[]'::jsonb AS overlays,
           CASE WHEN cardinality(i.reasons) = 0 THEN '[]'::jsonb ELSE to_jsonb(i.reasons) END AS reasons
    FROM inside_checked i
    UNION ALL
    SELECT e.subject_id, e.verdict, e.decision_nos, e.zones, e.overlays, e.reasons
    FROM zoning_evaluate(ARRAY(
      SELECT ROW(p.id, p.geom, p.intended_use, p.floors, p.height_m, p.footprint_area_m2, p.parcel_area_m2,
                 p.applied_on)::zoning_subject
      FROM p WHERE NOT EXISTS (SELECT 1 FROM inside i WHERE i.id = p.id)), p_sliver_m2) e
  ),
  done AS (
    INSERT INTO permit_checks AS c (permit_id, checked_at, verdict, decision_nos, zones, overlays, reasons)
    SELECT r.permit_id, now(), r.verdict, r.decision_nos, r.zones, r.overlays, r.reasons FROM results r
    ON CONFLICT (permit_id) DO UPDATE SET
      checked_at = EXCLUDED.checked_at, verdict = EXCLUDED.verdict, decision_nos = EXCLUDED.decision_nos,
      zones = EXCLUDED.zones, overlays = EXCLUDED.overlays, reasons = EXCLUDED.reasons
    RETURNING c.verdict
  )
  SELECT done.verdict, count(*) FROM done GROUP BY done.verdict
$$;

GRANT EXECUTE ON FUNCTION zoning_use_name(text, text), zoning_use_names(text[], text),
  zoning_zone_reasons(text, integer, numeric, numeric, numeric, text, text[], text[], numeric, integer, numeric,
                      numeric, float8, float8) TO iocgis_read;
