"""OGC API - Coverages for the rasters, read by GDAL and rasterio from the running server: the
whole GeoTIFF, cuts by bbox (in CRS84 and in a projected bbox-crs) and by subset, values equal to
the file the `rasters` catalog names, and every malformed request a 400."""

from __future__ import annotations

import json
import subprocess
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import psycopg
import pyproj
import pytest
import rasterio
import yaml
from rasterio.io import MemoryFile
from rasterio.windows import from_bounds

from gis_core import ogc_config
from gis_core.registry import Registry
from gis_core.settings import Settings

REGISTRY = Registry.load(Settings().layers_dir)
COVERAGES = {c.id: c for c in REGISTRY.coverages()}
BBOX = (103.70, 22.20, 103.90, 22.40)      # around Fansipan, on the province's western edge


def fetch(url: str) -> tuple[int, str, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=60) as r:
            return r.status, r.headers["Content-Type"], r.read()
    except urllib.error.HTTPError as e:
        with e:
            return e.code, e.headers["Content-Type"], e.read()


@pytest.fixture(scope="module")
def raster_files(demo_url) -> dict[str, Path]:
    with psycopg.connect(demo_url) as conn:
        paths = dict(conn.execute("SELECT name, path FROM rasters").fetchall())
    return {cid: Path(paths[c.raster]) for cid, c in COVERAGES.items()}


def test_registry_declares_the_two_rasters():
    assert set(COVERAGES) == {"dem", "landslide_hazard"}
    assert COVERAGES["dem"].raster == "laocai_dem" and COVERAGES["dem"].unit == "m"
    assert [v for v, _ in COVERAGES["landslide_hazard"].classes] == [0, 1, 2, 3, 4]
    # The vector registry is unchanged: coverages are not layers.
    assert not {layer.id for layer in REGISTRY} & set(COVERAGES)


@pytest.mark.parametrize("cid", sorted(COVERAGES))
def test_collection_describes_the_grid(server, raster_files, cid):
    status, _, body = fetch(f"{server}/ogc/collections/{cid}?f=json")
    assert status == 200
    doc = json.loads(body)
    rels = {link["rel"] for link in doc["links"]}
    assert "http://www.opengis.net/def/rel/ogc/1.0/coverage" in rels
    with rasterio.open(raster_files[cid]) as src:
        assert [g["cellsCount"] for g in doc["extent"]["spatial"]["grid"]] == [src.width, src.height]
    status, _, body = fetch(f"{server}/ogc/collections/{cid}/schema?f=json")
    band = json.loads(body)["properties"]["1"]
    assert band["title"] == COVERAGES[cid].title.en
    if COVERAGES[cid].unit:
        assert band["x-ogc-unit"] == COVERAGES[cid].unit


@pytest.mark.slow
@pytest.mark.parametrize("cid", sorted(COVERAGES))
def test_gdal_copies_the_whole_coverage(server, raster_files, tmp_path, cid):
    """gdal_translate reads the coverage URL as a GeoTIFF: same grid, same values as the file."""
    out = tmp_path / f"{cid}.tif"
    subprocess.run(["gdal_translate", "-q", f"/vsicurl/{server}/ogc/collections/{cid}/coverage?f=GTiff", str(out)],
                   check=True, timeout=120, capture_output=True)
    info = json.loads(subprocess.run(["gdalinfo", "-json", str(out)], check=True, capture_output=True,
                                     text=True, timeout=60).stdout)
    with rasterio.open(raster_files[cid]) as src, rasterio.open(out) as got:
        assert info["size"] == [src.width, src.height]
        assert got.crs == src.crs and got.transform.almost_equals(src.transform)
        assert got.nodata == src.nodata
        assert np.array_equal(got.read(1), src.read(1))


def _cut(server: str, cid: str, query: str):
    status, ctype, body = fetch(f"{server}/ogc/collections/{cid}/coverage?f=GTiff&{query}")
    assert status == 200, body[:300]
    assert ctype == "image/tiff"
    mem = MemoryFile(body)
    return mem, mem.open()


@pytest.mark.parametrize("cid", sorted(COVERAGES))
def test_bbox_cut_has_the_files_values(server, raster_files, cid):
    mem, got = _cut(server, cid, "bbox=" + ",".join(map(str, BBOX)))
    with mem, got, rasterio.open(raster_files[cid]) as src:
        res = src.res[0]
        left, bottom, right, top = got.bounds
        assert BBOX[0] - res <= left <= BBOX[0] + 1e-9 and BBOX[2] - 1e-9 <= right <= BBOX[2] + res
        assert BBOX[1] - res <= bottom <= BBOX[1] + 1e-9 and BBOX[3] - 1e-9 <= top <= BBOX[3] + res
        window = from_bounds(*got.bounds, transform=src.transform)
        expected = src.read(1, window=_int_window(window))
        values = got.read(1)
        assert values.shape == expected.shape == (round((top - bottom) / res), round((right - left) / res))
        kept = values != got.nodata
        # Pixels whose centre is in the bbox keep the file's value, nodata included; the ring of
        # pixels the bbox only clips is blanked by the cut.
        assert np.array_equal(values[kept], expected[kept])
        interior = expected[1:, 1:] != src.nodata
        assert kept.sum() >= interior.sum() > 100


def _int_window(window):
    from rasterio.windows import Window

    return Window(round(window.col_off), round(window.row_off), round(window.width), round(window.height))


def test_bbox_in_a_projected_crs_and_subset(server, raster_files):
    """bbox-crs UTM 48N (the raster is CRS84) and the same area as a subset give the same cut."""
    to_utm = pyproj.Transformer.from_crs("OGC:CRS84", "EPSG:32648", always_xy=True)
    x0, y0 = to_utm.transform(103.75, 22.25)
    x1, y1 = to_utm.transform(103.85, 22.35)
    mem, got = _cut(server, "dem", f"bbox={x0},{y0},{x1},{y1}"
                                   "&bbox-crs=http://www.opengis.net/def/crs/EPSG/0/32648")
    with mem, got:
        left, bottom, right, top = got.bounds
        assert 103.74 < left < 103.755 and 103.845 < right < 103.86
        assert 22.24 < bottom < 22.255 and 22.345 < top < 22.36
    mem, sub = _cut(server, "dem", "subset=Lat(22.25:22.35),Long(103.75:103.85)")
    with mem, sub:
        assert sub.width >= 20 and sub.height >= 20
        assert 103.74 < sub.bounds.left < 103.755 and 22.345 < sub.bounds.top < 22.36


def test_coveragejson_and_html(server):
    cut = "bbox=103.7,22.2,103.72,22.22"
    status, ctype, body = fetch(f"{server}/ogc/collections/landslide_hazard/coverage?f=json&{cut}")
    assert status == 200 and ctype == "application/prs.coverage+json"
    cov = json.loads(body)
    assert cov["type"] == "Coverage" and cov["domain"]["domainType"] == "Grid"
    values = next(iter(cov["ranges"].values()))["values"]
    assert {v for v in values if v is not None} <= {0, 1, 2, 3, 4}
    status, ctype, body = fetch(f"{server}/ogc/collections/dem/coverage?f=html&{cut}")
    assert status == 200 and ctype.startswith("text/html")


@pytest.mark.parametrize("query", [
    "bbox=a,b",                                     # not numbers (pygeoapi itself says 500)
    "bbox=1,2,3",                                   # three numbers
    "bbox=1,2,3,4",                                 # nowhere near the province
    "bbox=103.7,22.2,103.9,22.4&bbox-crs=urn:nope",  # unknown CRS
    "bbox-crs=http://www.opengis.net/def/crs/OGC/1.3/CRS84",  # bbox-crs without bbox
    "subset=Lat(40:41),Long(103.7:103.9)",          # off the raster
    "subset=Height(1:2)",                           # no such axis
    "bbox=103.7,22.2,103.9,22.4&subset=Lat(22.2:22.4),Long(103.7:103.9)",  # both
    "properties=7",                                 # no such band
    "f=png",                                        # no such format
])
def test_bad_requests_are_400(server, query):
    status, ctype, body = fetch(f"{server}/ogc/collections/dem/coverage?{query}")
    assert status == 400, (query, status, body[:300])
    assert json.loads(body)["code"] in ("InvalidParameterValue", "InvalidQuery", "NoApplicableCode")


def test_unknown_coverage_is_404(server):
    assert fetch(f"{server}/ogc/collections/nothing/coverage?f=GTiff")[0] == 404


def test_missing_raster_file_leaves_only_that_coverage_out(tmp_path):
    """The file is found through the catalog or raster_dir; without one the collection is left out
    (logged) and the rest of the API still starts."""
    settings = Settings(database_url="postgresql://iocgis@127.0.0.1:1/none", var_dir=tmp_path)
    config = ogc_config.load(Settings().pygeoapi_config, settings)
    assert not set(COVERAGES) & set(config["resources"])
    assert "communes" in config["resources"] and "zonal-stats" in config["resources"]
    settings.raster_dir.mkdir(parents=True)
    (settings.raster_dir / "laocai_dem.tif").write_bytes(b"")
    config = ogc_config.load(Settings().pygeoapi_config, settings)
    assert "dem" in config["resources"] and "landslide_hazard" not in config["resources"]
    assert config["resources"]["dem"]["providers"][0]["data"] == str(settings.raster_dir / "laocai_dem.tif")


def test_coverage_declarations_are_checked(tmp_path):
    from gis_core.errors import ConfigError
    from gis_core.registry import parse_coverage

    base = {"id": "relief", "kind": "coverage", "raster": "laocai_dem", "theme": "environment",
            "title": {"vi": "Địa hình", "en": "Relief"}, "description": {"vi": "Mô tả", "en": "About"}}
    path = tmp_path / "relief.yml"
    for change in ({"raster": "Bad Name"}, {"theme": "weather"}, {"classes": {"a": {"vi": "x", "en": "x"}}},
                   {"title": {"en": "Relief"}}):
        path.write_text(yaml.safe_dump({**base, **change}), encoding="utf-8")
        with pytest.raises(ConfigError):
            parse_coverage(path)
    path.write_text(yaml.safe_dump({**base, "classes": {1: {"vi": "Thấp", "en": "Low"}}}), encoding="utf-8")
    assert parse_coverage(path).classes[0][1].en == "Low"
