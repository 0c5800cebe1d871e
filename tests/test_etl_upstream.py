"""Upstream sources and rasters: our own running server read as another province's OGC API Features
endpoint (paged by its `next` links), a paged JSON REST endpoint served on 127.0.0.1 by the test,
and a GeoTIFF turned into a catalogued Cloud-Optimized GeoTIFF."""

from __future__ import annotations

import json
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import psycopg
import pytest
import rasterio
from rasterio.transform import from_origin
from test_etl_files import copy_boundaries

from etl.errors import EtlError
from etl.pipeline import run_source
from etl.raster import load_raster
from etl.sources import Source
from etl.upstream import ogcapi_pages
from gis_core.registry import Registry
from gis_core.settings import Settings

REGISTRY = Registry.load(Settings().layers_dir)


@pytest.fixture
def etl_url(db_url, demo_url):
    copy_boundaries(demo_url, db_url)
    return db_url


@pytest.mark.slow
def test_ogc_api_features_of_another_server_paged_by_next_links(server, demo_url, etl_url):
    pages = list(ogcapi_pages(f"{server}/ogc", "clinics", limit=25))
    assert len(pages) > 2                                   # more than one page, so `next` was followed
    source = Source(name="ogc_clinics", layer="clinics", kind="ogcapi", url=f"{server}/ogc",
                    collection="clinics", rest={"page_size": 25})
    result = run_source(etl_url, REGISTRY, source)
    with psycopg.connect(demo_url) as conn:
        expected = conn.execute("SELECT code, name, kind, beds, commune_code, ST_AsText(geom) FROM clinics"
                                " ORDER BY code").fetchall()
    assert (result.read, result.inserted, result.rejected) == (len(expected), len(expected), 0)
    with psycopg.connect(etl_url) as conn:
        got = conn.execute("SELECT code, name, kind, beds, commune_code, ST_AsText(geom) FROM clinics"
                           " ORDER BY code").fetchall()
        assert conn.execute("SELECT DISTINCT source FROM clinics").fetchall() == [("etl:ogc_clinics",)]
    assert got == expected
    assert run_source(etl_url, REGISTRY, source).status == "unchanged"


class Upstream(BaseHTTPRequestHandler):
    """A department's REST API: ?page=N&size=M, records under data.items, lon/lat fields."""

    records: list[dict] = []

    def do_GET(self):  # noqa: N802 - the http.server API
        query = urllib.parse.parse_qs(urllib.parse.urlparse(self.path).query)
        page, size = int(query["page"][0]), int(query["size"][0])
        body = json.dumps({"data": {"items": self.records[(page - 1) * size: page * size]}}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def test_json_rest_endpoint_with_paging(etl_url):
    Upstream.records = [{"ma": f"CAM-{i:03d}", "ten": f"Camera nút giao {i}", "loai": "traffic",
                         "trang_thai": "online", "kinh_do": 103.97 + i * 1e-4, "vi_do": 22.48}
                        for i in range(23)]
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Upstream)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{httpd.server_address[1]}/api/cameras"
        source = Source(name="camera_api", layer="cameras", kind="rest", url=url,
                        fields={"code": "ma", "name": "ten", "kind": "loai", "status": "trang_thai"},
                        geometry={"lon": "kinh_do", "lat": "vi_do"},
                        rest={"items": "data.items", "page_param": "page", "size_param": "size", "page_size": 10})
        result = run_source(etl_url, REGISTRY, source)
    finally:
        httpd.shutdown()
        httpd.server_close()
    assert (result.read, result.inserted, result.rejected) == (23, 23, 0)
    with psycopg.connect(etl_url) as conn:
        assert conn.execute("SELECT count(DISTINCT commune_code), min(code), max(code) FROM cameras").fetchone() \
            == (1, "CAM-000", "CAM-022")


def test_geotiff_becomes_a_catalogued_cog_with_overviews(etl_url, tmp_path):
    src = tmp_path / "dem.tif"
    data = (np.add.outer(np.arange(1024), np.arange(1024)) % 3000).astype("float32")
    profile = {"driver": "GTiff", "width": 1024, "height": 1024, "count": 1, "dtype": "float32",
               "crs": "EPSG:9208", "transform": from_origin(410000, 2495000, 10, 10), "nodata": -9999}
    with rasterio.open(src, "w", **profile) as ds:
        ds.write(data, 1)
    with psycopg.connect(etl_url) as conn:
        done = load_raster(conn, tmp_path / "rasters", "kim_tan_dem", src, title_vi="Độ cao Kim Tân",
                           title_en="Kim Tân elevation", kind="dem", unit="m")
        row = conn.execute("SELECT path, crs, width, height, dtype, nodata, resolution,"
                           " ST_XMin(footprint), ST_YMax(footprint) FROM rasters WHERE name = 'kim_tan_dem'").fetchone()
    with rasterio.open(done.path) as cog:
        assert cog.driver == "GTiff" and cog.profile.get("tiled") and cog.overviews(1)
        assert cog.tags(ns="IMAGE_STRUCTURE").get("LAYOUT") == "COG"
        assert np.array_equal(cog.read(1), data)
    assert row[0] == str(done.path) and row[1] == "EPSG:9208" and row[2:7] == (1024, 1024, "float32", -9999, 10)
    assert 103.8 < row[7] < 104.0 and 22.4 < row[8] < 22.6
    with psycopg.connect(etl_url) as conn, pytest.raises(EtlError, match="no CRS"):
        nocrs = tmp_path / "nocrs.tif"
        with rasterio.open(nocrs, "w", **{**profile, "crs": None}) as ds:
            ds.write(data, 1)
        load_raster(conn, tmp_path / "rasters", "nocrs", nocrs, title_vi="x", title_en="x")
