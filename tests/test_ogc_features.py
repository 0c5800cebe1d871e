"""OGC API Features on our provider: clause builders without a database, then CRS, bbox-crs,
CQL2, sortby and bad parameters against the running server."""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request

import pytest

from gis_core import features_sql as fsql
from gis_core.errors import InvalidParameter

CATALOG = fsql.Catalog(
    table="incidents", id_column=fsql.Column("id", "bigint"), geometry="geom", srid=4326,
    columns=(fsql.Column("category", "text"), fsql.Column("reported_at", "timestamp with time zone"),
             fsql.Column("tags", "text[]")),
    time_field="reported_at")


def render(composable) -> str:
    return composable.as_string(None)


def test_bbox_clause_uses_the_index_operator_and_parameters():
    clause, params = fsql.bbox_clause(CATALOG, [104.0, 22.0, 104.5, 22.5])
    text = render(clause)
    assert '"geom" &&' in text and "%(bbox_minx)s" in text and "104" not in text
    assert params == {"bbox_minx": 104.0, "bbox_miny": 22.0, "bbox_maxx": 104.5, "bbox_maxy": 22.5}


@pytest.mark.parametrize("bbox", [[1, 2, 3], [105, 22, 104, 23], [1, 2, 3, 4, 5]])
def test_bad_bbox_refused(bbox):
    with pytest.raises(InvalidParameter):
        fsql.bbox_clause(CATALOG, bbox)


def test_names_outside_the_catalog_are_refused():
    with pytest.raises(InvalidParameter):
        fsql.property_clause(CATALOG, [("reporter_contact", "x")])
    with pytest.raises(InvalidParameter):
        fsql.order_clause(CATALOG, [{"property": "reporter_contact", "order": "+"}])
    with pytest.raises(InvalidParameter):
        fsql.order_clause(CATALOG, [{"property": 'id"; DROP TABLE incidents; --', "order": "+"}])


def test_property_clause_casts_to_the_column_type_and_order_ends_with_the_id():
    clause, params = fsql.property_clause(CATALOG, [("category", "flood"), ("tags", "x")])
    assert render(clause) == '"category" = CAST(%(prop_0)s AS text) AND %(prop_1)s = ANY("tags")'
    assert params == {"prop_0": "flood", "prop_1": "x"}
    assert render(fsql.order_clause(CATALOG, [{"property": "reported_at", "order": "-"}])) == \
        '"reported_at" DESC NULLS LAST, "id"'


def test_datetime_clause_intervals():
    clause, params = fsql.datetime_clause(CATALOG, "2026-01-01T00:00:00Z/..")
    assert render(clause) == '"reported_at" >= %(dt_start)s' and params["dt_start"].year == 2026
    with pytest.raises(InvalidParameter):
        fsql.datetime_clause(CATALOG, "2026-02-01/2026-01-01")
    with pytest.raises(InvalidParameter):
        fsql.datetime_clause(CATALOG, "yesterday")


def test_geometry_is_transformed_and_flipped_in_sql():
    text = render(fsql.geometry_expression(CATALOG, 9208, False))
    assert text == 'ST_AsGeoJSON(ST_Transform("geom", 9208), 3)'
    assert "ST_FlipCoordinates" in render(fsql.geometry_expression(CATALOG, 4326, True))


# -- against the server ----------------------------------------------------------------------------


def get(server: str, path: str, **params):
    url = f"{server}/ogc/collections/{path}?" + urllib.parse.urlencode({"f": "json", **params})
    with urllib.request.urlopen(url, timeout=30) as response:
        return response.headers, json.load(response)


def status_of(server: str, path: str, **params) -> tuple[int, dict]:
    try:
        headers, body = get(server, path, **params)
        return 200, body
    except urllib.error.HTTPError as err:
        return err.code, json.load(err)


def test_output_in_vn2000_tm3(server):
    headers, body = get(server, "schools/items", limit=5, crs="http://www.opengis.net/def/crs/EPSG/0/9208")
    assert headers["Content-Crs"] == "<http://www.opengis.net/def/crs/EPSG/0/9208>"
    for feature in body["features"]:
        x, y = feature["geometry"]["coordinates"]
        assert 250_000 < x < 600_000 and 2_300_000 < y < 2_550_000  # metres in Lào Cai's zone


def test_epsg_4326_is_latitude_first(server):
    _, plain = get(server, "schools/items", limit=1)
    _, lat_first = get(server, "schools/items", limit=1, crs="http://www.opengis.net/def/crs/EPSG/0/4326")
    lon, lat = plain["features"][0]["geometry"]["coordinates"]
    assert lat_first["features"][0]["geometry"]["coordinates"] == [lat, lon]


def test_bbox_crs_in_tm3_selects_the_same_features_as_in_degrees(server):
    # The check point of SOURCE.md, ±5 km, in both CRSs.
    _, degrees = get(server, "incidents/items", limit=1000,
                     bbox="103.92,22.435,104.02,22.525")
    _, metres = get(server, "incidents/items", limit=1000,
                    bbox="414540,2482020,424540,2492020",
                    **{"bbox-crs": "http://www.opengis.net/def/crs/EPSG/0/9208"})
    ids_m = {f["id"] for f in metres["features"]}
    ids_d = {f["id"] for f in degrees["features"]}
    assert ids_m and len(ids_m & ids_d) >= 0.9 * len(ids_m)


def test_cql2_text_filter_and_sortby(server):
    _, body = get(server, "incidents/items", limit=50, filter="category = 'flood' AND status <> 'closed'",
                  sortby="-reported_at")
    features = body["features"]
    assert features and all(f["properties"]["category"] == "flood" for f in features)
    assert all(f["properties"]["status"] != "closed" for f in features)
    times = [f["properties"]["reported_at"] for f in features]
    assert times == sorted(times, reverse=True)
    _, spatial = get(server, "schools/items", limit=500,
                     filter="S_INTERSECTS(geom, POLYGON((103.9 22.4, 104.1 22.4, 104.1 22.6, 103.9 22.6, 103.9 22.4)))")
    for f in spatial["features"]:
        lon, lat = f["geometry"]["coordinates"]
        assert 103.9 <= lon <= 104.1 and 22.4 <= lat <= 22.6


@pytest.mark.parametrize("path, params", [
    ("incidents/items", {"filter": "reporter_contact IS NOT NULL"}),       # restricted field
    ("incidents/items", {"filter": "category = 'flood' OR 1=1) --"}),       # not CQL2
    ("incidents/items", {"sortby": "reporter_name"}),
    ("incidents/items", {"bbox": "1,2,3"}),
    ("incidents/items", {"datetime": "not-a-date"}),
    ("incidents/items", {"properties": "reporter_contact"}),
    ("schools/items", {"limit": "-5"}),
    ("schools/items", {"limit": "0"}),
    ("schools/items", {"limit": "abc"}),
    ("schools/items", {"offset": "-1"}),
    ("schools/items", {"offset": "abc"}),
    ("schools/items", {"offset": "99999999999999999999"}),
    ("schools/items", {"crs": "http://www.opengis.net/def/crs/EPSG/0/99999"}),
])
def test_bad_parameters_get_400_not_500(server, path, params):
    code, body = status_of(server, path, **params)
    assert code == 400, (params, body)
    assert "Traceback" not in json.dumps(body)


@pytest.mark.parametrize("item", ["987654321", "abc", "99999999999999999999"])
def test_missing_item_is_a_bilingual_404(server, item):
    code, body = status_of(server, f"schools/items/{item}")
    assert code == 404 and body["code"] == "NotFound"
    assert "Không có đối tượng" in body["description"] and "no feature" in body["description"]
    assert item not in body["description"]


def test_number_matched_exact_on_small_layers(server, demo_url):
    import psycopg

    _, body = get(server, "schools/items", limit=3)
    with psycopg.connect(demo_url) as conn:
        assert body["numberMatched"] == conn.execute("SELECT count(*) FROM schools").fetchone()[0]
    _, hits = get(server, "incidents/items", resulttype="hits", filter="category = 'fire'")
    assert hits["numberReturned"] == 0 and hits["numberMatched"] > 0


def test_raw_features_take_the_placeholder_s_place_as_pygeoapi_would_have_written_them():
    """A GeoJSON page carries the features' JSON as PostgreSQL wrote it (paging.RawFeatures): once
    spliced into pygeoapi's document it reads as the features pygeoapi would have encoded itself,
    its escaping of < and > included, and pygeoapi counted the features right."""
    from pygeoapi.util import to_json

    from gis_core import paging

    text = ('[{"type" : "Feature", "id" : 7, "geometry" : {"type":"Point","coordinates":[104.1,22.3]},'
            ' "properties" : {"name" : "Trường <b>Kim Tân</b>", "students" : 812}}, \n'
            ' {"type" : "Feature", "id" : 8, "geometry" : null, "properties" : {"name" : "a > b"}}]')
    raw = paging.RawFeatures()
    features = raw.hold(text, 2)
    assert len(features) == 2
    page = {"type": "FeatureCollection", "features": features, "numberReturned": 2,
            "links": [{"rel": "self", "href": "http://127.0.0.1/ogc/collections/schools/items?f=json"}]}
    spliced = json.loads(raw.splice(to_json(page)))
    assert spliced == json.loads(to_json({**page, "features": json.loads(text)}))
    assert spliced["features"][0]["properties"]["name"] == "Trường &lt;b&gt;Kim Tân&lt;/b&gt;"
    with pytest.raises(RuntimeError):  # a document without the placeholder: never sent half-made
        raw.splice('{"type":"FeatureCollection","features":[]}')


def test_geojson_page_holds_the_same_features_as_the_single_items(server):
    _, page = get(server, "schools/items", limit=5)
    assert page["numberReturned"] == len(page["features"]) == 5
    assert {link["rel"] for link in page["links"]} >= {"self", "next", "collection"}
    for feature in page["features"]:
        _, item = get(server, f"schools/items/{feature['id']}")
        assert (feature["geometry"], feature["properties"]) == (item["geometry"], item["properties"])
