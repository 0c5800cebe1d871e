"""Responses of the running server validated against the OGC API and GeoJSON schemas kept in the
repo (webmap/ogc_schemas), offline; and the OpenAPI document's every external reference served
from there."""

from __future__ import annotations

import json
import re
import urllib.request
from pathlib import Path

import jsonschema
import pytest
import yaml
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT7

from webmap.ogc import SCHEMAS_DIR

FEATURES_1 = "ogcapi/features/part1/1.0/openapi/ogcapi-features-1.yaml"


def get(url: str) -> tuple[str, bytes]:
    with urllib.request.urlopen(url, timeout=60) as r:
        assert r.status == 200
        return r.headers["Content-Type"], r.read()


def _load(relative: str) -> dict:
    text = (SCHEMAS_DIR / relative).read_text(encoding="utf-8")
    return yaml.safe_load(text) if relative.endswith(".yaml") else json.loads(text)


def _registry() -> Registry:
    """Every schema file under its path, so `$ref`s between them resolve without a network."""
    resources = []
    for path in SCHEMAS_DIR.rglob("*"):
        if path.suffix in (".json", ".yaml"):
            relative = path.relative_to(SCHEMAS_DIR).as_posix()
            resources.append((f"urn:iocgis:schemas/{relative}", Resource.from_contents(_load(relative),
                                                                                         default_specification=DRAFT7)))
    return Registry().with_resources(resources)


REGISTRY = _registry()


def validator(relative: str, pointer: str = "") -> jsonschema.Draft7Validator:
    ref = f"urn:iocgis:schemas/{relative}" + (f"#{pointer}" if pointer else "")
    return jsonschema.Draft7Validator({"$ref": ref}, registry=REGISTRY,
                                      format_checker=jsonschema.Draft7Validator.FORMAT_CHECKER)


def ogc(name: str) -> jsonschema.Draft7Validator:
    return validator(FEATURES_1, f"/components/schemas/{name}")


def geojson(name: str) -> jsonschema.Draft7Validator:
    return validator(f"geojson/{name}.json")


def test_schema_files_are_well_formed():
    for path in SCHEMAS_DIR.rglob("*"):
        if path.suffix in (".json", ".yaml"):
            document = _load(path.relative_to(SCHEMAS_DIR).as_posix())
            for schema in _schemas_in(document):
                jsonschema.Draft7Validator.check_schema(schema)


def _schemas_in(document: dict):
    if "components" in document:
        yield from document["components"].get("schemas", {}).values()
    elif "content" in document:
        yield from (c["schema"] for c in document["content"].values())
    elif "in" not in document:
        yield document


def test_landing_conformance_collections(server):
    _, body = get(f"{server}/ogc/?f=json")
    ogc("landingPage").validate(json.loads(body))
    _, body = get(f"{server}/ogc/conformance?f=json")
    conformance = json.loads(body)
    ogc("confClasses").validate(conformance)
    assert "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/geojson" in conformance["conformsTo"]
    assert "http://www.opengis.net/spec/ogcapi-coverages-1/1.0/conf/core" in conformance["conformsTo"]
    _, body = get(f"{server}/ogc/collections?f=json")
    collections = json.loads(body)
    ogc("collections").validate(collections)
    for collection in collections["collections"]:
        _, body = get(f"{server}/ogc/collections/{collection['id']}?f=json")
        ogc("collection").validate(json.loads(body))


@pytest.mark.parametrize("query", ["limit=5", "limit=3&offset=2&crs=http://www.opengis.net/def/crs/EPSG/0/9208",
                                   "limit=2&skipGeometry=true", "bbox=103.9,22.3,104.1,22.6&limit=50"])
@pytest.mark.parametrize("collection", ["communes", "schools", "landuse_zones", "incidents"])
def test_items_are_geojson_and_ogc_feature_collections(server, collection, query):
    ctype, body = get(f"{server}/ogc/collections/{collection}/items?f=json&{query}")
    assert ctype.startswith("application/geo+json")
    page = json.loads(body)
    geojson("FeatureCollection").validate(page)
    ogc("featureCollectionGeoJSON").validate(page)
    assert page["numberReturned"] == len(page["features"])
    rels = {link["rel"] for link in page["links"]}
    assert {"self", "collection"} <= rels
    if page["features"]:
        feature_id = page["features"][0]["id"]
        ctype, body = get(f"{server}/ogc/collections/{collection}/items/{feature_id}?f=json")
        feature = json.loads(body)
        geojson("Feature").validate(feature)
        ogc("featureGeoJSON").validate(feature)


def test_exceptions_follow_the_schema(server):
    import urllib.error

    for url in (f"{server}/ogc/collections/nothing?f=json", f"{server}/ogc/collections/schools/items?limit=x",
                f"{server}/ogc/collections/dem/coverage?bbox=a,b"):
        with pytest.raises(urllib.error.HTTPError) as info:
            urllib.request.urlopen(url, timeout=30)
        with info.value:
            assert info.value.code in (400, 404)
            ogc("exception").validate(json.load(info.value))


def test_openapi_references_only_schemas_served_here(server):
    """No $ref leaves the server, and each one resolves to a file kept in the repo."""
    _, body = get(f"{server}/ogc/openapi?f=json")
    text = body.decode()
    refs = set(re.findall(r'"\$ref":\s*"([^"#]+)', text))
    assert refs, "the OpenAPI document has external references"
    prefix = f"{server}/ogc/schemas/"
    assert all(ref.startswith(prefix) for ref in refs), sorted(r for r in refs if not r.startswith(prefix))
    for ref in refs:
        relative = ref.removeprefix(prefix)
        assert (SCHEMAS_DIR / relative).is_file(), relative
        _, served = get(ref)
        assert served == (SCHEMAS_DIR / relative).read_bytes()
    for ref, pointer in set(re.findall(r'"\$ref":\s*"([^"#]+)#([^"]+)"', text)):
        node = _load(ref.removeprefix(prefix))
        for part in pointer.strip("/").split("/"):
            node = node[part]
        assert node, (ref, pointer)


def test_schemas_do_not_escape_their_folder(server):
    import urllib.error

    for path in ("../ogc.py", "..%2Fogc.py", "%2e%2e/%2e%2e/pyproject.toml"):
        with pytest.raises(urllib.error.HTTPError) as info:
            urllib.request.urlopen(f"{server}/ogc/schemas/{path}", timeout=30)
        info.value.close()
        assert info.value.code == 404
    assert Path(SCHEMAS_DIR / "README.md").is_file()
