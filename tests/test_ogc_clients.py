"""The OGC API read by real clients — GDAL's OAPIF driver and OWSLib — against the running server."""

from __future__ import annotations

import json
import subprocess
import urllib.request

import psycopg
import pytest
from psycopg import sql

from gis_core.registry import Registry
from gis_core.settings import Settings

REGISTRY = Registry.load(Settings().layers_dir)
LAYERS = REGISTRY.published()
COVERAGES = REGISTRY.coverages()


def get_json(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=30) as response:
        assert response.status == 200
        return json.load(response)


def table_count(url: str, table: str) -> int:
    with psycopg.connect(url) as conn:
        return conn.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(table))).fetchone()[0]


def test_collections_list_every_registry_layer(server):
    ids = [c["id"] for c in get_json(f"{server}/ogc/collections?f=json")["collections"]]
    assert ids == [layer.id for layer in LAYERS] + [c.id for c in COVERAGES]
    schools = get_json(f"{server}/ogc/collections/schools?f=json&lang=vi")
    assert schools["title"] == "Trường học"


@pytest.mark.slow
def test_ogrinfo_lists_every_collection(server):
    out = subprocess.run(["ogrinfo", "-ro", "-q", f"OAPIF:{server}/ogc"], capture_output=True, text=True,
                         timeout=120, check=True).stdout
    for layer in LAYERS:
        assert f": {layer.id}" in out, out


@pytest.mark.slow
@pytest.mark.parametrize("layer", LAYERS, ids=lambda layer: layer.id)
def test_ogr2ogr_copies_each_whole_layer(server, demo_url, tmp_path, layer):
    """GDAL pages through the whole collection, following `next` links that carry keyset cursors;
    the copy has every row and no restricted field."""
    expected = table_count(demo_url, layer.table)
    assert expected > 0, f"demo left {layer.table} empty"
    target = tmp_path / f"{layer.id}.gpkg"
    run = subprocess.run(["ogr2ogr", "-f", "GPKG", str(target), f"OAPIF:{server}/ogc/collections/{layer.id}",
                          "-oo", "PAGE_SIZE=2000", "--debug", "ON"], capture_output=True, text=True, timeout=600,
                         check=True)
    fetched = [line for line in run.stderr.splitlines() if f"/collections/{layer.id}/items" in line]
    assert sum("cursor=" in line for line in fetched) >= expected // 2000, "\n".join(fetched[:20])
    info = subprocess.run(["ogrinfo", "-ro", "-so", "-al", str(target)], capture_output=True, text=True,
                          timeout=60, check=True).stdout
    assert f"Feature Count: {expected}" in info, info
    for field in layer.restricted_fields:
        assert f"\n{field.name}:" not in info
    public = [f.name for f in layer.public_fields if f.name != layer.id_field]
    assert all(f"\n{name}:" in info for name in public), info


def test_restricted_fields_absent_from_every_json_answer(server):
    for layer in LAYERS:
        restricted = [f.name for f in layer.restricted_fields]
        if not restricted:
            continue
        base = f"{server}/ogc/collections/{layer.id}"
        items = get_json(f"{base}/items?f=json&limit=50")
        assert items["features"], layer.id
        for feature in items["features"]:
            assert not set(restricted) & set(feature["properties"])
        one = get_json(f"{base}/items/{items['features'][0]['id']}?f=json")
        assert not set(restricted) & set(one["properties"])
        for doc in ("queryables", "schema"):
            text = json.dumps(get_json(f"{base}/{doc}?f=json"))
            assert not any(f'"{name}"' in text for name in restricted), (layer.id, doc)


def test_owslib_reads_collections_and_items(server):
    from owslib.ogcapi.features import Features

    api = Features(f"{server}/ogc")
    assert {c["id"] for c in api.collections()["collections"]} == {x.id for x in [*LAYERS, *COVERAGES]}
    communes = api.collection_items("communes", limit=200)
    names = {f["properties"]["name"] for f in communes["features"]}
    assert len(communes["features"]) == 99
    assert {"Sa Pa", "Bát Xát", "Yên Bái"} <= names, sorted(names)[:20]
    schools = api.collection_items("schools", limit=5, bbox=[103.52, 21.29, 105.05, 22.86])
    assert schools["numberReturned"] == 5
    assert all(f["geometry"]["type"] == "Point" for f in schools["features"])
