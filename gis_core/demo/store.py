"""Writing the demo into PostGIS: COPY into temporary staging tables, then one INSERT ... SELECT per
table, all inside the caller's transaction. Geometry travels as hex WKB (polygons) or lon/lat
(points) and is built and typed by PostGIS."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import psycopg
from psycopg import sql

from ..rows import one

GENERATED = "generated:demo"

# Staging tables: (column, type). Types are fixed text here, never input.
STAGING: dict[str, tuple[tuple[str, str], ...]] = {
    "demo_stage_units": (
        ("code", "text"), ("parent_code", "text"), ("level", "text"), ("kind", "text"), ("name", "text"),
        ("name_en", "text"), ("full_name", "text"), ("full_name_en", "text"), ("name_unaccent", "text"),
        ("area_km2", "numeric"), ("wkb", "text")),
    "demo_stage_zones": (
        ("ord", "integer"), ("plan_name", "text"), ("decision_no", "text"), ("decision_date", "date"),
        ("zone_code", "text"), ("zone_type", "text"), ("allowed_uses", "text[]"),
        ("conditional_uses", "text[]"), ("max_height_m", "numeric"), ("max_floors", "integer"),
        ("max_coverage_pct", "numeric"), ("min_setback_m", "numeric"), ("commune_code", "text"),
        ("valid_from", "date"), ("wkb", "text")),
    "demo_stage_permits": (
        ("chunk", "integer"), ("ord", "integer"), ("applicant_name", "text"), ("applicant_id_no", "text"),
        ("address", "text"), ("address_unaccent", "text"), ("commune_code", "text"), ("intended_use", "text"),
        ("floors", "integer"), ("height_m", "numeric"), ("footprint_area_m2", "numeric"),
        ("parcel_area_m2", "numeric"), ("status", "text"), ("applied_on", "date"), ("issued_on", "date"),
        ("expires_on", "date"), ("wkb", "text")),
    "demo_stage_schools": (
        ("code", "text"), ("name", "text"), ("name_unaccent", "text"), ("level", "text"),
        ("ownership", "text"), ("students", "integer"), ("address", "text"), ("commune_code", "text"),
        ("lon", "double precision"), ("lat", "double precision")),
    "demo_stage_clinics": (
        ("code", "text"), ("name", "text"), ("name_unaccent", "text"), ("kind", "text"), ("beds", "integer"),
        ("address", "text"), ("commune_code", "text"), ("lon", "double precision"),
        ("lat", "double precision")),
    "demo_stage_cameras": (
        ("code", "text"), ("name", "text"), ("kind", "text"), ("status", "text"), ("last_seen", "timestamptz"),
        ("heartbeat_interval_s", "integer"), ("stream_url", "text"), ("ai_enabled", "boolean"),
        ("commune_code", "text"), ("lon", "double precision"), ("lat", "double precision")),
    "demo_stage_incidents": (
        ("chunk", "integer"), ("ord", "integer"), ("category", "text"), ("source", "text"), ("status", "text"),
        ("reported", "double precision"), ("due", "double precision"), ("resolved", "double precision"),
        ("commune_code", "text"), ("camera_code", "text"), ("description", "text"), ("reporter_name", "text"),
        ("reporter_contact", "text"), ("lon", "double precision"), ("lat", "double precision")),
    "demo_stage_values": (
        ("indicator_code", "text"), ("unit_code", "text"), ("period", "date"), ("value", "numeric")),
}

INSERT_UNITS = """
INSERT INTO admin_units AS a (code, parent_code, level, kind, name, name_en, full_name, full_name_en,
                              name_unaccent, area_km2, valid_from, source, geom)
SELECT code, parent_code, level, kind, name, name_en, full_name, full_name_en, name_unaccent, area_km2,
       %(valid_from)s, %(source)s,
       ST_Multi(ST_GeomFromWKB(decode(wkb, 'hex'), 4326))::geometry(MultiPolygon, 4326)
FROM demo_stage_units
ORDER BY level <> 'province', code
ON CONFLICT (code) DO UPDATE SET
  parent_code = EXCLUDED.parent_code, level = EXCLUDED.level, kind = EXCLUDED.kind, name = EXCLUDED.name,
  name_en = EXCLUDED.name_en, full_name = EXCLUDED.full_name, full_name_en = EXCLUDED.full_name_en,
  name_unaccent = EXCLUDED.name_unaccent, area_km2 = EXCLUDED.area_km2, valid_from = EXCLUDED.valid_from,
  valid_to = NULL, geom = EXCLUDED.geom
  WHERE a.source = EXCLUDED.source          -- never overwrite boundaries someone loaded from elsewhere
"""

INSERT_ZONES = """
INSERT INTO landuse_zones (plan_name, decision_no, decision_date, zone_code, zone_type, allowed_uses,
                           conditional_uses, max_height_m, max_floors, max_coverage_pct, min_setback_m,
                           commune_code, valid_from, source, geom)
SELECT plan_name, decision_no, decision_date, zone_code, zone_type, allowed_uses, conditional_uses,
       max_height_m, max_floors, max_coverage_pct, min_setback_m, commune_code, valid_from, %(source)s,
       ST_Multi(ST_GeomFromWKB(decode(wkb, 'hex'), 4326))::geometry(MultiPolygon, 4326)
FROM demo_stage_zones ORDER BY ord
"""

# Numbers run per year in order of application: GPXD-2025-000123. Years and dates are local (UTC+7).
INSERT_PERMITS = """
INSERT INTO building_permits (permit_no, applicant_name, applicant_id_no, address, address_unaccent,
                              commune_code, intended_use, floors, height_m, footprint_area_m2, parcel_area_m2,
                              status, applied_on, issued_on, expires_on, source, geom)
SELECT 'GPXD-' || y || '-' || lpad(n::text, greatest(6, length(n::text)), '0'),
       applicant_name, applicant_id_no, address, address_unaccent, commune_code, intended_use,
       floors, height_m, footprint_area_m2, parcel_area_m2, status, applied_on, issued_on, expires_on,
       %(source)s, ST_Multi(ST_GeomFromWKB(decode(wkb, 'hex'), 4326))::geometry(MultiPolygon, 4326)
FROM (SELECT s.*, extract(year FROM s.applied_on)::int AS y,
             row_number() OVER (PARTITION BY extract(year FROM s.applied_on) ORDER BY s.applied_on, s.chunk, s.ord) AS n
      FROM demo_stage_permits s) s
ORDER BY applied_on, chunk, ord
"""

INSERT_SCHOOLS = """
INSERT INTO schools (code, name, name_unaccent, level, ownership, students, address, commune_code, source, geom)
SELECT code, name, name_unaccent, level, ownership, students, address, commune_code, %(source)s,
       ST_SetSRID(ST_MakePoint(lon, lat), 4326)
FROM demo_stage_schools ORDER BY code
"""

INSERT_CLINICS = """
INSERT INTO clinics (code, name, name_unaccent, kind, beds, address, commune_code, source, geom)
SELECT code, name, name_unaccent, kind, beds, address, commune_code, %(source)s,
       ST_SetSRID(ST_MakePoint(lon, lat), 4326)
FROM demo_stage_clinics ORDER BY code
"""

INSERT_CAMERAS = """
INSERT INTO cameras (code, name, kind, status, last_seen, heartbeat_interval_s, stream_url, ai_enabled,
                     commune_code, source, geom)
SELECT code, name, kind, status, last_seen, heartbeat_interval_s, stream_url, ai_enabled, commune_code,
       %(source)s, ST_SetSRID(ST_MakePoint(lon, lat), 4326)
FROM demo_stage_cameras ORDER BY code
"""

# Camera events find their camera by code: ids exist only once the cameras are in. Ticket codes run
# per (local, UTC+7) year in order of reporting: PA-2026-000123.
INSERT_INCIDENTS = """
INSERT INTO incidents (ticket_code, category, source, status, reported_at, due_at, resolved_at, commune_code,
                       camera_id, description, reporter_name, reporter_contact, data_source, geom)
SELECT 'PA-' || s.y || '-' || lpad(s.n::text, greatest(6, length(s.n::text)), '0'),
       s.category, s.source, s.status, to_timestamp(s.reported), to_timestamp(s.due),
       to_timestamp(s.resolved), s.commune_code, c.id, s.description, s.reporter_name, s.reporter_contact,
       %(source)s, ST_SetSRID(ST_MakePoint(s.lon, s.lat), 4326)
FROM (SELECT t.*, row_number() OVER (PARTITION BY t.y ORDER BY t.reported, t.chunk, t.ord) AS n
      FROM (SELECT *, extract(year FROM to_timestamp(reported + 7 * 3600) AT TIME ZONE 'UTC')::int AS y
            FROM demo_stage_incidents) t) s
LEFT JOIN cameras c ON c.code = s.camera_code AND c.source = %(source)s
ORDER BY s.reported, s.chunk, s.ord
"""

UPSERT_INDICATOR = """
INSERT INTO indicators AS i (code, name_vi, name_en, unit_vi, unit_en, higher_is_better, theme,
                             description_vi, description_en, target, source)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
ON CONFLICT (code) DO UPDATE SET
  name_vi = EXCLUDED.name_vi, name_en = EXCLUDED.name_en, unit_vi = EXCLUDED.unit_vi,
  unit_en = EXCLUDED.unit_en, higher_is_better = EXCLUDED.higher_is_better, theme = EXCLUDED.theme,
  description_vi = EXCLUDED.description_vi, description_en = EXCLUDED.description_en,
  target = EXCLUDED.target
  WHERE i.source = EXCLUDED.source
"""

# Real values for the same indicator, unit and month win over generated ones.
INSERT_VALUES = """
INSERT INTO indicator_values (indicator_code, unit_code, period, value, source)
SELECT indicator_code, unit_code, period, value, %(source)s FROM demo_stage_values
ORDER BY indicator_code, unit_code, period
ON CONFLICT DO NOTHING
"""

UPSERT_RASTER = """
INSERT INTO rasters AS r (name, title_vi, title_en, kind, path, crs, width, height, band_count, dtype, nodata,
                          resolution, unit, source, loaded_at, footprint)
VALUES (%(name)s, %(title_vi)s, %(title_en)s, %(kind)s, %(path)s, 'EPSG:4326', %(width)s, %(height)s, 1,
        %(dtype)s, %(nodata)s, %(resolution)s, %(unit)s, %(source)s, now(),
        ST_MakeEnvelope(%(minx)s, %(miny)s, %(maxx)s, %(maxy)s, 4326))
ON CONFLICT (name) DO UPDATE SET
  title_vi = EXCLUDED.title_vi, title_en = EXCLUDED.title_en, kind = EXCLUDED.kind, path = EXCLUDED.path,
  crs = EXCLUDED.crs, width = EXCLUDED.width, height = EXCLUDED.height, band_count = EXCLUDED.band_count,
  dtype = EXCLUDED.dtype, nodata = EXCLUDED.nodata, resolution = EXCLUDED.resolution, unit = EXCLUDED.unit,
  loaded_at = EXCLUDED.loaded_at, footprint = EXCLUDED.footprint
  WHERE r.source = EXCLUDED.source
"""

# Generated rows, children before parents (incidents reference cameras).
GENERATED_ROWS = (("incidents", "data_source"), ("cameras", "source"), ("building_permits", "source"),
                  ("landuse_zones", "source"), ("schools", "source"), ("clinics", "source"),
                  ("indicator_values", "source"), ("rasters", "source"))

DELETE_ORPHAN_INDICATORS = """
DELETE FROM indicators i WHERE i.source = %s
  AND NOT EXISTS (SELECT 1 FROM indicator_values v WHERE v.indicator_code = i.code)
"""

ANALYZED = ("admin_units", "landuse_zones", "building_permits", "schools", "clinics", "cameras", "incidents",
            "indicators", "indicator_values", "rasters")


@dataclass(frozen=True)
class State:
    communes: int
    zones: int
    incidents: int
    rasters: dict[str, str]       # name -> path

    def loaded(self, n_communes: int, n_incidents: int) -> bool:
        return self.communes == n_communes and self.zones > 0 and self.incidents == n_incidents

    def rasters_present(self, names: Sequence[str], raster_dir: Path) -> bool:
        return all(name in self.rasters and Path(self.rasters[name]).parent == raster_dir
                   and Path(self.rasters[name]).is_file() for name in names)


def state(cur: psycopg.Cursor, province_code: str) -> State:
    """What of the demo is in the database now: a few counts, one of them over the incidents.

    Communes are counted whatever their source: boundaries loaded by the ETL serve as well."""
    cur.execute("SELECT count(*) FROM admin_units WHERE parent_code = %s AND level = 'commune'"
                " AND valid_to IS NULL AND geom IS NOT NULL", (province_code,))
    communes = one(cur)[0]
    cur.execute("SELECT count(*) FROM landuse_zones WHERE source = %s", (GENERATED,))
    zones = one(cur)[0]
    cur.execute("SELECT count(*) FROM incidents WHERE data_source = %s", (GENERATED,))
    incidents = one(cur)[0]
    cur.execute("SELECT name, path FROM rasters WHERE source = %s", (GENERATED,))
    return State(communes, zones, incidents, dict(cur.fetchall()))


def clear_generated(cur: psycopg.Cursor) -> None:
    """Delete every generated row (real data is never touched; the boundaries are upserted)."""
    for table, column in GENERATED_ROWS:
        cur.execute(sql.SQL("DELETE FROM {} WHERE {} = %s").format(sql.Identifier(table), sql.Identifier(column)),
                    (GENERATED,))
    cur.execute(DELETE_ORPHAN_INDICATORS, (GENERATED,))


def create_stage(cur: psycopg.Cursor, name: str) -> None:
    """Create the temporary staging table `name`, dropped at commit."""
    columns = STAGING[name]
    # A second load inside one outer transaction finds the first one's tables still there.
    cur.execute(sql.SQL("DROP TABLE IF EXISTS pg_temp.{}").format(sql.Identifier(name)))
    cur.execute(sql.SQL("CREATE TEMP TABLE {} ({}) ON COMMIT DROP").format(
        sql.Identifier(name),
        sql.SQL(", ").join(sql.SQL("{} {}").format(sql.Identifier(c), sql.SQL(t)) for c, t in columns)))


def copy_rows(cur: psycopg.Cursor, name: str, rows: Iterable[tuple]) -> None:
    """COPY rows into the staging table `name` (may be called once per chunk)."""
    copy_stmt = sql.SQL("COPY {} ({}) FROM STDIN").format(
        sql.Identifier(name), sql.SQL(", ").join(sql.Identifier(c) for c, _ in STAGING[name]))
    with cur.copy(copy_stmt) as copy:
        for row in rows:
            copy.write_row(row)


def load(cur: psycopg.Cursor, name: str, rows: Iterable[tuple], insert: str, params: dict) -> int:
    """Stage rows, move them into their table in one statement, return how many arrived."""
    create_stage(cur, name)
    copy_rows(cur, name, rows)
    return move(cur, insert, params)


def move(cur: psycopg.Cursor, insert: str, params: dict) -> int:
    cur.execute(insert, params)
    return cur.rowcount


def analyze(cur: psycopg.Cursor) -> None:
    # Fresh statistics so the first map request after a load plans with the right row counts.
    for table in ANALYZED:
        cur.execute(sql.SQL("ANALYZE {}").format(sql.Identifier(table)))
