-- The bulk zoning check made leaner: every footprint wholly inside a zone in force takes the
-- short path of zoning_check_permits, overlays or not, and only the footprints no zone covers go
-- through zoning_evaluate.
--
-- Measured before this (EXPLAIN ANALYZE and perf of the backends, bench/zoning_check.py): 0020 sent
-- a footprint to zoning_evaluate as soon as it touched a grid cell holding a piece of an overlay,
-- although a zone covered it, and zoning_evaluate spent 150-200 us (under EXPLAIN ANALYZE) on each
-- subject: the zone lookup again, the generic assembly of parts grouped per subject, and use names
-- looked up by SQL functions (below). The overlays of a set of footprints are now measured by one
-- function, zoning_overlay_part, used by both zoning_evaluate and the short path, so that the two
-- still cannot drift apart; the short path appends the overlays' reasons to the zone's, in the
-- order zoning_evaluate gives them. The reasons of a split footprint now come in a fixed order
-- (the split, then each zone's, zones by share), which 0020 left to the plan.
--
-- The effect is modest: a bulk check of 100,000 permits costs about 5.4 s of CPU instead of 5.6 s
-- with two connections (4.8 s instead of 5.5 s on one); bench/zoning_check.py says where the rest
-- goes.

-- The reasons one zone gives against one footprint, as zoning_zone_reasons of 0017, but with the
-- names of the uses passed in. In 0017 they were looked up by zoning_use_name(s), SQL functions
-- with a sub-select that PostgreSQL runs through a fresh executor on every call: about 20 us each,
-- four calls for every zone whose use rule a footprint breaks, which is most pieces of a footprint
-- split across zones of different types. Callers now join zoning_uses, and name each distinct
-- list of allowed uses once per query.
CREATE FUNCTION zoning_zone_reasons(
  intended_use text, floors integer, height_m numeric, footprint_area_m2 numeric, parcel_area_m2 numeric,
  zone_code text, allowed_uses text[], conditional_uses text[], max_height_m numeric, max_floors integer,
  max_coverage_pct numeric, min_setback_m numeric, setback_m float8, setback_tol float8,
  use_name_vi text, use_name_en text, allowed_names_vi text, allowed_names_en text) RETURNS jsonb[]
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
               use_name_vi, zone_code, allowed_names_vi),
        format('use "%s" is not allowed in zone %s (allowed: %s)',
               use_name_en, zone_code, allowed_names_en)) END,
    CASE WHEN intended_use = ANY (conditional_uses) AND NOT intended_use = ANY (allowed_uses)
      THEN zoning_reason('conditional_use', 'review', 'zone', zone_code, to_jsonb(intended_use),
        to_jsonb(conditional_uses), NULL,
        format('mục đích sử dụng "%s" chỉ được phép có điều kiện trong khu %s: cần xem xét',
               use_name_vi, zone_code),
        format('use "%s" is only conditionally allowed in zone %s: needs review',
               use_name_en, zone_code)) END,
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


-- The overlays each subject reaches by at least p_sliver m² (areas in p_srid): one row per
-- subject, with its overlays as JSON and their reasons (forbid and review first, then restrict's
-- height and floors, each by overlay code). Subjects touching no overlay give no row.
CREATE FUNCTION zoning_overlay_part(subjects zoning_subject[], p_sliver float8, p_srid integer)
RETURNS TABLE (sid bigint, overlays jsonb, reasons jsonb[])
LANGUAGE sql STABLE PARALLEL SAFE SET jit = off AS $$
-- Candidate overlays of each subject: the grid cells its box touches, hash-joined to the cells of
-- the overlays (zoning_overlay_cells), then the exact test against the piece in the cell. Each
-- step carries the subject's columns along: joined back to the subjects by id, the planner, blind
-- to their number, would pick nested loops or hash every subject. (generate_series costs more
-- than everything else here: a footprint within one cell, nearly every one, has its cell computed
-- directly.)
WITH sbox AS MATERIALIZED (
  SELECT u.id, u.geom, u.height_m, u.floors, u.applied_on,
         floor(ST_XMin(u.geom) / 0.01)::int AS x0, floor(ST_XMax(u.geom) / 0.01)::int AS x1,
         floor(ST_YMin(u.geom) / 0.01)::int AS y0, floor(ST_YMax(u.geom) / 0.01)::int AS y1
  FROM unnest(subjects) u
),
scell AS MATERIALIZED (
  SELECT b.*, zoning_cell(b.x0, b.y0) AS cell FROM sbox b WHERE b.x0 = b.x1 AND b.y0 = b.y1
  UNION ALL
  SELECT b.*, zoning_cell(ix, iy)
  FROM sbox b
  CROSS JOIN LATERAL generate_series(b.x0, b.x1) ix
  CROSS JOIN LATERAL generate_series(b.y0, b.y1) iy
  WHERE b.x0 <> b.x1 OR b.y0 <> b.y1
),
touching AS MATERIALIZED (
  SELECT sc.id AS sid, sc.geom, sc.height_m, sc.floors, sc.applied_on, c.overlay_id, c.geom AS cgeom
  FROM scell sc JOIN zoning_overlay_cells c ON c.cell = sc.cell
  WHERE ST_Intersects(sc.geom, c.geom)
),
-- The footprint's area in each overlay (the sum over the overlay's pieces in the cells it
-- touches), in the metric projection.
ov AS MATERIALIZED (
  SELECT o.id AS oid, o.code, o.kind, o.name_vi, o.name_en, o.effect, o.max_height_m, o.max_floors,
         a.sid, a.height_m, a.floors, a.area_m2, a.area_m2 / nullif(a.total_m2, 0) AS share
  FROM (
    SELECT t.sid, t.overlay_id, t.height_m, t.floors, t.applied_on, min(ST_Area(m.gm)) AS total_m2,
           sum(CASE WHEN ST_CoveredBy(t.geom, t.cgeom) THEN ST_Area(m.gm)
                    ELSE ST_Area(ST_Intersection(m.gm, ST_Transform(t.cgeom, p_srid))) END) AS area_m2
    FROM touching t CROSS JOIN LATERAL (SELECT ST_Transform(t.geom, p_srid) AS gm OFFSET 0) m
    GROUP BY t.sid, t.overlay_id, t.height_m, t.floors, t.applied_on
  ) a
  JOIN zoning_overlays o
    ON o.id = a.overlay_id AND o.valid_from <= a.applied_on AND (o.valid_to IS NULL OR a.applied_on < o.valid_to)
  WHERE a.area_m2 >= p_sliver
)
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
$$;

-- zoning_evaluate as in 0020, its overlays now from zoning_overlay_part; and given the memory to
-- keep a few thousand subjects' pieces in memory rather than in temporary files.
CREATE OR REPLACE FUNCTION zoning_evaluate(subjects zoning_subject[], p_sliver_m2 numeric DEFAULT NULL,
                                           p_uncovered bigint[] DEFAULT '{}')
RETURNS TABLE (subject_id bigint, verdict text, decision_nos text[], zones jsonb, overlays jsonb, reasons jsonb)
-- JIT compilation costs more (about 100 ms) than the whole check of a few thousand permits.
LANGUAGE sql STABLE SET jit = off SET work_mem = '64MB' AS $$
WITH tol AS (
  SELECT coalesce(p_sliver_m2, t.sliver_m2)::float8 AS sliver, t.setback_tolerance_m::float8 AS setback_tol,
         t.metric_srid AS srid
  FROM zoning_tolerances t LIMIT 1
),
-- each footprint also in the metric projection, where every area and distance is measured
s AS MATERIALIZED (SELECT u.*, ST_Transform(u.geom, tol.srid) AS gm FROM unnest(subjects) u CROSS JOIN tol),
-- The cheap case, nearly every permit: one zone in force covers the footprint. The GiST index
-- finds it (ST_CoveredBy carries a bounding-box test) and no intersection is ever computed.
-- Subjects the caller already knows no zone in force covers skip the test (the bulk check has made it).
uncovered AS MATERIALIZED (SELECT DISTINCT u.id FROM unnest(p_uncovered) u (id)),
cov AS MATERIALIZED (
  SELECT DISTINCT ON (s.id) s.id AS sid, s.geom, s.intended_use, s.floors, s.height_m, s.footprint_area_m2,
         s.parcel_area_m2, 1.0::float8 AS share, 1::bigint AS nzones,
         z.id AS zid, z.zone_code, z.zone_type, z.decision_no, z.plan_name, z.allowed_uses, z.conditional_uses,
         z.max_height_m, z.max_floors, z.max_coverage_pct, z.min_setback_m, z.geom AS zgeom
  FROM (SELECT * FROM s WHERE s.id NOT IN (SELECT u.id FROM uncovered u)) s JOIN landuse_zones z
    ON ST_CoveredBy(s.geom, z.geom)
   AND z.valid_from <= s.applied_on AND (z.valid_to IS NULL OR s.applied_on < z.valid_to)
  ORDER BY s.id, z.valid_from DESC, z.id
),
-- The rest straddles zone edges or leaves the plan: measure each piece, in m² of the metric projection.
rest AS MATERIALIZED (
  SELECT s.*, ST_Area(s.gm) AS area_m2
  FROM s WHERE NOT EXISTS (SELECT 1 FROM cov WHERE cov.sid = s.id)
),
pieces AS MATERIALIZED (
  SELECT r.id AS sid, r.geom, r.intended_use, r.floors, r.height_m, r.footprint_area_m2, r.parcel_area_m2,
         r.area_m2 AS total_m2, z.id AS zid, z.zone_code, z.zone_type, z.decision_no, z.plan_name, z.allowed_uses,
         z.conditional_uses, z.max_height_m, z.max_floors, z.max_coverage_pct, z.min_setback_m, z.geom AS zgeom,
         ST_Area(ST_Intersection(r.gm, ST_Transform(z.geom, tol.srid))) AS area_m2
  FROM rest r CROSS JOIN tol JOIN landuse_zones z
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
-- each distinct list of allowed uses named once
allowed_names AS MATERIALIZED (
  SELECT a.allowed_uses, zoning_use_names(a.allowed_uses, 'vi') AS names_vi,
         zoning_use_names(a.allowed_uses, 'en') AS names_en
  FROM (SELECT DISTINCT h.allowed_uses FROM hits h) a
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
                             h.max_coverage_pct, h.min_setback_m, d.m, tol.setback_tol,
                             coalesce(u.name_vi, h.intended_use), coalesce(u.name_en, h.intended_use),
                             u.names_vi, u.names_en) AS reasons
  FROM hits h CROSS JOIN tol
  -- the names of the uses, looked up only for a piece whose use the zone does not allow
  LEFT JOIN LATERAL (
    SELECT u.name_vi, u.name_en, n.names_vi, n.names_en
    FROM allowed_names n LEFT JOIN zoning_uses u ON u.code = h.intended_use
    WHERE n.allowed_uses = h.allowed_uses AND NOT h.intended_use = ANY (h.allowed_uses)
    OFFSET 0
  ) u ON true
  -- the setback of a footprint in one zone, as zoning_check_permits measures it (see there)
  LEFT JOIN LATERAL (
    SELECT ST_Distance(ST_Transform(h.geom, tol.srid), ST_Transform(ST_Boundary(h.zgeom), tol.srid)) AS m
    WHERE h.nzones = 1 AND h.min_setback_m > tol.setback_tol
    OFFSET 0   -- measured once, not once per mention
  ) d ON true
),
-- `ord` orders the reasons of a split footprint: the split first, then each zone's, zones by share
-- (0020 left the order among them to the plan).
zone_part AS (
  SELECT sid, 0::bigint AS ord, ARRAY[decision_no] AS decision_nos, jsonb_build_array(zone) AS zones, reasons
  FROM hr WHERE nzones = 1
  UNION ALL
  SELECT hr.sid, 0, array_agg(DISTINCT hr.decision_no ORDER BY hr.decision_no),
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
  SELECT sid, row_number() OVER (PARTITION BY sid ORDER BY share DESC, zone_code), NULL, NULL, reasons
  FROM hr WHERE nzones > 1
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
overlay_part AS (
  SELECT o.* FROM tol CROSS JOIN zoning_overlay_part(subjects, tol.sliver, tol.srid) o
),
-- One row per subject from the parts above, grouped rather than joined: the planner cannot know
-- how many subjects came in and would pick nested loops over them.
assembled AS (
  SELECT u.sid,
         max(u.decision_nos) AS decision_nos,
         (array_agg(u.zones) FILTER (WHERE u.zones IS NOT NULL))[1] AS zones,
         (array_agg(u.overlays) FILTER (WHERE u.overlays IS NOT NULL))[1] AS overlays,
         array_agg(r.reason ORDER BY u.part, u.ord, r.n) FILTER (WHERE r.reason IS NOT NULL) AS all_reasons
  FROM (
    SELECT s.id AS sid, 0 AS part, 0::bigint AS ord, NULL::text[] AS decision_nos, NULL::jsonb AS zones,
           NULL::jsonb AS overlays, '{}'::jsonb[] AS reasons FROM s
    UNION ALL SELECT sid, 1, ord, decision_nos, zones, NULL, reasons FROM zone_part
    UNION ALL SELECT sid, 2, 0, NULL, NULL, NULL, ARRAY[reason] FROM outside_part WHERE reason IS NOT NULL
    UNION ALL SELECT sid, 3, 0, NULL, NULL, overlays, reasons FROM overlay_part
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

-- Check stored permits by id and keep the results; returns how many got each verdict. A footprint
-- wholly inside a zone in force is judged here, its overlays measured by zoning_overlay_part; the
-- footprints no zone covers go to zoning_evaluate. Same verdicts, zones, overlays and reasons either way.
CREATE OR REPLACE FUNCTION zoning_check_permits(ids bigint[], p_sliver_m2 numeric DEFAULT NULL)
RETURNS TABLE (verdict text, n bigint)
-- (work_mem: the candidate pairs of a chunk of 5,000 permits, geometries and all, sorted in memory)
LANGUAGE sql SET jit = off SET work_mem = '64MB' AS $$
  WITH tol AS (
    SELECT coalesce(p_sliver_m2, t.sliver_m2)::float8 AS sliver, t.setback_tolerance_m::float8 AS setback_tol,
           t.metric_srid AS srid
    FROM zoning_tolerances t LIMIT 1
  ),
  p AS MATERIALIZED (
    SELECT p.id, p.geom, p.intended_use, p.floors, p.height_m, p.footprint_area_m2, p.parcel_area_m2, p.applied_on
    FROM building_permits p WHERE p.id = ANY (ids)
  ),
  -- Zones in force whose box holds the footprint's box: the only ones that can cover it. Sorted by
  -- zone, so that the exact test below meets each zone's polygon in a run (PostGIS then keeps it
  -- prepared for GEOS rather than rebuilding it per footprint).
  candidates AS MATERIALIZED (
    SELECT p.*, z.id AS zid, z.valid_from, z.geom AS zgeom, z.zone_code, z.zone_type, z.decision_no, z.plan_name,
           z.allowed_uses, z.conditional_uses, z.max_height_m, z.max_floors, z.max_coverage_pct, z.min_setback_m
    FROM p JOIN landuse_zones z
      ON z.geom ~ p.geom
     AND z.valid_from <= p.applied_on AND (z.valid_to IS NULL OR p.applied_on < z.valid_to)
    ORDER BY z.id
  ),
  -- The newest zone in force that covers the footprint (as zoning_evaluate chooses it).
  covering AS MATERIALIZED (
    SELECT DISTINCT ON (c.id) c.*
    FROM candidates c
    WHERE ST_Covers(c.zgeom, c.geom)
    ORDER BY c.id, c.valid_from DESC, c.zid
  ),
  allowed_names AS MATERIALIZED (
    SELECT a.allowed_uses, zoning_use_names(a.allowed_uses, 'vi') AS names_vi,
           zoning_use_names(a.allowed_uses, 'en') AS names_en
    FROM (SELECT DISTINCT c.allowed_uses FROM covering c) a
  ),
  overlaid AS MATERIALIZED (
    SELECT o.*
    FROM tol CROSS JOIN zoning_overlay_part(ARRAY(
      SELECT ROW(c.id, c.geom, c.intended_use, c.floors, c.height_m, c.footprint_area_m2, c.parcel_area_m2,
                 c.applied_on)::zoning_subject FROM covering c), tol.sliver, tol.srid) o
  ),
  -- The setback from the zone's edge (the block's street line), in metres of tol.srid: measured in
  -- a step of its own, as zoning_zone_reasons mentions it several times and PostgreSQL would not
  -- inline the function around an expensive argument.
  measured AS MATERIALIZED (
    SELECT c.*,
           CASE WHEN c.min_setback_m > tol.setback_tol
                THEN ST_Distance(ST_Transform(c.geom, tol.srid), ST_Transform(ST_Boundary(c.zgeom), tol.srid)) END
             AS setback_m
    FROM covering c CROSS JOIN tol
  ),
  inside_checked AS MATERIALIZED (
    SELECT c.id, c.decision_no,
           jsonb_build_object('id', c.zid, 'zone_code', c.zone_code, 'zone_type', c.zone_type,
                              'decision_no', c.decision_no, 'plan_name', c.plan_name,
                              'share', round(1::numeric, 4)) AS zone,
           o.overlays,
           zoning_zone_reasons(c.intended_use, c.floors, c.height_m, c.footprint_area_m2, c.parcel_area_m2,
                               c.zone_code, c.allowed_uses, c.conditional_uses, c.max_height_m, c.max_floors,
                               c.max_coverage_pct, c.min_setback_m, c.setback_m, tol.setback_tol,
                               coalesce(u.name_vi, c.intended_use), coalesce(u.name_en, c.intended_use),
                               u.names_vi, u.names_en)
           || coalesce(o.reasons, '{}') AS reasons
    FROM measured c
    CROSS JOIN tol
    -- the names of the uses, looked up only for a footprint whose use the zone does not allow
    LEFT JOIN LATERAL (
      SELECT u.name_vi, u.name_en, n.names_vi, n.names_en
      FROM allowed_names n LEFT JOIN zoning_uses u ON u.code = c.intended_use
      WHERE n.allowed_uses = c.allowed_uses AND NOT c.intended_use = ANY (c.allowed_uses)
      OFFSET 0
    ) u ON true
    LEFT JOIN overlaid o ON o.sid = c.id
  ),
  results AS (
    SELECT i.id AS permit_id,
           CASE WHEN cardinality(i.reasons) = 0 THEN 'compliant'
                WHEN EXISTS (SELECT 1 FROM unnest(i.reasons) x WHERE x->>'severity' = 'fail') THEN 'non_compliant'
                ELSE 'needs_review' END AS verdict,
           ARRAY[i.decision_no] AS decision_nos, jsonb_build_array(i.zone) AS zones,
           coalesce(i.overlays, '[]'::jsonb) AS overlays,
           CASE WHEN cardinality(i.reasons) = 0 THEN '[]'::jsonb ELSE to_jsonb(i.reasons) END AS reasons
    FROM inside_checked i
    UNION ALL
    SELECT e.subject_id, e.verdict, e.decision_nos, e.zones, e.overlays, e.reasons
    FROM zoning_evaluate(ARRAY(
      SELECT ROW(p.id, p.geom, p.intended_use, p.floors, p.height_m, p.footprint_area_m2, p.parcel_area_m2,
                 p.applied_on)::zoning_subject
      FROM p WHERE p.id NOT IN (SELECT c.id FROM covering c)), p_sliver_m2,
      ARRAY(SELECT p.id FROM p WHERE p.id NOT IN (SELECT c.id FROM covering c))) e
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

GRANT EXECUTE ON FUNCTION zoning_overlay_part(zoning_subject[], float8, integer),
  zoning_zone_reasons(text, integer, numeric, numeric, numeric, text, text[], text[], numeric, integer, numeric,
                      numeric, float8, float8, text, text, text, text) TO iocgis_read;

-- 0017's zoning_zone_reasons: every caller now uses the one at the top of this file
DROP FUNCTION zoning_zone_reasons(text, integer, numeric, numeric, numeric, text, text[], text[], numeric, integer,
                                   numeric, numeric, float8, float8);
