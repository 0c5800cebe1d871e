"""The demo province loader: real boundaries, generated layers inside them, determinism,
idempotence, one transaction, and the rasters."""

from __future__ import annotations

import re
import time
import unicodedata

import numpy as np
import psycopg
import pytest
import rasterio
from psycopg import sql

from gis_core.demo import GENERATED, INCIDENTS_PER_SCALE, PERMITS_PER_SCALE, load_demo
from gis_core.settings import Settings
from gis_core.text import unaccent

GENERATED_TABLES = ("landuse_zones", "building_permits", "schools", "clinics", "cameras", "incidents",
                    "indicators", "indicator_values", "rasters")


@pytest.fixture
def demo_settings(db_url, tmp_path) -> Settings:
    return Settings(database_url=db_url, var_dir=tmp_path / "var")


@pytest.fixture
def loaded(conn, demo_settings):
    """A fresh database with the demo loaded once; yields the counts load_demo returned."""
    started = time.monotonic()
    counts = load_demo(conn, demo_settings)
    elapsed = time.monotonic() - started
    assert elapsed < 30, f"scale 1 took {elapsed:.1f}s"
    return counts


def scalar(conn: psycopg.Connection, query, params=()):
    return conn.execute(query, params).fetchone()[0]


def count(conn: psycopg.Connection, table: str, where: str | None = None, value=None) -> int:
    query = sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(table))
    if where is None:
        return scalar(conn, query)
    return scalar(conn, query + sql.SQL(" WHERE {} <> %s").format(sql.Identifier(where)), (value,))


def table_counts(conn: psycopg.Connection) -> dict[str, int]:
    return {table: count(conn, table) for table in ("admin_units", *GENERATED_TABLES)}


def test_real_boundaries_with_diacritics(conn, loaded):
    assert loaded["admin_units"] == 100
    rows = conn.execute(
        "SELECT code, parent_code, level, kind, name, full_name, name_unaccent, valid_from::text, source,"
        " ST_IsValid(geom), GeometryType(geom), ST_SRID(geom) FROM admin_units ORDER BY code").fetchall()
    province = [r for r in rows if r[2] == "province"]
    communes = [r for r in rows if r[2] == "commune"]
    assert [(r[0], r[1], r[3], r[4], r[5]) for r in province] == [("15", None, "Tỉnh", "Lào Cai", "Tỉnh Lào Cai")]
    assert len(communes) == 99
    assert {r[1] for r in communes} == {"15"}
    assert sum(r[3] == "Phường" for r in communes) == 10
    assert sum(r[3] == "Xã" for r in communes) == 89
    for r in rows:
        assert r[7] == "2025-07-01"
        assert r[8] == "vietnamese-provinces-database (MIT), simplified"
        assert r[9:] == (True, "MULTIPOLYGON", 4326)
        assert unicodedata.is_normalized("NFC", r[4]) and unicodedata.is_normalized("NFC", r[5])
        assert r[6] == unaccent(r[4])
        assert r[5].startswith(r[3] + " ")
    by_name = {r[4]: r for r in communes}
    for name in ("Lào Cai", "Sa Pa", "Cam Đường", "Yên Bái", "Bát Xát", "Mù Cang Chải", "Y Tý", "Âu Lâu",
                 "Nghĩa Lộ", "Tả Củ Tỷ", "Phong Dụ Thượng"):
        assert name in by_name, name
    assert by_name["Sa Pa"][:6] == ("03006", "15", "commune", "Phường", "Sa Pa", "Phường Sa Pa")
    assert by_name["Mù Cang Chải"][6] == "mu cang chai"
    assert by_name["Đông Cuông"][6] == "dong cuong"
    # Searching without diacritics finds the ward (the trigram index serves this).
    assert scalar(conn, "SELECT name FROM admin_units WHERE name_unaccent = %s AND level = 'commune'",
                  ("lao cai",)) == "Lào Cai"
    # The simplified communes still add up to the province's stated area, within 1 %.
    area = scalar(conn, "SELECT sum(ST_Area(geom::geography)) / 1e6 FROM admin_units WHERE level = 'commune'")
    assert area == pytest.approx(13256.92, rel=0.01)


def test_generated_layers_have_plausible_sizes(conn, loaded):
    assert loaded == table_counts(conn)
    assert 400 <= loaded["landuse_zones"] <= 1200
    assert loaded["building_permits"] == PERMITS_PER_SCALE
    assert 450 <= loaded["schools"] <= 750
    assert 200 <= loaded["clinics"] <= 320
    assert 220 <= loaded["cameras"] <= 380
    assert loaded["incidents"] == INCIDENTS_PER_SCALE
    assert loaded["indicators"] == 8
    assert loaded["indicator_values"] == 8 * 100 * 24
    assert loaded["rasters"] == 2
    for table, column in (("landuse_zones", "source"), ("building_permits", "source"), ("schools", "source"),
                          ("clinics", "source"), ("cameras", "source"), ("incidents", "data_source"),
                          ("indicators", "source"), ("indicator_values", "source"), ("rasters", "source")):
        assert count(conn, table, column, GENERATED) == 0, table
    # Every commune has its health station; the wards get the denser urban content.
    assert scalar(conn, "SELECT count(DISTINCT commune_code) FROM clinics WHERE kind = 'commune_station'") == 99
    ward_share = scalar(conn, """
        SELECT avg((a.kind = 'Phường')::int) FROM incidents i JOIN admin_units a ON a.code = i.commune_code""")
    assert ward_share > 0.3          # 10 of 99 units, but where people live
    names = [r[0] for r in conn.execute("SELECT name FROM schools").fetchall()]
    assert "Trường Tiểu học Bát Xát" in names or "Trường Tiểu học Bát Xát số 2" in names
    assert scalar(conn, "SELECT count(*) FROM clinics WHERE name = 'Trạm Y tế xã Bát Xát'") == 1
    assert scalar(conn, "SELECT count(*) FROM clinics WHERE name = 'Trạm Y tế phường Sa Pa'") == 1
    assert scalar(conn, "SELECT count(*) FROM schools WHERE name_unaccent <> lower(name_unaccent)") == 0


def test_every_generated_feature_lies_in_its_commune(conn, loaded):
    violations = conn.execute("""
        SELECT 'schools', count(*) FROM schools t JOIN admin_units a ON a.code = t.commune_code
          WHERE NOT ST_Contains(a.geom, t.geom)
        UNION ALL SELECT 'clinics', count(*) FROM clinics t JOIN admin_units a ON a.code = t.commune_code
          WHERE NOT ST_Contains(a.geom, t.geom)
        UNION ALL SELECT 'cameras', count(*) FROM cameras t JOIN admin_units a ON a.code = t.commune_code
          WHERE NOT ST_Contains(a.geom, t.geom)
        UNION ALL SELECT 'incidents', count(*) FROM incidents t JOIN admin_units a ON a.code = t.commune_code
          WHERE NOT ST_Contains(a.geom, t.geom)
        UNION ALL SELECT 'building_permits', count(*) FROM building_permits t
          JOIN admin_units a ON a.code = t.commune_code WHERE NOT ST_Within(t.geom, a.geom)
        UNION ALL SELECT 'landuse_zones', count(*) FROM landuse_zones t
          JOIN admin_units a ON a.code = t.commune_code
          WHERE ST_Area(ST_Difference(t.geom, a.geom)::geography) > 0.01
        UNION ALL SELECT 'zones overlapping', count(*) FROM landuse_zones x JOIN landuse_zones y
          ON x.id < y.id AND ST_Intersects(x.geom, y.geom)
          WHERE ST_Area(ST_Intersection(x.geom, y.geom)::geography) > 0.01
    """).fetchall()
    assert dict(violations) == {name: 0 for name, _ in violations}
    assert scalar(conn, "SELECT count(*) FROM incidents WHERE commune_code = '15'") == 0


# A permit breaks its zone's rules when it is not inside a single zone, or is taller, has more
# floors, covers more of its parcel than the zone allows, or has a use the zone does not allow.
BREACHES = """
WITH placed AS (
  SELECT p.*, (SELECT z.id FROM landuse_zones z WHERE ST_Within(p.geom, z.geom) LIMIT 1) AS zone_id
  FROM building_permits p)
SELECT count(*) FILTER (WHERE z.id IS NULL)                                   AS two_zones,
       count(*) FILTER (WHERE p.height_m > z.max_height_m)                    AS too_tall,
       count(*) FILTER (WHERE p.floors > z.max_floors)                        AS too_many_floors,
       count(*) FILTER (WHERE NOT p.intended_use = ANY (z.allowed_uses))      AS use_not_allowed,
       count(*) FILTER (WHERE p.footprint_area_m2 / p.parcel_area_m2 * 100 > z.max_coverage_pct) AS coverage,
       count(*) FILTER (WHERE z.id IS NULL OR p.height_m > z.max_height_m OR p.floors > z.max_floors
                          OR NOT p.intended_use = ANY (z.allowed_uses)
                          OR p.footprint_area_m2 / p.parcel_area_m2 * 100 > z.max_coverage_pct) AS any,
       count(*) AS total
FROM placed p LEFT JOIN landuse_zones z ON z.id = p.zone_id
"""


def test_permits_with_some_rule_breakers(conn, loaded):
    row = conn.execute(BREACHES).fetchone()
    names = [d.name for d in conn.execute(BREACHES).description]
    b = dict(zip(names, row, strict=True))
    for kind in ("two_zones", "too_tall", "too_many_floors", "use_not_allowed", "coverage"):
        assert b[kind] > 0, kind
    assert 0.05 * b["total"] < b["any"] < 0.30 * b["total"]
    # Footprints that straddle really do touch two zones.
    straddling = scalar(conn, """
        SELECT count(*) FROM building_permits p WHERE NOT EXISTS (
          SELECT 1 FROM landuse_zones z WHERE ST_Within(p.geom, z.geom))
        AND (SELECT count(*) FROM landuse_zones z WHERE ST_Intersects(z.geom, p.geom)
             AND ST_Area(ST_Intersection(z.geom, p.geom)) > 0) >= 2""")
    assert straddling == b["two_zones"]
    # Footprints are small buildings: 60-600 m², as computed by PostGIS on the ellipsoid.
    lo, hi, worst = conn.execute("""
        SELECT min(footprint_area_m2), max(footprint_area_m2),
               max(abs(ST_Area(geom::geography) - footprint_area_m2) / footprint_area_m2)
        FROM building_permits""").fetchone()
    assert 30 <= lo and hi <= 600 and worst < 0.01


def test_permit_fields_are_consistent(conn, loaded):
    rows = conn.execute("""
        SELECT permit_no, applicant_name, applicant_id_no, address, address_unaccent, status, applied_on,
               issued_on, expires_on, current_date - applied_on
        FROM building_permits""").fetchall()
    statuses = {r[5] for r in rows}
    assert statuses == {"approved", "submitted", "rejected", "revoked", "expired"}
    for no, name, id_no, address, address_ua, status, applied, issued, expires, age in rows:
        assert re.fullmatch(r"GPXD-20\d\d-\d{6}", no)
        assert name and unicodedata.is_normalized("NFC", name)
        assert id_no is None or re.fullmatch(r"\d{12}", id_no)
        assert address_ua == unaccent(address)
        assert re.match(r"^(Số \d+, đường .+, (phường|xã) |Thôn .+, xã )", address)
        assert -1 <= age <= 731
        assert (issued is not None) == (status in ("approved", "revoked", "expired"))
        if status == "expired":
            assert expires is not None and expires < applied.today()
    assert any(r[3].endswith("phường Cam Đường") for r in rows)


def test_incidents_follow_the_workflow(conn, loaded):
    bad = conn.execute("""
        SELECT count(*) FILTER (WHERE reported_at < now() - interval '367 days' OR reported_at > now()),
               count(*) FILTER (WHERE ticket_code !~ '^PA-20[0-9]{2}-[0-9]{6}$'),
               count(*) FILTER (WHERE source = 'citizen' AND reporter_name IS NOT NULL
                                  AND reporter_contact !~ '^0[0-9]{9}$'),
               count(*) FILTER (WHERE source <> 'citizen' AND reporter_name IS NOT NULL),
               count(*) FILTER (WHERE status IN ('resolved', 'closed') AND resolved_at IS NULL),
               count(*) FILTER (WHERE resolved_at > now()),
               count(*) FILTER (WHERE description = '' OR description !~ ' tại ')
        FROM incidents""").fetchone()
    assert bad == (0,) * len(bad)
    by_source = dict(conn.execute("SELECT source, count(*) FROM incidents GROUP BY 1").fetchall())
    assert set(by_source) == {"citizen", "camera", "sensor"}
    assert by_source["citizen"] > by_source["camera"] > 0
    statuses = dict(conn.execute("SELECT status, count(*) FROM incidents GROUP BY 1").fetchall())
    assert {"closed", "resolved", "in_progress", "rejected"} <= set(statuses)
    on_time = scalar(conn, "SELECT avg((resolved_at <= due_at)::int) FROM incidents WHERE resolved_at IS NOT NULL")
    assert 0.75 < on_time < 0.95
    # Camera events come from the camera's own commune, near the camera.
    far = scalar(conn, """
        SELECT count(*) FROM incidents i JOIN cameras c ON c.id = i.camera_id
        WHERE i.commune_code <> c.commune_code OR ST_Distance(i.geom::geography, c.geom::geography) > 500""")
    assert far == 0
    # The rainy season brings the landslides.
    wet, dry = conn.execute("""
        SELECT count(*) FILTER (WHERE extract(month FROM reported_at) IN (6, 7, 8, 9)),
               count(*) FILTER (WHERE extract(month FROM reported_at) IN (12, 1, 2, 3))
        FROM incidents WHERE category = 'landslide'""").fetchone()
    assert wet > 2 * dry


def test_cameras_and_indicators(conn, loaded):
    kinds = dict(conn.execute("SELECT kind, count(*) FROM cameras GROUP BY 1").fetchall())
    assert set(kinds) == {"traffic", "security", "flood", "forest_fire", "border"}
    online = scalar(conn, "SELECT avg((status = 'online')::int) FROM cameras")
    assert 0.7 < online < 0.97
    stale = scalar(conn, """SELECT count(*) FROM cameras WHERE status = 'online'
                            AND last_seen < now() - make_interval(secs => 2 * heartbeat_interval_s)""")
    assert stale == 0
    urls = [r[0] for r in conn.execute("SELECT stream_url FROM cameras").fetchall()]
    assert all(re.fullmatch(r"rtsp://10\.\d+\.\d+\.\d+:554/stream1", u) for u in urls)

    defs = conn.execute("SELECT code, name_vi, higher_is_better FROM indicators ORDER BY code").fetchall()
    assert len(defs) == 8
    assert ("poverty_rate", "Tỷ lệ hộ nghèo", False) in defs
    periods = conn.execute("""
        SELECT count(DISTINCT period), min(extract(day FROM period)), max(extract(day FROM period)),
               count(DISTINCT unit_code)
        FROM indicator_values""").fetchone()
    assert periods == (24, 1, 1, 100)
    # Poverty falls over the two years, most where it is highest.
    first, last = conn.execute("""
        SELECT avg(value) FILTER (WHERE period = (SELECT min(period) FROM indicator_values)),
               avg(value) FILTER (WHERE period = (SELECT max(period) FROM indicator_values))
        FROM indicator_values WHERE indicator_code = 'poverty_rate' AND unit_code <> '15'""").fetchone()
    assert last < first


def test_dem_and_hazard_rasters(conn, loaded, demo_settings):
    rows = {r[0]: r for r in conn.execute("""
        SELECT name, kind, path, crs, width, height, band_count, dtype, nodata, resolution,
               ST_XMin(footprint), ST_YMin(footprint), ST_XMax(footprint), ST_YMax(footprint)
        FROM rasters""").fetchall()}
    assert {r[1] for r in rows.values()} == {"dem", "hazard"}
    province_bbox = conn.execute("""SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e)
                                    FROM (SELECT ST_Extent(geom) AS e FROM admin_units) x""").fetchone()
    for _name, kind, path, crs, width, height, bands, dtype, nodata, res, *bbox in rows.values():
        assert path.startswith(str(demo_settings.raster_dir.resolve()))
        with rasterio.open(path) as ds:
            assert ds.crs.to_epsg() == 4326 and crs == "EPSG:4326"
            assert (ds.width, ds.height, ds.count, ds.dtypes[0], ds.nodata) == (width, height, bands, dtype, nodata)
            assert ds.res == pytest.approx((res, res))
            assert tuple(ds.bounds) == pytest.approx(tuple(bbox))
            assert ds.overviews(1), "overviews expected"
            assert ds.profile["tiled"] and ds.profile["compress"] == "deflate"
            data = ds.read(1, masked=True)
            if kind == "dem":
                assert data.min() >= 20 and 2800 < data.max() <= 3143
                lao_cai, sa_pa, yen_bai = (v[0] for v in ds.sample([(103.970, 22.498), (103.844, 22.336),
                                                                    (104.875, 21.700)]))
                assert lao_cai < 200 and yen_bai < 200 and sa_pa > 1000
            else:
                assert set(np.unique(data.compressed()).tolist()) == {0, 1, 2, 3, 4}
        # The raster covers the whole province.
        assert bbox[0] <= province_bbox[0] and bbox[1] <= province_bbox[1]
        assert bbox[2] >= province_bbox[2] and bbox[3] >= province_bbox[3]
    assert not list(demo_settings.raster_dir.glob("*.tmp*"))


def test_second_load_is_a_no_op(conn, loaded, demo_settings):
    before = table_counts(conn)
    started = time.monotonic()
    assert load_demo(conn, demo_settings) == {}
    assert time.monotonic() - started < 3
    assert table_counts(conn) == before


def test_missing_raster_files_are_redrawn(conn, loaded, demo_settings):
    for path in demo_settings.raster_dir.glob("*.tif"):
        path.unlink()
    assert load_demo(conn, demo_settings) == {"rasters": 2}
    assert len(list(demo_settings.raster_dir.glob("*.tif"))) == 2
    assert load_demo(conn, demo_settings) == {}


CHECKSUMS = {
    "landuse_zones": """SELECT md5(string_agg(concat_ws('|', plan_name, decision_no, decision_date, zone_code,
        zone_type, allowed_uses, conditional_uses, max_height_m, max_floors, max_coverage_pct, min_setback_m,
        commune_code, valid_from, encode(ST_AsBinary(geom), 'hex')), ';' ORDER BY decision_no, zone_code))
        FROM landuse_zones""",
    # Dates follow the day of loading: compare them relative to the latest application.
    "building_permits": """SELECT md5(string_agg(concat_ws('|', permit_no, applicant_name, applicant_id_no, address,
        commune_code, intended_use, floors, height_m, footprint_area_m2, parcel_area_m2, status,
        applied_on - m, issued_on - m, expires_on - m, encode(ST_AsBinary(geom), 'hex')), ';' ORDER BY permit_no))
        FROM building_permits, (SELECT max(applied_on) AS m FROM building_permits) x""",
    "schools": """SELECT md5(string_agg(concat_ws('|', code, name, level, ownership, students, address, commune_code,
        ST_AsText(geom)), ';' ORDER BY code)) FROM schools WHERE source = 'generated:demo'""",
    "clinics": """SELECT md5(string_agg(concat_ws('|', code, name, kind, beds, address, commune_code,
        ST_AsText(geom)), ';' ORDER BY code)) FROM clinics""",
    "incidents": """SELECT md5(string_agg(concat_ws('|', category, source, commune_code, description, reporter_name,
        reporter_contact, ST_AsText(geom)), ';' ORDER BY ST_X(geom), ST_Y(geom), description)) FROM incidents""",
    "indicator_values": """SELECT md5(string_agg(concat_ws('|', indicator_code, unit_code, value), ';'
        ORDER BY indicator_code, unit_code, period)) FROM indicator_values""",
}


def checksums(conn: psycopg.Connection) -> dict[str, str]:
    return {table: scalar(conn, query) for table, query in CHECKSUMS.items()}


def test_forced_reload_is_deterministic_and_keeps_real_rows(conn, loaded, demo_settings):
    before_sums, before_counts = checksums(conn), table_counts(conn)
    dem = next(demo_settings.raster_dir.glob("laocai_dem.tif")).read_bytes()
    # A row from elsewhere (an ETL load) must survive the demo's reload.
    conn.execute("""INSERT INTO schools (code, name, name_unaccent, level, ownership, commune_code, source, geom)
                    VALUES ('MOET-1', 'Trường Tiểu học Thật', 'truong tieu hoc that', 'primary', 'public', '03006',
                            'etl:moet', ST_SetSRID(ST_MakePoint(103.844, 22.336), 4326))""")
    counts = load_demo(conn, demo_settings, force=True)
    assert counts["incidents"] == INCIDENTS_PER_SCALE
    assert checksums(conn) == before_sums
    after = table_counts(conn)
    assert after == {**before_counts, "schools": before_counts["schools"] + 1}
    assert scalar(conn, "SELECT count(*) FROM schools WHERE source = 'etl:moet'") == 1
    assert (demo_settings.raster_dir / "laocai_dem.tif").read_bytes() == dem


def test_another_scale_reloads(conn, loaded, demo_settings):
    counts = load_demo(conn, demo_settings, scale=2)
    assert counts["incidents"] == 2 * INCIDENTS_PER_SCALE
    assert counts["building_permits"] == 2 * PERMITS_PER_SCALE
    assert scalar(conn, "SELECT count(*) FROM incidents") == 2 * INCIDENTS_PER_SCALE
    assert scalar(conn, "SELECT count(DISTINCT ticket_code) FROM incidents") == 2 * INCIDENTS_PER_SCALE
    assert load_demo(conn, demo_settings, scale=2) == {}
    assert load_demo(conn, demo_settings, scale=1)["incidents"] == INCIDENTS_PER_SCALE


def test_a_failed_load_leaves_nothing(conn, demo_settings, monkeypatch):
    import gis_core.demo as demo

    def broken(*args, **kwargs):
        raise RuntimeError("disk full")

    # Fail at the very end, when every table is written and the raster files are on disk.
    monkeypatch.setattr(demo, "_register_rasters", broken)
    with pytest.raises(RuntimeError, match="disk full"):
        load_demo(conn, demo_settings)
    counts = table_counts(conn)
    assert counts == {table: 0 for table in counts}
    assert list(demo_settings.raster_dir.glob("*")) == []
    monkeypatch.undo()
    assert load_demo(conn, demo_settings)["admin_units"] == 100


def test_bad_scale_is_refused(conn, demo_settings):
    from gis_core.errors import InvalidParameter

    with pytest.raises(InvalidParameter):
        load_demo(conn, demo_settings, scale=0)


def test_the_audit_trail_names_the_demo_load(conn, loaded):
    actors = conn.execute(
        "SELECT DISTINCT actor FROM audit_log WHERE table_name IN ('schools', 'incidents')").fetchall()
    assert actors == [("demo:load",)]
