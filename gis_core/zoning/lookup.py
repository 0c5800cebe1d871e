"""What the /permits page asks: permits found by number, address or commune (typed with or without
diacritics), and one permit with its check, the zones and overlays around it, and its neighbours
coloured by verdict. GeoJSON is built by PostGIS; only public permit fields leave here."""

from __future__ import annotations

import json

import psycopg
import shapely
from psycopg.rows import dict_row

from ..errors import InvalidParameter, NotFound
from ..rows import one
from ..text import unaccent

MAX_QUERY = 100

# Exact permit numbers first, then addresses and communes; the trigram index on admin_units and
# the ILIKE on the unaccented address keep "sa pa" finding "Sa Pa".
SEARCH = """
WITH q AS (SELECT %(q)s::text AS q, %(pattern)s::text AS pattern)
SELECT p.id, p.permit_no, p.address, p.commune_code, a.name AS commune, p.intended_use, p.applied_on, p.status,
       c.verdict, ST_XMin(p.geom) AS west, ST_YMin(p.geom) AS south, ST_XMax(p.geom) AS east, ST_YMax(p.geom) AS north
FROM q, building_permits p
JOIN admin_units a ON a.code = p.commune_code
LEFT JOIN permit_checks c ON c.permit_id = p.id
WHERE lower(p.permit_no) = q.q
   OR lower(p.permit_no) LIKE q.pattern ESCAPE '\\'
   OR p.address_unaccent LIKE q.pattern ESCAPE '\\'
   OR a.name_unaccent LIKE q.pattern ESCAPE '\\'
ORDER BY lower(p.permit_no) = q.q DESC, a.name_unaccent = q.q DESC, p.applied_on DESC, p.id DESC
LIMIT %(limit)s
"""

PERMIT = """
SELECT p.id, p.permit_no, p.address, p.commune_code, a.name AS commune, p.intended_use, p.floors,
       p.height_m::float8 AS height_m, p.footprint_area_m2::float8 AS footprint_area_m2,
       p.parcel_area_m2::float8 AS parcel_area_m2, p.status, p.applied_on, p.issued_on,
       ST_AsGeoJSON(p.geom, 7)::json AS geometry,
       ST_AsGeoJSON(ST_Expand(p.geom, 0.004), 7)::json AS around,
       c.verdict, c.decision_nos, c.zones, c.overlays, c.reasons, c.checked_at
FROM building_permits p
JOIN admin_units a ON a.code = p.commune_code
LEFT JOIN permit_checks c ON c.permit_id = p.id
WHERE p.id = %s
"""

LIVE = """
SELECT e.verdict, e.decision_nos, e.zones, e.overlays, e.reasons, NULL::timestamptz AS checked_at
FROM building_permits p
CROSS JOIN LATERAL zoning_evaluate(ARRAY[ROW(p.id, p.geom, p.intended_use, p.floors, p.height_m,
    p.footprint_area_m2, p.parcel_area_m2, p.applied_on)::zoning_subject]) e
WHERE p.id = %s
"""

# Zones in force on the day, overlays, and other permits within `around` of a point of interest.
AROUND = """
WITH box AS (SELECT ST_Expand(ST_SetSRID(ST_GeomFromWKB(%(wkb)s), 4326), %(pad)s) AS g)
SELECT json_build_object(
  'zones', (SELECT coalesce(json_agg(json_build_object(
              'type', 'Feature', 'geometry', ST_AsGeoJSON(z.geom, 6)::json,
              'properties', json_build_object('id', z.id, 'zone_code', z.zone_code, 'zone_type', z.zone_type,
                                              'decision_no', z.decision_no, 'max_height_m', z.max_height_m,
                                              'max_floors', z.max_floors, 'max_coverage_pct', z.max_coverage_pct,
                                              'min_setback_m', z.min_setback_m,
                                              'allowed_uses', z.allowed_uses))), '[]')
            FROM landuse_zones z, box
            WHERE z.geom && box.g AND z.valid_from <= %(day)s AND (z.valid_to IS NULL OR %(day)s < z.valid_to)),
  'overlays', (SELECT coalesce(json_agg(json_build_object(
              'type', 'Feature', 'geometry', ST_AsGeoJSON(o.geom, 6)::json,
              'properties', json_build_object('id', o.id, 'code', o.code, 'kind', o.kind, 'effect', o.effect,
                                              'name_vi', o.name_vi, 'name_en', o.name_en))), '[]')
            FROM zoning_overlays o, box
            WHERE o.geom && box.g AND o.valid_from <= %(day)s AND (o.valid_to IS NULL OR %(day)s < o.valid_to)),
  'permits', (SELECT coalesce(json_agg(json_build_object(
              'type', 'Feature', 'geometry', ST_AsGeoJSON(p.geom, 7)::json,
              'properties', json_build_object('id', p.id, 'permit_no', p.permit_no, 'verdict', c.verdict))), '[]')
            FROM building_permits p LEFT JOIN permit_checks c ON c.permit_id = p.id, box
            WHERE p.geom && box.g AND p.id IS DISTINCT FROM %(exclude)s))
"""


def search_permits(conn: psycopg.Connection, text: str, limit: int = 20) -> list[dict]:
    query = unaccent(text or "")
    if not query:
        raise InvalidParameter("Cần nhập số giấy phép, địa chỉ hoặc tên xã (q).",
                               "A permit number, address or commune is required (q).")
    if len(query) > MAX_QUERY:
        raise InvalidParameter(f"Nội dung tìm kiếm dài quá {MAX_QUERY} ký tự.",
                               f"The search text is longer than {MAX_QUERY} characters.")
    if not 1 <= limit <= 100:
        raise InvalidParameter("limit phải từ 1 đến 100.", "limit must be between 1 and 100.")
    pattern = "%" + query.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(SEARCH, {"q": query, "pattern": pattern, "limit": limit}).fetchall()
    for r in rows:
        r["bbox"] = [r.pop("west"), r.pop("south"), r.pop("east"), r.pop("north")]
    return rows


def permit_detail(conn: psycopg.Connection, permit_id: int) -> dict:
    """The permit (public fields), its latest check (or a live one when never checked), and the
    zones, overlays and neighbouring permits around it."""
    with conn.cursor(row_factory=dict_row) as cur:
        row = cur.execute(PERMIT, (permit_id,)).fetchone()
        if row is None:
            raise NotFound(f"Không có giấy phép mã {permit_id}.", f"No permit with id {permit_id}.")
        if row["verdict"] is None:
            row.update(cur.execute(LIVE, (permit_id,)).fetchone() or {})
            row["stored"] = False
        else:
            row["stored"] = True
    around = row.pop("around")
    row["context"] = context(conn, shapely.from_geojson(json.dumps(around)), row["applied_on"], exclude=permit_id)
    return row


def context(conn: psycopg.Connection, geom, day, exclude: int | None = None, pad: float = 0.0) -> dict:
    return one(conn.execute(AROUND, {"wkb": shapely.to_wkb(geom), "pad": pad, "day": day,
                                 "exclude": exclude}))[0]
