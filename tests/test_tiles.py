"""OGC API Tiles: MVT made by PostGIS, per layer and combined, with zoom limits, aggregation of
dense points, ETags and invalidation by a data change."""

from __future__ import annotations

import json
import math
import urllib.error
import urllib.request

import mapbox_vector_tile
import psycopg
import pytest


def tile_index(lon: float, lat: float, z: int) -> tuple[int, int]:
    n = 2**z
    x = int((lon + 180) / 360 * n)
    y = int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n)
    return x, y


def fetch(url: str, headers: dict | None = None):
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as err:
        return err.code, err.headers, err.read()


LAO_CAI = (103.97, 22.48)
EXTENT_EDGE = 4096


def test_tilesets_are_listed_for_each_collection(server):
    status, _, body = fetch(f"{server}/ogc/collections/schools/tiles?f=json")
    assert status == 200 and b"WebMercatorQuad" in body


def test_layer_tile_has_public_attributes_only(server):
    """At street level the points themselves, with the registry's short tile attributes only."""
    status, headers, body = fetch(f"{server}/ogc/collections/incidents/tiles/WebMercatorQuad/15/"
                                  f"{tile_index(*LAO_CAI, 15)[1]}/{tile_index(*LAO_CAI, 15)[0]}")
    assert status == 200, body[:200]
    assert headers["Content-Type"].startswith("application/vnd.mapbox-vector-tile")
    features = mapbox_vector_tile.decode(body)["incidents"]["features"]
    assert features
    for feature in features:
        assert set(feature["properties"]) == {"ticket_code", "category", "status", "reported_at"}


def test_dense_points_are_aggregated_at_low_zoom_and_counts_add_up(server, demo_url):
    x, y = tile_index(*LAO_CAI, 6)
    status, _, body = fetch(f"{server}/ogc/collections/incidents/tiles/WebMercatorQuad/6/{y}/{x}")
    assert status == 200 and len(body) < 500_000
    features = mapbox_vector_tile.decode(body)["incidents"]["features"]
    total = sum(f["properties"]["count"] for f in features)
    with psycopg.connect(demo_url) as conn:
        expected = conn.execute(
            "SELECT count(*) FROM incidents WHERE ST_Intersects(geom, ST_Transform(ST_TileEnvelope(6, %s, %s), 4326))",
            (x, y)).fetchone()[0]
    assert total == expected > 1000
    assert len(features) < total / 10  # really aggregated


def test_zoom_limits_are_enforced(server):
    status, _, body = fetch(f"{server}/ogc/collections/schools/tiles/WebMercatorQuad/23/0/0")
    assert status == 404
    assert "ngoài phạm vi" in json.loads(body)["description"] and "outside" in json.loads(body)["description"]
    status, _, _ = fetch(f"{server}/ogc/collections/schools/tiles/WebMercatorQuad/3/9/1")  # y beyond 2^z
    assert status == 404


def test_etag_304_and_invalidation_by_a_data_change(server, demo_url):
    x, y = tile_index(*LAO_CAI, 14)
    url = f"{server}/ogc/collections/schools/tiles/WebMercatorQuad/14/{y}/{x}"
    status, headers, first = fetch(url)
    assert status in (200, 204)
    with psycopg.connect(demo_url, autocommit=True) as conn:
        commune = conn.execute(
            "SELECT code FROM communes WHERE ST_Contains(geom, ST_SetSRID(ST_MakePoint(%s, %s), 4326))",
            LAO_CAI).fetchone()[0]
        if status == 200:
            assert fetch(url, {"If-None-Match": headers["ETag"]})[0] == 304
        conn.execute(
            "INSERT INTO schools (code, name, name_unaccent, level, ownership, commune_code, source, geom)"
            " VALUES ('TEST-TILE', 'Trường thử', 'truong thu', 'primary', 'public', %s, 'test',"
            " ST_SetSRID(ST_MakePoint(%s, %s), 4326))", (commune, *LAO_CAI))
        try:
            status2, headers2, second = fetch(url)
            assert status2 == 200
            names = [f["properties"]["name"] for f in mapbox_vector_tile.decode(second)["schools"]["features"]]
            assert "Trường thử" in names
            if status == 200:
                assert headers2["ETag"] != headers["ETag"]
        finally:
            conn.execute("DELETE FROM schools WHERE code = 'TEST-TILE'")
    status3, _, third = fetch(url)
    assert (status3, third) == (status, first)


def test_combined_basemap_tile(server):
    x, y = tile_index(*LAO_CAI, 9)
    status, headers, body = fetch(f"{server}/ogc/tiles/WebMercatorQuad/9/{y}/{x}")
    assert status == 200 and "ETag" in headers
    decoded = mapbox_vector_tile.decode(body)
    assert set(decoded) == {"provinces", "communes"}
    names = {f["properties"]["name"] for f in decoded["communes"]["features"]}
    assert "Lào Cai" in names


@pytest.mark.parametrize("path", ["tiles/WebMercatorQuad/30/0/0", "tiles/WebMercatorQuad/2/-1/0"])
def test_bad_basemap_tiles(server, path):
    assert fetch(f"{server}/ogc/{path}")[0] == 404


def test_aggregated_counts_follow_a_data_change(server, demo_url):
    """Overview cells come from points held in the server's memory, but only at the data version
    they were read at: a moved point must leave the tile's counts at once."""
    x, y = tile_index(*LAO_CAI, 6)
    url = f"{server}/ogc/collections/incidents/tiles/WebMercatorQuad/6/{y}/{x}"

    def total() -> int:
        status, _, body = fetch(url)
        assert status == 200
        return sum(f["properties"]["count"] for f in mapbox_vector_tile.decode(body)["incidents"]["features"])

    before = total()
    with psycopg.connect(demo_url, autocommit=True) as conn:
        moved, geom = conn.execute(
            "SELECT id, geom FROM incidents WHERE ST_Intersects(geom, ST_Transform(ST_TileEnvelope(6, %s, %s), 4326))"
            " ORDER BY id LIMIT 1", (x, y)).fetchone()
        conn.execute("UPDATE incidents SET geom = ST_SetSRID(ST_MakePoint(106.70, 10.78), 4326) WHERE id = %s",
                     (moved,))
        try:
            assert total() == before - 1
        finally:
            conn.execute("UPDATE incidents SET geom = %s WHERE id = %s", (geom, moved))
    assert total() == before


@pytest.mark.parametrize("z", [6, 9, 12])
def test_overview_cells_counted_in_memory_match_postgis(demo_url, z):
    """The server counts overview cells from points held in memory, or with PostGIS while those are
    being (re)loaded: both ways give the same tile."""
    from gis_core import tiles

    layer = tiles.tile_layer(demo_url, {"table": "incidents", "id_field": "id", "geom_field": "geom",
                                        "properties": [], "options": {"cluster_below": 15}}, "incidents")
    points = tiles.PointSet()
    points.load(demo_url, layer)
    with tiles.connection(demo_url) as conn:
        version = conn.execute(tiles.VERSION, ("incidents",)).fetchone()[0]
        loaded = points.points(demo_url, layer, version)
        assert loaded is not None and len(loaded[0]) > 1000
        x, y = tile_index(*LAO_CAI, z)
        in_db, in_memory = (mapbox_vector_tile.decode(tiles.overview_tile(conn, layer, z, x, y, way))["incidents"]
                            for way in (None, loaded))

    def cells(tile: dict) -> dict:
        return {tuple(f["geometry"]["coordinates"]): f["properties"]["count"] for f in tile["features"]}

    # PostGIS's `&&` compares float4 boxes, so it also takes a point a hair outside the tile's edge
    # (pixel 0 or 4096): the tiles agree everywhere else (the demo's points are the same every run).
    memory, db = cells(in_memory), cells(in_db)
    same = {xy for xy in memory.keys() & db.keys() if memory[xy] == db[xy]}
    assert sum(db.values()) > 100 and len(same) >= 0.99 * len(db)
    assert all(set(xy) & {0, EXTENT_EDGE} for xy in (memory.keys() | db.keys()) - same), (memory, db)
    assert abs(sum(memory.values()) - sum(db.values())) <= 3
