"""The OGC API process `zoning-check` through the running server: described in /ogc/processes,
executed with a GeoJSON footprint, and every malformed footprint answered with a clear 400."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import psycopg
import pytest

EXECUTE = "/ogc/processes/zoning-check/execution"


def post(server: str, body: bytes | dict, content_type: str = "application/json") -> tuple[int, dict]:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    req = urllib.request.Request(server + EXECUTE, data=data, method="POST", headers={"Content-Type": content_type})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, json.load(r)
    except urllib.error.HTTPError as e:
        return e.code, json.load(e)


@pytest.fixture(scope="module")
def permit(demo_url) -> dict:
    """A compliant demo permit, wholly inside one zone, clear of overlays: its footprint and attributes."""
    with psycopg.connect(demo_url) as conn:
        row = conn.execute("""
            SELECT ST_AsGeoJSON(ST_GeometryN(p.geom, 1))::json, p.intended_use, p.floors, p.height_m::float8,
                   p.parcel_area_m2::float8, p.applied_on, z.zone_code, z.max_height_m::float8
            FROM building_permits p
            JOIN landuse_zones z ON ST_Within(p.geom, ST_Buffer(z.geom, -0.0002))
            WHERE p.height_m < z.max_height_m - 1 AND p.intended_use = ANY (z.allowed_uses)
              AND NOT EXISTS (SELECT 1 FROM zoning_overlays o WHERE ST_Intersects(o.geom, p.geom))
              AND p.floors < z.max_floors AND p.footprint_area_m2 * 100 < z.max_coverage_pct * p.parcel_area_m2
            ORDER BY p.id LIMIT 1""").fetchone()
    keys = ("footprint", "intended_use", "floors", "height_m", "parcel_area_m2", "applied_on", "zone_code", "max_h")
    return dict(zip(keys, row, strict=True))


def inputs(permit: dict, **changes) -> dict:
    base = {k: permit[k] for k in ("footprint", "intended_use", "floors", "height_m", "parcel_area_m2")}
    base["applied_on"] = permit["applied_on"].isoformat()
    return {"inputs": {**base, **changes}}


def test_the_process_is_listed_and_described(server):
    with urllib.request.urlopen(f"{server}/ogc/processes?f=json") as r:
        ids = [p["id"] for p in json.load(r)["processes"]]
    assert "zoning-check" in ids
    with urllib.request.urlopen(f"{server}/ogc/processes/zoning-check?f=json") as r:
        described = json.load(r)
    assert {"footprint", "intended_use", "floors", "height_m"} <= set(described["inputs"])
    with urllib.request.urlopen(f"{server}/ogc/collections?f=json") as r:
        assert "zoning-check" not in {c["id"] for c in json.load(r)["collections"]}


def test_a_compliant_proposal_and_a_too_tall_one(server, permit):
    status, body = post(server, inputs(permit))
    assert status == 200, body
    assert body["verdict"] == "compliant" and body["reasons"] == []
    assert body["zones"][0]["zone_code"] == permit["zone_code"] and body["zones"][0]["share"] == 1

    status, body = post(server, inputs(permit, height_m=permit["max_h"] + 6))
    assert status == 200 and body["verdict"] == "non_compliant"
    (reason,) = [r for r in body["reasons"] if r["rule"] == "height"]
    assert reason["limit"] == permit["max_h"] and f"của khu {permit['zone_code']}" in reason["message_vi"]
    assert reason["message_en"].startswith("height ")


BOWTIE = {"type": "Polygon", "coordinates": [[[103.97, 22.48], [103.971, 22.481], [103.971, 22.48],
                                               [103.97, 22.4805], [103.97, 22.48]]]}


@pytest.mark.parametrize("footprint, crs, fragment", [
    (BOWTIE, None, "not a valid polygon"),                                          # self-intersecting
    ({"type": "Polygon", "coordinates": [[[419540, 2487019], [419560, 2487019], [419560, 2487039],
                                          [419540, 2487019]]]}, None, "outside Lào Cai"),   # metres as lon/lat
    ({"type": "Polygon", "coordinates": [[[103.97, 22.48], [103.971, 22.48], [103.971, 22.481], [103.97, 22.48]]]},
     "EPSG:3405", "outside Lào Cai"),                                               # degrees declared as UTM
    ({"type": "Polygon", "coordinates": []}, None, "empty"),
    ({"type": "MultiPolygon", "coordinates": [[]]}, None, "footprint"),
    ("not json at all", None, "not valid JSON"),
    ({"type": "LineString", "coordinates": [[103.97, 22.48], [103.971, 22.48]]}, None, "Polygon or MultiPolygon"),
    ({"type": "Polygon", "coordinates": [[[103.97, 22.48], [103.971, 22.48], [103.971, 22.481], [103.97, 22.48]]]},
     "EPSG:0", "Unknown coordinate reference system"),
])
def test_malformed_footprints_get_a_clear_400(server, permit, footprint, crs, fragment):
    body = inputs(permit, footprint=footprint)
    if crs:
        body["inputs"]["crs"] = crs
    status, answer = post(server, body)
    assert status == 400, answer
    assert fragment in answer["description"], answer
    assert "Traceback" not in answer["description"]


@pytest.mark.parametrize("body, fragment", [
    (b"{not json", "invalid request data"),
    ({"inputs": {"intended_use": "residential", "floors": 2, "height_m": 7}}, "footprint input is missing"),
    ("bad use", "Unknown intended use"),
    ("bad floors", "floors must be"),
])
def test_malformed_requests_get_a_clear_400(server, permit, body, fragment):
    if body == "bad use":
        body = inputs(permit, intended_use="casino")
    elif body == "bad floors":
        body = inputs(permit, floors="many")
    status, answer = post(server, body)
    assert status == 400 and fragment in answer["description"], answer
