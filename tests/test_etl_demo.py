"""Loading the demo layers, exported to files, through `iocgis etl load` into a database that has
only the boundaries reproduces them exactly (same values, same geometries, same communes)."""

from __future__ import annotations

import os
import subprocess
import sys

import geopandas as gpd
import psycopg
import pytest
from psycopg import sql
from sqlalchemy import create_engine
from test_etl_files import copy_boundaries

from gis_core.db import sqlalchemy_url

# layer -> (file format, columns compared besides the geometry); ids are surrogates and differ.
LAYERS = {
    "schools": ("GPKG", ["code", "name", "name_unaccent", "level", "ownership", "students", "address",
                         "commune_code", "source"]),
    "clinics": ("GPKG", ["code", "name", "name_unaccent", "kind", "beds", "address", "commune_code", "source"]),
    "cameras": ("GPKG", ["code", "name", "kind", "status", "last_seen", "heartbeat_interval_s", "stream_url",
                            "ai_enabled", "commune_code", "source"]),
    "landuse_zones": ("GeoJSON", ["plan_name", "decision_no", "decision_date", "zone_code", "zone_type",
                                  "allowed_uses", "conditional_uses", "max_height_m", "max_floors",
                                  "max_coverage_pct", "min_setback_m", "commune_code", "valid_from", "valid_to",
                                  "source"]),
    "building_permits": ("GPKG", ["permit_no", "applicant_name", "applicant_id_no", "address", "address_unaccent",
                                  "commune_code", "intended_use", "floors", "height_m", "footprint_area_m2",
                                  "parcel_area_m2", "status", "applied_on", "issued_on", "expires_on", "source"]),
}


def digest(url: str, table: str, columns: list[str]) -> tuple[int, str]:
    row = sql.SQL("({}, ST_AsEWKB(t.geom))").format(sql.SQL(", ").join(sql.SQL("t.{}").format(sql.Identifier(c))
                                                                      for c in columns))
    query = sql.SQL("SELECT count(*), md5(string_agg({row}::text, '|' ORDER BY {row}::text)) FROM {table} t").format(
        row=row, table=sql.Identifier(table))
    with psycopg.connect(url) as conn:
        return conn.execute(query).fetchone()


@pytest.mark.slow
@pytest.mark.parametrize("table", list(LAYERS))
def test_demo_layer_round_trips_through_etl_load(table, demo_url, db_url, tmp_path):
    driver, columns = LAYERS[table]
    engine = create_engine(sqlalchemy_url(demo_url))
    try:
        # Times leave as ISO text with their microseconds: GeoJSON and GeoPackage keep milliseconds.
        out = [sql.SQL("{0}::text AS {0}").format(sql.Identifier(c)) if c == "last_seen" else sql.Identifier(c)
               for c in columns]
        query = sql.SQL("SELECT {}, geom FROM {}").format(sql.SQL(", ").join(out), sql.Identifier(table))
        with engine.connect() as c:
            gdf = gpd.read_postgis(query.as_string(c.connection.dbapi_connection), c, geom_col="geom")
    finally:
        engine.dispose()
    path = tmp_path / f"{table}.{'gpkg' if driver == 'GPKG' else 'geojson'}"
    gdf.to_file(path, driver=driver)

    copy_boundaries(demo_url, db_url)
    env = {**os.environ, "DATABASE_URL": db_url}
    proc = subprocess.run([sys.executable, "-m", "gis_core.cli", "etl", "load", table, str(path),
                           "--tag", "generated:demo"], env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "rejected 0" in proc.stdout, proc.stdout
    if digest(db_url, table, columns) != digest(demo_url, table, columns):
        # Say which columns differ, not just that something does.
        key = columns[0] if table != "landuse_zones" else "zone_code"
        differ = [c for c in columns if digest(db_url, table, [key, c]) != digest(demo_url, table, [key, c])]
        pytest.fail(f"{table}: columns differ after the round trip: {differ}")
